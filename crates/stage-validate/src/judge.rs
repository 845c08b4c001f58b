//! The validate decision: given what is known about one upload (key, size, declared
//! `Content-Type`, first bytes) and the rules from `pipeline.toml`, pass it with its
//! detected type and class, or reject it with a fixed code and a message that names the
//! object, what was found and what was expected. Pure: no IO, never panics on any input.

use std::fmt;

use intake_core::config::MismatchPolicy;
use intake_core::key_template::parse_key;
use intake_core::{ByteSize, PipelineConfig};

/// How many leading bytes of an object to fetch (ranged GET) before judging it: the
/// class signatures sit in the first few hundred bytes (PDF's marker anywhere in the
/// first 1024), the zip-based office formats are told apart by walking entries, and a
/// text sniff over 8 KiB is not fooled by a short ASCII preamble to binary data.
pub const HEAD_BYTES: usize = 8192;

/// What validate knows about an upload before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upload<'a> {
    /// The decoded object key.
    pub key: &'a str,
    /// The object's size, from HEAD.
    pub size: u64,
    /// The `Content-Type` the uploader sent, possibly with parameters (`; charset=utf-8`).
    pub declared_type: Option<&'a str>,
    /// The first bytes of the object, up to [`HEAD_BYTES`]; any bytes beyond are ignored.
    pub head: &'a [u8],
}

/// The part of `pipeline.toml` that validate enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `uploads.key_template`, e.g. `{tenant}/{user}/{uuid}-{filename}`.
    pub key_template: String,
    /// `(class name, allowed detected types, max size in bytes)`, in config order.
    pub classes: Vec<(String, Vec<String>, u64)>,
    /// Reject when the declared `Content-Type` contradicts the detected type.
    pub check_declared_type: bool,
    /// Reject when the file name's extension contradicts the detected type.
    pub check_extension: bool,
}

impl Rules {
    /// The rules of a loaded (and so already validated) pipeline; the two consistency
    /// checks follow `uploads.extension_mismatch` and `uploads.content_type_mismatch`.
    pub fn from_config(config: &PipelineConfig) -> Rules {
        Rules {
            key_template: config.uploads.key_template.clone(),
            classes: config
                .classes
                .iter()
                .map(|(name, class)| (name.clone(), class.types.clone(), class.max_size.bytes()))
                .collect(),
            check_declared_type: config.uploads.content_type_mismatch == MismatchPolicy::Reject,
            check_extension: config.uploads.extension_mismatch == MismatchPolicy::Reject,
        }
    }
}

/// The outcome of [`judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed {
        /// The MIME type read from the content (never from the name or the declaration).
        detected_type: String,
        /// The content class that allows `detected_type`.
        class: String,
        tenant: String,
        user: Option<String>,
        filename: Option<String>,
    },
    Rejected {
        code: RejectCode,
        /// For people: names the object, what was found and what was expected.
        detail: String,
        /// `None` when the check failed before detection or nothing was recognised.
        detected_type: Option<String>,
    },
}

/// Why an upload was rejected; the strings are part of the outcome message and so stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    Empty,
    BadKey,
    TypeMismatch,
    TypeNotAllowed,
    TooLarge,
    /// Another version of the key is the file (one file, one version): a reused upload
    /// URL, a duplicate PUT racing the first, an upload after the file was deleted.
    UploadReused,
}

impl RejectCode {
    pub const ALL: [RejectCode; 6] = [
        RejectCode::Empty,
        RejectCode::BadKey,
        RejectCode::TypeMismatch,
        RejectCode::TypeNotAllowed,
        RejectCode::TooLarge,
        RejectCode::UploadReused,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RejectCode::Empty => "empty",
            RejectCode::BadKey => "bad_key",
            RejectCode::TypeMismatch => "type_mismatch",
            RejectCode::TypeNotAllowed => "type_not_allowed",
            RejectCode::TooLarge => "too_large",
            RejectCode::UploadReused => "upload_reused",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const TEXT_PLAIN: &str = "text/plain";
const PE: &str = "application/vnd.microsoft.portable-executable";

/// Types `infer` recognises by two or three printable ASCII bytes ("BM", "MZ", "GIF",
/// "ID3") that ordinary text can start with ("BMW sales.txt"). The real formats always
/// carry a NUL or invalid UTF-8 within their first bytes (reserved zero fields, binary
/// dimensions, sub-block sizes), so a head that passes the text sniff is text, not them.
const WEAK_SIGNATURES: [&str; 4] = ["image/bmp", PE, "image/gif", "audio/mpeg"];

/// The MIME type of an object from its first bytes: `infer`'s magic-byte signatures,
/// else `text/plain` for non-empty NUL-free UTF-8, else `None`.
pub fn detect_type(head: &[u8]) -> Option<String> {
    let head = &head[..head.len().min(HEAD_BYTES)];
    let text = looks_like_text(head);
    if let Some(kind) = infer::get(head) {
        let mime = kind.mime_type();
        if !(text && WEAK_SIGNATURES.contains(&mime)) {
            return Some(mime.to_owned());
        }
    }
    text.then(|| TEXT_PLAIN.to_owned())
}

/// Non-empty, no NUL, valid UTF-8 — except that the head may end inside a multi-byte
/// character, because the ranged GET cuts at a byte count, not a character boundary.
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // `error_len() == None` means the input ended mid-character; demand at least one
        // whole character before it so a lone lead byte is not called text.
        Err(e) => e.error_len().is_none() && e.valid_up_to() > 0,
    }
}

