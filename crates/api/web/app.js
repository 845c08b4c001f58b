// Intake web page. Signs in with a bearer token (or a dev token), uploads files straight to
// S3 through the presigned URLs the API hands out (one PUT, a POST form, or multipart in
// parallel parts), then follows each file through the pipeline with the API's event stream
// (read with fetch(), since EventSource cannot send an Authorization header), falling back
// to polling. No build step, no libraries: the server embeds these files as they are.

const TOKEN_KEY = "intake.token";
const WHO_KEY = "intake.who";
const MiB = 1024 * 1024;

/** Used until (or if never) GET /v1/client-config answers. */
const DEFAULT_CONFIG = {
  dev_tokens: false,
  multipart_threshold: 64 * MiB,
  multipart_part_size: 16 * MiB,
  max_parallel_parts: 4,
  classes: {},
};

/** Files uploaded at once; more wait in line. */
const PARALLEL_FILES = 3;
/** Event streams held open at once: browsers allow six HTTP/1.1 connections per origin,
 * and the API calls need some of them. Rows beyond this are polled. */
const MAX_STREAMS = 3;
const POLL_MS = 2000;
const PART_ATTEMPTS = 3;
/** Headers a browser sets itself and refuses to take from a script. */
const FORBIDDEN_HEADERS = new Set(["content-length", "host", "connection", "expect", "date"]);

const TERMINAL = new Set(["done", "quarantined", "failed", "deleted"]);
const STAGE_LABELS = {
  validate: "validating",
  scan: "scanning",
  thumbnail: "making thumbnails",
  catalog: "cataloging",
  archive: "archiving",
};

const $ = (selector, root = document) => root.querySelector(selector);

let config = { ...DEFAULT_CONFIG };
/** { token, who, controller } while signed in. */
let session = null;
/** file id → FileRow */
const rows = new Map();
let nextCursor = null;
let openStreams = 0;

// ---------------------------------------------------------------------------------------
// Errors and API calls

class ApiError extends Error {
  constructor(status, code, message, requestId = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  describe() {
    const where = [this.code, this.status ? `HTTP ${this.status}` : null, this.requestId ? `request ${this.requestId}` : null]
      .filter(Boolean)
      .join(", ");
    return where ? `${this.message} (${where})` : this.message;
  }
}

function describe(error) {
  if (error instanceof ApiError) return error.describe();
  if (error && error.message) return error.message;
  return String(error);
}

function isAbort(error) {
  return error && error.name === "AbortError";
}

/** The API's `{"error": {"code", "message", "request_id"}}`, or what can be said without it. */
async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `The server answered HTTP ${response.status}.`;
  let requestId = response.headers.get("x-request-id");
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      requestId = body.error.request_id || requestId;
    }
  } catch {
    // Not JSON (a proxy's page, an empty body): keep the status line.
  }
  if (response.status === 429) {
    const after = response.headers.get("retry-after");
    if (after) message += ` Try again in ${after} s.`;
  }
  return new ApiError(response.status, code, message, requestId);
}

/** A 401 ends the session (unless it came from an older one). */
function checkUnauthorized(error, token) {
  if (error instanceof ApiError && error.status === 401 && session && session.token === token) {
    signOut(`You were signed out: ${error.describe()}`);
  }
}

async function api(path, { method = "GET", body, auth = true, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let token = null;
  if (auth) {
    if (!session) throw new ApiError(401, "missing_credentials", "Sign in first.");
    token = session.token;
    headers.Authorization = `Bearer ${token}`;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal || (auth && session ? session.controller.signal : undefined),
      cache: "no-store",
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, "network_error", `Could not reach the server (${error.message}).`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (auth) checkUnauthorized(error, token);
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// ---------------------------------------------------------------------------------------
// Small helpers

/** Sizes in binary units, as pipeline.toml writes them ("50MiB"). */
function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "?";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  const digits = value < 10 && !Number.isInteger(value) ? 1 : 0;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A transfer rate in MB/s (kB/s when slow). */
function formatRate(bytesPerSecond) {
  if (bytesPerSecond >= 100_000) return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
  return `${Math.max(bytesPerSecond / 1e3, 0.1).toFixed(1)} kB/s`;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(new DOMException("aborted", "AbortError"));
    const timer = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(new DOMException("aborted", "AbortError"));
        },
        { once: true },
      );
    }
  });
}

/** Runs at most `n` of the given tasks at once. */
function limiter(n) {
  let active = 0;
  const waiting = [];
  const next = () => {
    if (active >= n || waiting.length === 0) return;
    active += 1;
    const { task, resolve, reject } = waiting.shift();
    Promise.resolve()
      .then(task)
      .then(resolve, reject)
      .finally(() => {
        active -= 1;
        next();
      });
  };
  return (task) =>
    new Promise((resolve, reject) => {
      waiting.push({ task, resolve, reject });
      next();
    });
}

const uploadSlot = limiter(PARALLEL_FILES);
const thumbSlot = limiter(4);

let announceTimer = null;
/** Says something in the polite live region (and shows it under the header). */
function announce(message) {
  const region = $("#status");
  region.textContent = "";
  clearTimeout(announceTimer);
  // A fresh text node after a tick, so that the same message twice is announced twice.
  announceTimer = setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/** The claims of a JWT, for showing who is signed in (never for deciding anything). */
function claimsOf(token) {
  try {
    const part = token.split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

function reasonText(reason) {
  if (!reason) return "no reason given";
  const code = reason.code || reason.outcome || "unknown";
  // The API has already dropped internal object names from the detail.
  const detail = reason.detail ? `: ${reason.detail}` : "";
  const stage = reason.stage ? ` (${reason.stage})` : "";
  return `${code}${detail}${stage}`;
}

// ---------------------------------------------------------------------------------------
// One file's row

class FileRow {
  constructor({ name, size, contentType, ours }) {
    this.el = $("#file-row").content.firstElementChild.cloneNode(true);
    this.name = name;
    this.size = size;
    this.ours = Boolean(ours);
    this.fileId = null;
    this.summary = null;
    this.transferring = this.ours;
    this.uploadFailed = false;
    this.following = false;
    this.thumbRequested = false;
    this.lastAnnounced = null;
    $(".file-name", this.el).textContent = name;
    this.setMeta(size, contentType);
    $(".download", this.el).setAttribute("aria-label", `Download ${name}`);
    $(".delete", this.el).setAttribute("aria-label", `Delete ${name}`);
    $("progress", this.el).setAttribute("aria-label", `Upload of ${name}`);
    $(".download", this.el).addEventListener("click", () => this.download());
    $(".delete", this.el).addEventListener("click", () => this.remove());
  }

  setMeta(size, contentType) {
    $(".file-meta", this.el).textContent = [Number.isFinite(size) ? formatBytes(size) : null, contentType || null]
      .filter(Boolean)
      .join(" · ");
  }

  setFileId(id) {
    this.fileId = id;
    this.el.dataset.fileId = id;
    rows.set(id, this);
  }

  show(dataState, label) {
    this.el.dataset.state = dataState;
    $(".state-label", this.el).textContent = label;
    this.updateButtons();
  }

  error(message) {
    const box = $(".row-error", this.el);
    box.textContent = message;
    box.hidden = !message;
  }

  showProgress(loaded, total, text) {
    const box = $(".progress-box", this.el);
    box.hidden = false;
    const bar = $("progress", this.el);
    bar.max = Math.max(total, 1);
    bar.value = Math.min(loaded, total);
    $(".progress-text", this.el).textContent = text;
  }

  updateButtons() {
    const state = this.el.dataset.state;
    const gone = state === "deleting" || state === "deleted";
    $(".download", this.el).hidden = !(state === "ready" && this.summary && this.summary.ready !== false);
    $(".delete", this.el).hidden = !this.fileId || gone || this.transferring || this.uploadFailed;
  }

  /** Show a FileSummary (or FileDetail) from the API. */
  update(summary) {
    this.summary = summary;
    if (summary.filename && summary.filename !== this.name) {
      this.name = summary.filename;
      $(".file-name", this.el).textContent = summary.filename;
    }
    this.setMeta(summary.size ?? this.size, summary.content_type);
    const state = summary.state;
    let dataState;
    let label;
    if (state === "deleting") {
      [dataState, label] = ["deleting", "deleting"];
    } else if (state === "deleted") {
      [dataState, label] = ["deleted", "deleted"];
    } else if (state === "quarantined") {
      [dataState, label] = ["quarantined", `quarantined — ${reasonText(summary.reason)}`];
    } else if (state === "failed") {
      [dataState, label] = ["failed", `failed — ${reasonText(summary.reason)}`];
    } else if (state === "done" || summary.ready) {
      [dataState, label] = ["ready", "ready"];
    } else if (state === "processing") {
      [dataState, label] = ["processing", STAGE_LABELS[summary.stage] || "processing"];
    } else if (state === "awaiting_upload") {
      const waiting = this.ours ? "uploaded, waiting for processing" : "awaiting upload";
      [dataState, label] = ["uploading", this.transferring ? "uploading" : waiting];
    } else {
      [dataState, label] = ["processing", state || "unknown state"];
    }
    if (state !== "awaiting_upload") this.transferring = false;
    this.show(dataState, label);
    if (dataState === "deleted") this.clearThumb();
    if (TERMINAL.has(state) || dataState === "ready") {
      if (this.lastAnnounced !== null && this.lastAnnounced !== label) announce(`${this.name}: ${label}`);
    }
    this.lastAnnounced = label;
    if (dataState === "ready" && !this.thumbRequested) {
      this.thumbRequested = true;
      thumbSlot(() => this.loadThumb());
    }
  }

  clearThumb() {
    const box = $(".thumb-box", this.el);
    const placeholder = document.createElement("span");
    placeholder.className = "thumb-placeholder";
    placeholder.setAttribute("aria-hidden", "true");
    box.replaceChildren(placeholder);
  }

  async loadThumb() {
    if (!session || !this.fileId) return;
    try {
      const detail = await api(`/v1/files/${encodeURIComponent(this.fileId)}`);
      if (!(detail.renditions || []).some((r) => r.name === "thumb")) return;
      const link = await api(`/v1/files/${encodeURIComponent(this.fileId)}/download?rendition=thumb`);
      if (this.el.dataset.state === "deleted" || this.el.dataset.state === "deleting") return;
      const img = document.createElement("img");
      img.className = "thumb";
      img.alt = `thumbnail of ${this.name}`;
      img.decoding = "async";
      img.addEventListener("error", () => {
        this.clearThumb();
        this.error(`The thumbnail of ${this.name} did not load.`);
      });
      img.src = link.url;
      $(".thumb-box", this.el).replaceChildren(img);
    } catch (error) {
      if (isAbort(error)) return;
      if (error instanceof ApiError && error.code === "rendition_not_found") return;
      // A thumbnail asked for too early, or gone: it can be asked for again.
      this.thumbRequested = false;
      this.error(`Could not load the thumbnail: ${describe(error)}`);
    }
  }

  async download() {
    this.error("");
    try {
      const link = await api(`/v1/files/${encodeURIComponent(this.fileId)}/download`);
      announce(`Downloading ${link.filename || this.name}`);
      window.location.assign(link.url);
    } catch (error) {
      if (isAbort(error)) return;
      this.error(`Could not download: ${describe(error)}`);
      announce(`${this.name}: could not download. ${describe(error)}`);
    }
  }

  async remove() {
    if (!window.confirm(`Delete ${this.name}? The original, its thumbnails and its record are removed for good.`)) return;
    this.error("");
    const button = $(".delete", this.el);
    button.disabled = true;
    try {
      const summary = await api(`/v1/files/${encodeURIComponent(this.fileId)}`, { method: "DELETE" });
      if (summary) this.update(summary);
      else this.show("deleting", "deleting");
      // The button is gone now: keep the keyboard focus on this row.
      this.el.tabIndex = -1;
      this.el.focus();
      announce(`${this.name}: deleting`);
      follow(this);
    } catch (error) {
      if (isAbort(error)) return;
      this.error(`Could not delete: ${describe(error)}`);
      announce(`${this.name}: could not delete. ${describe(error)}`);
    } finally {
      button.disabled = false;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Following a file: the event stream, else polling

async function follow(row) {
  if (row.following || !session || !row.fileId) return;
  row.following = true;
  const { signal } = session.controller;
  try {
    let streamed = false;
    if (openStreams < MAX_STREAMS) {
      openStreams += 1;
      try {
        // Reconnect while the stream works but ends early (a proxy's idle timeout).
        for (let attempt = 0; attempt < 5; attempt += 1) {
          row.el.dataset.follow = "stream";
          const result = await streamEvents(row, signal);
          if (result.terminal) {
            streamed = true;
            break;
          }
          if (result.frames === 0) break;
        }
      } catch (error) {
        if (isAbort(error)) return;
        if (error instanceof ApiError && (error.status === 401 || error.status === 404)) throw error;
        // Any other failure of the stream: poll instead.
      } finally {
        openStreams -= 1;
      }
    }
    if (!streamed) {
      row.el.dataset.follow = "poll";
      await poll(row, signal);
    }
  } catch (error) {
    if (isAbort(error)) return;
    if (error instanceof ApiError && error.status === 404 && row.el.dataset.state === "deleting") {
      row.show("deleted", "deleted");
      row.clearThumb();
      return;
    }
    if (error instanceof ApiError && error.status === 401) return;
    row.error(`Lost track of this file: ${describe(error)}`);
  } finally {
    row.following = false;
  }
}

/** Reads `GET /v1/files/{id}/events` until it ends; says whether a terminal state came. */
async function streamEvents(row, signal) {
  const token = session.token;
  const response = await fetch(`/v1/files/${encodeURIComponent(row.fileId)}/events`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
    signal,
    cache: "no-store",
  });
  if (!response.ok) {
    const error = await errorFrom(response);
    checkUnauthorized(error, token);
    throw error;
  }
  if (!response.body) throw new Error("this browser cannot read a streamed response");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let frames = 0;
  let terminal = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // SSE lines end in \n, \r\n or \r; a \r at the end of a chunk may be half a \r\n.
      const held = buffer.endsWith("\r") ? "\r" : "";
      buffer = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
      const parts = buffer.split("\n\n");
      buffer = parts.pop() + held;
      for (const frame of parts) {
        const event = parseFrame(frame);
        if (!event) continue;
        frames += 1;
        if (event.type === "state" || event.type === "message") {
          const summary = JSON.parse(event.data);
          row.update(summary);
          if (TERMINAL.has(summary.state)) terminal = true;
        } else if (event.type === "error") {
          let message = event.data;
          try {
            const body = JSON.parse(event.data);
            if (body && body.error) message = new ApiError(0, body.error.code, body.error.message, body.error.request_id).describe();
          } catch {
            // plain text
          }
          row.error(message);
        }
      }
      if (terminal) break;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return { terminal, frames };
}

/** One SSE frame: `event:` and `data:` lines (several data lines join with \n). */
function parseFrame(frame) {
  let type = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return null;
  return { type, data: data.join("\n") };
}

async function poll(row, signal) {
  let failures = 0;
  for (;;) {
    try {
      const detail = await api(`/v1/files/${encodeURIComponent(row.fileId)}`, { signal });
      failures = 0;
      row.error("");
      row.update(detail);
      if (TERMINAL.has(detail.state)) return;
      if (detail.state === "awaiting_upload" && !row.ours) return; // nobody is uploading it here
    } catch (error) {
      if (isAbort(error)) throw error;
      if (error instanceof ApiError && (error.status === 401 || error.status === 404 || error.status === 403)) throw error;
      failures += 1;
      row.error(`Checking again in a moment: ${describe(error)}`);
    }
    await sleep(POLL_MS * Math.min(1 + failures, 5), signal);
  }
}

// ---------------------------------------------------------------------------------------
// Uploading

/** Bytes done of total and the rate over the last few seconds, drawn at most each frame. */
class Progress {
  constructor(row, total) {
    this.row = row;
    this.total = total;
    this.loaded = 0;
    this.started = performance.now();
    this.samples = [[this.started, 0]];
    this.pending = false;
    this.draw();
  }

  set(loaded) {
    this.loaded = Math.min(loaded, this.total);
    const now = performance.now();
    this.samples.push([now, this.loaded]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 3000) this.samples.shift();
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }
  }

  rate() {
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    const seconds = (t1 - t0) / 1000;
    return seconds > 0.2 ? (b1 - b0) / seconds : 0;
  }

  draw() {
    if (this.finished) return;
    const rate = this.rate();
    const speed = rate > 0 ? ` · ${formatRate(rate)}` : "";
    this.row.showProgress(this.loaded, this.total, `${formatBytes(this.loaded)} of ${formatBytes(this.total)}${speed}`);
  }

  finish() {
    this.finished = true;
    this.loaded = this.total;
    const seconds = Math.max((performance.now() - this.started) / 1000, 0.001);
    const average = formatRate(this.total / seconds);
    this.row.showProgress(this.total, this.total, `${formatBytes(this.total)} sent in ${seconds.toFixed(1)} s · ${average}`);
  }
}

class UploadError extends Error {}

/** What S3 said in its XML error body, if anything. */
function s3Error(xhr) {
  const text = xhr.responseText || "";
  const code = /<Code>([^<]*)<\/Code>/.exec(text);
  const message = /<Message>([^<]*)<\/Message>/.exec(text);
  const what = [code && code[1], message && message[1]].filter(Boolean).join(": ");
  return `S3 answered HTTP ${xhr.status}${what ? ` (${what})` : ""}`;
}

/** One request with XMLHttpRequest, for its upload progress events. */
function send({ method, url, headers = {}, body, signal, onProgress }) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(new DOMException("aborted", "AbortError"));
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) {
      // The browser sends Content-Length itself (from the body, the same number).
      if (!FORBIDDEN_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    const onAbort = () => xhr.abort();
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    const done = () => signal && signal.removeEventListener("abort", onAbort);
    xhr.addEventListener("load", () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else reject(new UploadError(s3Error(xhr)));
    });
    xhr.addEventListener("error", () => {
      done();
      reject(new UploadError("the upload to S3 failed: a network error, or the bucket's CORS does not allow this page"));
    });
    xhr.addEventListener("abort", () => {
      done();
      reject(new DOMException("aborted", "AbortError"));
    });
    xhr.send(body);
  });
}

async function putWhole(file, put, progress, signal) {
  await send({ method: "PUT", url: put.url, headers: put.headers || {}, body: file, signal, onProgress: (n) => progress.set(n) });
}

async function postForm(file, post, progress, signal) {
  const form = new FormData();
  for (const [name, value] of Object.entries(post.fields || {})) form.append(name, value);
  form.append("file", file); // S3 ignores every field after the file
  // Progress counts the form's bytes, a little more than the file's; clamp to the file.
  await send({ method: "POST", url: post.url, body: form, signal, onProgress: (n) => progress.set(Math.min(n, file.size)) });
}

async function multipart(file, created, progress, outer) {
  const id = created.file_id;
  const { part_size: partSize, part_count: partCount } = created.multipart;
  const parallel = Math.max(1, Math.min(Number(config.max_parallel_parts) || 4, 16));
  const batchSize = Math.min(Math.max(parallel * 2, 8), 100);
  // One failed part stops the others.
  const local = new AbortController();
  const stop = () => local.abort();
  outer.addEventListener("abort", stop, { once: true });
  const signal = local.signal;

  const urls = new Map();
  let firstUnrequested = 1;
  let pending = null;
  const requestParts = (numbers) =>
    api(`/v1/uploads/${encodeURIComponent(id)}/parts`, { method: "POST", body: { part_numbers: numbers }, signal }).then((answer) => {
      for (const part of answer.parts) urls.set(part.part_number, part);
    });
  async function urlFor(n, fresh) {
    if (fresh) {
      await requestParts([n]);
    }
    while (!urls.has(n)) {
      if (!pending) {
        const numbers = [];
        for (let i = firstUnrequested; i <= partCount && numbers.length < batchSize; i += 1) numbers.push(i);
        if (numbers.length === 0) throw new Error(`the API sent no URL for part ${n}`);
        firstUnrequested += numbers.length;
        pending = requestParts(numbers).finally(() => {
          pending = null;
        });
      }
      await pending;
    }
    const part = urls.get(n);
    urls.delete(n);
    return part;
  }

  const etags = new Array(partCount);
  const sent = new Map();
  const report = () => {
    let total = 0;
    for (const n of sent.values()) total += n;
    progress.set(total);
  };
  let next = 1;
  async function worker() {
    while (next <= partCount) {
      const n = next;
      next += 1;
      const start = (n - 1) * partSize;
      const blob = file.slice(start, Math.min(start + partSize, file.size));
      for (let attempt = 1; ; attempt += 1) {
        try {
          const part = await urlFor(n, attempt > 1);
          const xhr = await send({
            method: "PUT",
            url: part.url,
            body: blob,
            signal,
            onProgress: (loaded) => {
              sent.set(n, loaded);
              report();
            },
          });
          const etag = xhr.getResponseHeader("ETag");
          if (!etag) {
            const error = new UploadError(`S3 sent no ETag for part ${n}: the uploads bucket's CORS rule must expose the ETag header`);
            error.fatal = true;
            throw error;
          }
          etags[n - 1] = etag;
          sent.set(n, blob.size);
          report();
          break;
        } catch (error) {
          if (isAbort(error) || error.fatal || error instanceof ApiError || attempt >= PART_ATTEMPTS) throw error;
          sent.set(n, 0);
          report();
          await sleep(1000 * attempt, signal);
        }
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, partCount) }, worker));
  } catch (error) {
    local.abort();
    throw error;
  } finally {
    outer.removeEventListener("abort", stop);
  }
  const parts = etags.map((etag, i) => ({ part_number: i + 1, etag }));
  return api(`/v1/uploads/${encodeURIComponent(id)}/complete`, { method: "POST", body: { parts } });
}