/// Decide on one upload. Checks run in a fixed order and the first failure wins:
/// empty, key template, type consistency (extension, then declared type), content class,
/// class size limit.
pub fn judge(rules: &Rules, upload: &Upload) -> Verdict {
    let key = Printable(upload.key);

    if upload.size == 0 {
        return rejected(
            RejectCode::Empty,
            format!("{key}: the object is empty (0 bytes); an upload must have content"),
            None,
        );
    }

    let Some(parts) = parse_key(&rules.key_template, upload.key) else {
        return rejected(
            RejectCode::BadKey,
            format!(
                "{key}: the key does not match the upload key template `{}`",
                rules.key_template
            ),
            None,
        );
    };

    let detected = detect_type(upload.head);
    let found = Found(detected.as_deref());

    if rules.check_extension
        && let Some(filename) = parts.filename.as_deref()
        && let Some(ext) = extension(filename)
    {
        let guesses = guessed_types(&ext);
        let agrees = detected
            .as_deref()
            .is_some_and(|d| guesses.iter().any(|g| same_type(g, d)));
        if !guesses.is_empty() && !agrees {
            return rejected(
                RejectCode::TypeMismatch,
                format!(
                    "{key}: content is {found} but the name ends in .{} (expected {})",
                    Printable(&ext),
                    guesses.join(" or ")
                ),
                detected,
            );
        }
    }

    if rules.check_declared_type
        && let Some(declared) = upload.declared_type.and_then(essence)
        // These say "unknown bytes" (S3 stores binary/octet-stream when none was sent),
        // so they contradict nothing.
        && declared != "application/octet-stream"
        && declared != "binary/octet-stream"
        && !detected.as_deref().is_some_and(|d| same_type(&declared, d))
    {
        return rejected(
            RejectCode::TypeMismatch,
            format!(
                "{key}: content is {found} but it was uploaded with Content-Type {}",
                Printable(&declared)
            ),
            detected,
        );
    }

    let class = detected.as_deref().and_then(|d| {
        rules
            .classes
            .iter()
            .find(|(_, types, _)| types.iter().any(|t| same_type(t, d)))
    });
    let (Some(detected_type), Some((class, _, max))) = (detected.as_deref(), class) else {
        return rejected(
            RejectCode::TypeNotAllowed,
            format!(
                "{key}: content is {found}, which no content class allows (allowed: {})",
                allowed_types(rules)
            ),
            detected,
        );
    };

    if upload.size > *max {
        return rejected(
            RejectCode::TooLarge,
            format!(
                "{key}: {} bytes of {detected_type} is over the {max}-byte ({}) limit of class `{class}`",
                upload.size,
                ByteSize(*max)
            ),
            detected,
        );
    }

    Verdict::Passed {
        detected_type: detected_type.to_owned(),
        class: class.clone(),
        tenant: parts.tenant,
        user: parts.user,
        filename: parts.filename,
    }
}

fn rejected(code: RejectCode, detail: String, detected_type: Option<String>) -> Verdict {
    Verdict::Rejected {
        code,
        detail,
        detected_type,
    }
}

/// The lowercased extension of the last path segment, if it has one; a dotfile
/// (`.bashrc`) or a trailing dot has none.
fn extension(filename: &str) -> Option<String> {
    let base = filename.rsplit('/').next().unwrap_or(filename);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
}

/// What `mime_guess` thinks an extension means. `application/octet-stream` is left out:
/// it is its answer for `.exe`, `.so`, `.bin`, which says nothing to check against.
fn guessed_types(ext: &str) -> Vec<&'static str> {
    mime_guess::from_ext(ext)
        .iter_raw()
        .filter(|m| *m != "application/octet-stream")
        .collect()
}

/// The `type/subtype` of a `Content-Type` header: parameters dropped, lowercased; `None`
/// when nothing is left.
fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

fn same_type(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    canonical(&a) == canonical(&b)
}