function startUploads(files) {
  if (!session) return;
  const list = [...files];
  if (list.length === 0) return;
  $("#files-empty").hidden = true;
  announce(list.length === 1 ? `Uploading ${list[0].name}` : `Uploading ${list.length} files`);
  // Newest first, like the list from the server, in the order they were chosen.
  for (const file of list.reverse()) {
    const row = new FileRow({ name: file.name, size: file.size, contentType: file.type, ours: true });
    row.show("uploading", "waiting to upload");
    $("#files").prepend(row.el);
    const mine = session;
    uploadSlot(() => (session === mine ? upload(file, row, mine) : null));
  }
}

async function upload(file, row, mine) {
  const signal = mine.controller.signal;
  row.show("uploading", "uploading");
  const progress = new Progress(row, file.size);
  let created;
  try {
    created = await api("/v1/uploads", {
      method: "POST",
      body: { filename: file.name, size: file.size, content_type: file.type || "application/octet-stream" },
    });
  } catch (error) {
    if (isAbort(error)) return;
    failUpload(row, `could not start the upload: ${describe(error)}`);
    return;
  }
  row.setFileId(created.file_id);
  try {
    if (created.method === "put") {
      await putWhole(file, created.put, progress, signal);
    } else if (created.method === "post") {
      await postForm(file, created.post, progress, signal);
    } else if (created.method === "multipart") {
      const summary = await multipart(file, created, progress, signal);
      row.transferring = false;
      if (summary) row.update(summary);
    } else {
      throw new UploadError(`the API chose an unknown upload method "${created.method}"`);
    }
  } catch (error) {
    if (isAbort(error) && signal.aborted) return;
    failUpload(row, describe(error));
    // Tell the API, so a multipart upload's parts are dropped at once.
    api(`/v1/uploads/${encodeURIComponent(created.file_id)}`, { method: "DELETE" }).catch(() => {});
    return;
  }
  progress.finish();
  row.transferring = false;
  row.updateButtons();
  if (!row.summary || row.summary.state === "awaiting_upload") row.show("uploading", "uploaded, waiting for processing");
  announce(`${file.name} uploaded`);
  follow(row);
}

function failUpload(row, message) {
  row.transferring = false;
  row.uploadFailed = true;
  row.show("failed", `failed — upload: ${message}`);
  row.error(`The upload of ${row.name} failed: ${message}`);
  announce(`The upload of ${row.name} failed: ${message}`);
}

// ---------------------------------------------------------------------------------------
// The list of the tenant's files

async function loadFiles({ more = false } = {}) {
  const params = new URLSearchParams({ limit: "50" });
  if (more && nextCursor) params.set("cursor", nextCursor);
  const page = await api(`/v1/files?${params}`);
  for (const summary of page.files || []) {
    let row = rows.get(summary.file_id);
    if (!row) {
      row = new FileRow({ name: summary.filename, size: summary.size, contentType: summary.content_type, ours: false });
      row.setFileId(summary.file_id);
      $("#files").append(row.el);
    }
    if (row.transferring) continue; // our own upload in progress knows better
    row.update(summary);
    if (!TERMINAL.has(summary.state) && !(summary.state === "awaiting_upload" && !row.ours)) follow(row);
  }
  nextCursor = page.next_cursor || null;
  $("#more").hidden = !nextCursor;
  $("#files-empty").hidden = $("#files").children.length > 0;
}

// ---------------------------------------------------------------------------------------
// Signing in and out