/// One name per format. Browsers, `mime_guess` and `infer` disagree on spellings (a
/// Windows browser declares a zip as `application/x-zip-compressed`, `mime_guess` calls a
/// `.dll` `application/x-msdownload`), and a mere spelling must not be a mismatch.
fn canonical(mime: &str) -> &str {
    match mime {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/x-png" => "image/png",
        "image/x-ms-bmp" | "image/x-bmp" => "image/bmp",
        "image/x-tiff" => "image/tiff",
        "application/x-pdf" => "application/pdf",
        "application/x-zip-compressed" | "application/x-zip" => "application/zip",
        // `mime_guess` answers `application/x-compressed` for `.tgz`.
        "application/x-gzip" | "application/x-compressed" => "application/gzip",
        "application/x-msdownload" | "application/x-dosexec" | "application/x-msdos-program" => PE,
        "application/x-elf" | "application/x-sharedlib" => "application/x-executable",
        "application/x-sh" | "application/x-shellscript" => "text/x-shellscript",
        "application/xml" => "text/xml",
        "audio/mp3" => "audio/mpeg",
        "audio/wav" | "audio/wave" | "audio/vnd.wave" => "audio/x-wav",
        other => other,
    }
}

fn allowed_types(rules: &Rules) -> String {
    let types: Vec<&str> = rules
        .classes
        .iter()
        .flat_map(|(_, types, _)| types.iter().map(String::as_str))
        .collect();
    if types.is_empty() {
        "nothing".to_owned()
    } else {
        types.join(", ")
    }
}

/// A detected type as a message shows it, with a plain name for the dangerous ones.
struct Found<'a>(Option<&'a str>);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(mime) = self.0 else {
            return f.write_str("not a recognised type");
        };
        let label = match mime {
            "application/x-executable" => Some("ELF"),
            PE => Some("Windows PE"),
            "application/x-mach-binary" => Some("Mach-O"),
            "text/x-shellscript" => Some("script"),
            _ => None,
        };
        match label {
            Some(label) => write!(f, "{mime} ({label})"),
            None => f.write_str(mime),
        }
    }
}

/// Untrusted text (keys, header values) in a message: control characters escaped so a
/// key cannot forge extra log lines.
struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        for (name, want) in [
            ("photo.png", Some("png")),
            ("PHOTO.PNG", Some("png")),
            ("archive.tar.gz", Some("gz")),
            ("dir/inner.Pdf", Some("pdf")),
            ("README", None),
            (".bashrc", None),
            ("trailing.", None),
            ("dir.d/README", None),
        ] {
            assert_eq!(extension(name).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn content_type_essence() {
        for (header, want) in [
            ("text/plain; charset=utf-8", Some("text/plain")),
            (" Image/PNG ", Some("image/png")),
            ("text/plain;", Some("text/plain")),
            ("", None),
            (" ; charset=utf-8", None),
        ] {
            assert_eq!(essence(header).as_deref(), want, "{header:?}");
        }
    }

    #[test]
    fn aliases_are_the_same_type() {
        for (a, b) in [
            ("image/jpg", "image/jpeg"),
            ("IMAGE/JPEG", "image/pjpeg"),
            ("application/x-zip-compressed", "application/zip"),
            ("application/x-gzip", "application/gzip"),
            ("application/x-msdownload", PE),
            ("application/x-sh", "text/x-shellscript"),
        ] {
            assert!(same_type(a, b), "{a} = {b}");
        }
        assert!(!same_type("image/png", "image/jpeg"));
        assert!(!same_type("text/plain", "text/csv"));
    }

    #[test]
    fn text_sniff() {
        assert!(looks_like_text(b"plain"));
        assert!(looks_like_text("caf\u{e9}".as_bytes()));
        // Cut inside the three-byte U+2713 by the ranged GET.
        assert!(looks_like_text(&"ok \u{2713}".as_bytes()[..5]));
        assert!(!looks_like_text(b""));
        assert!(!looks_like_text(b"nul\0inside"));
        assert!(!looks_like_text(&[0xE2]), "a lone lead byte is not text");
        assert!(!looks_like_text(b"bad \xFF byte"));
        assert!(!looks_like_text(b"bad \xE2\x9C in the middle"));
    }

    #[test]
    fn key_parsing_does_not_panic_on_a_multibyte_char_where_the_uuid_ends() {
        let template = "{tenant}/{user}/{uuid}-{filename}";
        for n in 30..40 {
            let key = format!("t/u/{}\u{e9}-x.png", "a".repeat(n));
            assert_eq!(parse_key(template, &key), None, "{key}");
        }
        let uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let parts = parse_key(template, &format!("t\u{e9}/\u{fc}/{uuid}-\u{444}.png"))
            .expect("non-ASCII keys that match still parse");
        assert_eq!(parts.tenant, "t\u{e9}");
        assert_eq!(parts.user.as_deref(), Some("\u{fc}"));
        assert_eq!(parts.filename.as_deref(), Some("\u{444}.png"));
    }

    #[test]
    fn messages_escape_control_characters() {
        assert_eq!(Printable("a\nb\u{7}c").to_string(), "a\\nb\\u{7}c");
    }
}