function showSignedIn(who) {
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#session").hidden = false;
  $("#whoami").textContent = who.user || who.tenant ? `Signed in as ${who.user || "?"} (tenant ${who.tenant || "?"})` : "Signed in";
}

function showSignIn(message) {
  $("#app").hidden = true;
  $("#session").hidden = true;
  $("#signin").hidden = false;
  const box = $("#signin-error");
  box.textContent = message || "";
  box.hidden = !message;
  const first = !$("#dev-form").hidden ? $("#dev-tenant") : $("#token-input");
  first.focus();
}

async function signIn(token, who) {
  if (session) session.controller.abort();
  session = { token, who, controller: new AbortController() };
  rows.clear();
  $("#files").replaceChildren();
  nextCursor = null;
  try {
    await loadFiles();
  } catch (error) {
    if (isAbort(error)) return;
    if (!(error instanceof ApiError && error.status === 401)) {
      // Not a credentials problem: stay signed in and say what went wrong.
      announce(`Could not list your files: ${describe(error)}`);
    } else {
      return; // checkUnauthorized has signed out with the message
    }
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(WHO_KEY, JSON.stringify(who));
  showSignedIn(who);
  $("#main").focus();
  announce(`Signed in as ${who.user || "?"} (tenant ${who.tenant || "?"})`);
}

function signOut(message) {
  if (session) session.controller.abort();
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(WHO_KEY);
  rows.clear();
  $("#files").replaceChildren();
  nextCursor = null;
  showSignIn(message);
  announce(message || "Signed out");
}

function whoFromToken(token) {
  const claims = claimsOf(token);
  return { tenant: typeof claims.tenant === "string" ? claims.tenant : null, user: typeof claims.sub === "string" ? claims.sub : null };
}

async function loadConfig() {
  try {
    const answer = await api("/v1/client-config", { auth: false });
    config = { ...DEFAULT_CONFIG, ...answer };
  } catch (error) {
    announce(`Could not read the server's settings (uploads use defaults): ${describe(error)}`);
    return;
  }
  $("#dev-form").hidden = !config.dev_tokens;
  const classes = Object.entries(config.classes || {}).map(([name, c]) => `${name} up to ${formatBytes(c.max_size)}`);
  const parts = [];
  if (classes.length) parts.push(`Allowed: ${classes.join(", ")}.`);
  parts.push(`Files of ${formatBytes(config.multipart_threshold)} or more go in ${formatBytes(config.multipart_part_size)} parts, ${config.max_parallel_parts} at a time.`);
  $("#limits").textContent = parts.join(" ");
}

// ---------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("#token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("#token-input").value.trim().replace(/^Bearer\s+/i, "");
    if (!token) {
      showSignIn("Paste a token first.");
      return;
    }
    $("#token-input").value = "";
    await signIn(token, whoFromToken(token));
  });

  $("#dev-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const tenant = $("#dev-tenant").value.trim();
    const user = $("#dev-user").value.trim();
    if (!tenant || !user) {
      showSignIn("Give a tenant and a user.");
      return;
    }
    const button = $("#dev-submit");
    button.disabled = true;
    try {
      const answer = await api("/v1/dev/token", { method: "POST", body: { tenant, user, admin: false }, auth: false });
      await signIn(answer.token, { tenant, user });
    } catch (error) {
      if (!isAbort(error)) showSignIn(`Could not get a dev token: ${describe(error)}`);
    } finally {
      button.disabled = false;
    }
  });

  $("#sign-out").addEventListener("click", () => signOut(""));

  const input = $("#file-input");
  input.addEventListener("change", () => {
    startUploads(input.files);
    input.value = "";
  });

  const zone = $("#drop-zone");
  let depth = 0;
  zone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("dragging");
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (event.dataTransfer) startUploads(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not replace the page with the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  $("#refresh").addEventListener("click", () => {
    loadFiles().catch((error) => {
      if (!isAbort(error)) announce(`Could not list your files: ${describe(error)}`);
    });
  });
  $("#more").addEventListener("click", () => {
    loadFiles({ more: true }).catch((error) => {
      if (!isAbort(error)) announce(`Could not list more files: ${describe(error)}`);
    });
  });
}

async function main() {
  wire();
  const configured = loadConfig();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    let who;
    try {
      who = JSON.parse(sessionStorage.getItem(WHO_KEY) || "null") || whoFromToken(token);
    } catch {
      who = whoFromToken(token);
    }
    await configured;
    await signIn(token, who);
  } else {
    await configured;
    showSignIn("");
  }
}

main();
