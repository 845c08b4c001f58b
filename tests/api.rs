//! The HTTP API against LocalStack, a real clamd and every worker: uploads signed by the
//! API (PUT, POST, 64 MiB multipart in 8 parts) land with a plain HTTP client and are
//! processed; S3 itself refuses bodies outside the signature; downloads open only once a
//! file is promoted; events stream the states; a quarantine names its reason; deletes go
//! through the deletion worker. Then the tenant isolation suite (every endpoint, every bad
//! token kind), and the operational surface: health, readiness, metrics, OpenAPI, CORS,
//! rate limits, body limits and error bodies with request ids.

mod api_support;
mod support;

use std::time::Duration;

use api_support::{ApiStack, SERVICE_KEY_B, now_secs};
use intake_core::names::BucketRole;
use reqwest::Method;
use serde_json::{Value, json};

fn mib(n: usize) -> usize {
    n * 1024 * 1024
}

/// Reads `GET /v1/files/{id}/events` until the stream ends (after a final state): the
/// states it reported, in order.
async fn follow_events(stack: &ApiStack, token: &str, file_id: &str) -> Vec<Value> {
    let mut response = stack
        .http
        .get(format!("{}/v1/files/{file_id}/events", stack.base))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let reading = async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(180), reading)
        .await
        .expect("the event stream ends after a final state");
    buffer
        .split("\n\n")
        .filter(|frame| frame.contains("event: state"))
        .filter_map(|frame| {
            frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_uploads_land_are_processed_and_download_only_once_promoted() {
    let mut stack = ApiStack::start("INTAKE_TEST_JWT_SECRET_FLOW", "", true).await;
    let token = stack.token("tenant-a", "user-1");

    // PUT: the exact signed size lands; a bigger body is refused by S3 itself.
    let jpeg = intake_imaging::samples::photo_jpeg(1200, 800, 85);
    let photo = stack
        .sign(
            &token,
            json!({"filename": "../../Red Flower.jpg", "size": jpeg.len(), "content_type": "image/jpeg"}),
        )
        .await;
    assert_eq!(photo["method"], "put");
    let key = photo["key"].as_str().unwrap();
    let photo_id = photo["file_id"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("tenant-a/user-1/{photo_id}-Red Flower.jpg"));
    let mut too_big = jpeg.clone();
    too_big.extend_from_slice(b"extra");
    let refused = stack.put_signed(&photo, too_big).await;
    let refused_status = refused.status().as_u16();
    let refused_body = refused.text().await.unwrap();
    assert_eq!(
        refused_status, 403,
        "S3 refuses a body longer than signed: {refused_body}"
    );
    println!("PUT over the signed length: {refused_status} {refused_body}");
    let put = stack.put_signed(&photo, jpeg.clone()).await;
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());

    // Not promoted yet (no worker runs): no download.
    let download = format!("/v1/files/{photo_id}/download");
    let (status, body) = stack.call(Method::GET, &download, Some(&token), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_ready")),
        "{body}"
    );

    // POST: a browser form with the signed policy.
    let png = support::png();
    let logo = stack
        .sign(
            &token,
            json!({"filename": "logo.png", "size": png.len(), "content_type": "image/png", "method": "post"}),
        )
        .await;
    let post = &logo["post"];
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in post["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(png.clone()).file_name("logo.png"),
    );
    let posted = stack
        .http
        .post(post["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(
        posted.status().is_success(),
        "{}",
        posted.text().await.unwrap()
    );
    let logo_id = logo["file_id"].as_str().unwrap().to_owned();

    // EICAR, declared as text: validate passes it, clamd quarantines it.
    let eicar = intake_testkit::clamd::eicar();
    let virus = stack
        .sign(
            &token,
            json!({"filename": "notes.txt", "size": eicar.len(), "content_type": "text/plain"}),
        )
        .await;
    assert_eq!(stack.put_signed(&virus, eicar).await.status(), 200);
    let virus_id = virus["file_id"].as_str().unwrap().to_owned();

    // Multipart: 64 MiB in 8 parts of 8 MiB, 4 at a time, then complete.
    let zip_overhead = support::stored_zip("data.bin", &[]).len();
    let archive = support::stored_zip("data.bin", &vec![7u8; mib(64) - zip_overhead]);
    assert_eq!(archive.len(), mib(64));
    let big = stack
        .sign(
            &token,
            json!({"filename": "data.zip", "size": archive.len(), "content_type": "application/zip"}),
        )
        .await;
    assert_eq!(
        big["method"], "multipart",
        "64 MiB is over the 32 MiB threshold"
    );
    let big_id = big["file_id"].as_str().unwrap().to_owned();
    let part_count = big["multipart"]["part_count"].as_u64().unwrap();
    let part_size = big["multipart"]["part_size"].as_u64().unwrap() as usize;
    assert_eq!(
        (part_count, part_size),
        (8, mib(8)),
        "64 MiB in 8 parts of 8 MiB"
    );
    let numbers: Vec<u64> = (1..=part_count).collect();
    let (status, parts) = stack
        .call(
            Method::POST,
            &format!("/v1/uploads/{big_id}/parts"),
            Some(&token),
            Some(json!({"part_numbers": numbers})),
        )
        .await;
    assert_eq!(status, 200, "{parts}");
    let mut etags = Vec::new();
    for chunk in parts["parts"].as_array().unwrap().chunks(4) {
        let mut puts = Vec::new();
        for part in chunk {
            let n = part["part_number"].as_u64().unwrap() as usize;
            let start = (n - 1) * part_size;
            let end = (start + part_size).min(archive.len());
            assert_eq!(part["size"].as_u64().unwrap() as usize, end - start);
            let request = stack
                .http
                .put(part["url"].as_str().unwrap())
                .body(archive[start..end].to_vec());
            puts.push(async move { (n, request.send().await.unwrap()) });
        }
        for (n, response) in futures_util::future::join_all(puts).await {
            assert_eq!(response.status(), 200, "part {n}");
            etags.push(
                json!({"part_number": n, "etag": response.headers()["etag"].to_str().unwrap()}),
            );
        }
    }
    etags.sort_by_key(|p| p["part_number"].as_u64());
    let (status, completed) = stack
        .call(
            Method::POST,
            &format!("/v1/uploads/{big_id}/complete"),
            Some(&token),
            Some(json!({"parts": etags})),
        )
        .await;
    assert_eq!(status, 200, "{completed}");
    let head = stack
        .pipeline
        .aws
        .s3
        .head_object()
        .bucket(stack.pipeline.bucket(BucketRole::Uploads))
        .key(big["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(archive.len() as i64));

    // Now the workers: every file reaches its final state.
    stack.spawn_workers().await;
    let states = follow_events(&stack, &token, &photo_id).await;
    let seen: Vec<String> = states
        .iter()
        .map(|s| {
            format!(
                "{}{}",
                s["state"].as_str().unwrap(),
                s["stage"]
                    .as_str()
                    .map(|st| format!(":{st}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    println!("photo states from the event stream: {seen:?}");
    assert_eq!(states.last().unwrap()["state"], "done", "{seen:?}");
    assert!(states.last().unwrap()["ready"].as_bool().unwrap());
    assert!(seen.len() >= 2, "at least one step before done: {seen:?}");

    let detail = stack.wait_state(&token, &photo_id, "done").await;
    let renditions: Vec<&str> = detail["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(renditions, ["thumb", "preview"]);
    assert_eq!(detail["detected_type"], "image/jpeg");
    assert_eq!(
        (detail["width"].as_u64(), detail["height"].as_u64()),
        (Some(1200), Some(800))
    );
    let stages: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["validate", "scan", "thumbnail", "catalog", "archive"]
    );

    // Downloads: the original is the uploaded bytes, with the filename; the thumbnail is
    // a 256×256 image; an unknown rendition is a 404 naming the ones there are.
    let (status, original) = stack.call(Method::GET, &download, Some(&token), None).await;
    assert_eq!(status, 200, "{original}");
    let got = stack
        .http
        .get(original["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let disposition = got.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"Red Flower.jpg\""),
        "{disposition}"
    );
    assert_eq!(got.bytes().await.unwrap().to_vec(), jpeg);
    assert!(
        original["url"]
            .as_str()
            .unwrap()
            .contains(stack.pipeline.bucket(BucketRole::Store)),
        "downloads come from the store bucket, never uploads"
    );
    let (status, thumb) = stack
        .call(
            Method::GET,
            &format!("{download}?rendition=thumb"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{thumb}");
    let thumb_bytes = stack
        .http
        .get(thumb["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let image = image::load_from_memory(&thumb_bytes).expect("the thumbnail decodes");
    assert_eq!((image.width(), image.height()), (256, 256));
    let (status, missing) = stack
        .call(
            Method::GET,
            &format!("{download}?rendition=poster"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("rendition_not_found"))
    );

    stack.wait_state(&token, &logo_id, "done").await;
    let quarantined = stack.wait_state(&token, &virus_id, "quarantined").await;
    assert_eq!(quarantined["reason"]["stage"], "scan", "{quarantined}");
    assert_eq!(
        quarantined["reason"]["outcome"], "infected",
        "{quarantined}"
    );
    let (status, body) = stack
        .call(
            Method::GET,
            &format!("/v1/files/{virus_id}/download"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_downloadable"))
    );
    let big_done = stack.wait_state(&token, &big_id, "done").await;
    assert_eq!(big_done["detected_type"], "application/zip");

    // The list holds the four files, newest first, and filters by state.
    let (status, list) = stack
        .call(Method::GET, "/v1/files?limit=3", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    let first_page: Vec<&str> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        first_page,
        [big_id.as_str(), virus_id.as_str(), logo_id.as_str()]
    );
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, rest) = stack
        .call(
            Method::GET,
            &format!("/v1/files?limit=3&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(rest["files"][0]["file_id"], photo_id.as_str());
    assert!(rest["next_cursor"].is_null());
    let (_, only_quarantined) = stack
        .call(
            Method::GET,
            "/v1/files?state=quarantined",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(only_quarantined["files"].as_array().unwrap().len(), 1);

    // Delete: 202, then the deletion worker removes it; a second delete changes nothing.
    let file_path = format!("/v1/files/{photo_id}");
    let (status, deleting) = stack
        .call(Method::DELETE, &file_path, Some(&token), None)
        .await;
    assert_eq!(
        (status, deleting["state"].as_str()),
        (202, Some("deleting")),
        "{deleting}"
    );
    stack.wait_state(&token, &photo_id, "deleted").await;
    let (status, again) = stack
        .call(Method::DELETE, &file_path, Some(&token), None)
        .await;
    assert_eq!((status, again["state"].as_str()), (202, Some("deleted")));
    let (status, _) = stack.call(Method::GET, &download, Some(&token), None).await;
    assert_eq!(status, 409, "a deleted file has no download");
    let left = stack
        .pipeline
        .aws
        .s3
        .list_object_versions()
        .bucket(stack.pipeline.bucket(BucketRole::Store))
        .prefix(key)
        .send()
        .await
        .unwrap();
    assert!(left.versions().is_empty(), "no stored version left");
    stack.shutdown().await;
}

/// Every endpoint that names a file, called by tenant A about tenant B's files.
fn foreign_calls(put_id: &str, multipart_id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/v1/files/{put_id}"), None),
        (Method::GET, format!("/v1/files/{put_id}/events"), None),
        (Method::GET, format!("/v1/files/{put_id}/download"), None),
        (
            Method::GET,
            format!("/v1/files/{put_id}/download?rendition=thumb"),
            None,
        ),
        (Method::DELETE, format!("/v1/files/{put_id}"), None),
        (
            Method::POST,
            format!("/v1/uploads/{multipart_id}/parts"),
            Some(json!({"part_numbers": [1]})),
        ),
        (
            Method::POST,
            format!("/v1/uploads/{multipart_id}/complete"),
            Some(json!({"parts": [{"part_number": 1, "etag": "\"x\""}]})),
        ),
        (Method::DELETE, format!("/v1/uploads/{multipart_id}"), None),
        (Method::GET, "/v1/files?tenant=tenant-b".to_owned(), None),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_cannot_reach_each_others_files_and_bad_tokens_get_401() {
    // Hundreds of refused calls from one address: the per-IP limit is raised out of the way.
    let stack = ApiStack::start(
        "INTAKE_TEST_JWT_SECRET_ISOLATION",
        "[api.rate_limits]\nper_ip_per_minute = 100000\nburst = 10000\n",
        false,
    )
    .await;
    let token_a = stack.token("tenant-a", "alice");
    let token_b = stack.token("tenant-b", "bob");

    // Tenant B: one uploaded file and one open multipart upload.
    let bytes = b"hello from tenant b\n".to_vec();
    let put = stack
        .sign(
            &token_b,
            json!({"filename": "b.txt", "size": bytes.len(), "content_type": "text/plain"}),
        )
        .await;
    assert_eq!(stack.put_signed(&put, bytes.clone()).await.status(), 200);
    let multipart = stack
        .sign(
            &token_b,
            json!({"filename": "big.zip", "size": mib(40), "content_type": "application/zip"}),
        )
        .await;
    let put_id = put["file_id"].as_str().unwrap();
    let multipart_id = multipart["file_id"].as_str().unwrap();
    let uploads = stack.pipeline.bucket(BucketRole::Uploads).to_owned();
    let snapshot = || async {
        let head = stack
            .pipeline
            .aws
            .s3
            .head_object()
            .bucket(&uploads)
            .key(put["key"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let parts = stack
            .pipeline
            .aws
            .s3
            .list_parts()
            .bucket(&uploads)
            .key(multipart["key"].as_str().unwrap())
            .upload_id(multipart["multipart"]["upload_id"].as_str().unwrap())
            .send()
            .await
            .map(|p| p.parts().len())
            .map_err(|e| format!("{e:?}"));
        let b_files = stack
            .call(Method::GET, "/v1/files", Some(&token_b), None)
            .await;
        (
            head.version_id().map(str::to_owned),
            head.e_tag().map(str::to_owned),
            parts,
            b_files,
        )
    };
    let before = snapshot().await;

    let calls = foreign_calls(put_id, multipart_id);
    let mut denied = 0;
    for (method, path, body) in &calls {
        let (status, answer) = stack
            .call(method.clone(), path, Some(&token_a), body.clone())
            .await;
        let expected = if path.contains("tenant=") { 403 } else { 404 };
        assert_eq!(status, expected, "{method} {path}: {answer}");
        if expected == 404 {
            assert_eq!(
                answer["error"]["code"], "file_not_found",
                "indistinguishable from a missing file"
            );
        }
        assert!(
            !answer.to_string().contains("tenant-b/bob"),
            "no detail of B's file leaks: {answer}"
        );
        denied += 1;
    }
    // A's own list does not show B's files.
    let (_, list_a) = stack
        .call(Method::GET, "/v1/files", Some(&token_a), None)
        .await;
    assert_eq!(list_a["files"].as_array().unwrap().len(), 0);
    assert_eq!(
        snapshot().await,
        before,
        "tenant B's objects and records are unchanged"
    );
    println!(
        "tenant isolation: {denied}/{} cross-tenant calls denied (100 %)",
        calls.len()
    );
    assert_eq!(denied, calls.len());

    // Positive controls: B's own token, B's service key and an admin of A do see it.
    let (status, _) = stack
        .call(
            Method::GET,
            &format!("/v1/files/{put_id}"),
            Some(&token_b),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let with_key = stack
        .http
        .get(format!("{}/v1/files/{put_id}", stack.base))
        .header("x-api-key", SERVICE_KEY_B)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 200);
    let admin = stack.token_with("tenant-a", "root", json!({"roles": ["intake-admin"]}));
    let (status, _) = stack
        .call(
            Method::GET,
            &format!("/v1/files/{put_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "the admin role reads any tenant's file");

    // Every bad token kind, on every authenticated endpoint: 401 with a JSON error.
    let header_b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let valid = stack.token("tenant-b", "bob");
    let mut pieces = valid.split('.');
    let (h, _p, sig) = (
        pieces.next().unwrap(),
        pieces.next().unwrap(),
        pieces.next().unwrap(),
    );
    let forged_payload = header_b64(
        json!({"iss": api_support::ISSUER, "aud": api_support::AUDIENCE, "sub": "bob", "tenant": "tenant-a", "exp": now_secs() + 600}),
    );
    let bad_tokens: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".to_owned()),
        (
            "expired",
            stack.token_with("tenant-b", "bob", json!({"exp": now_secs() - 3600})),
        ),
        (
            "not yet valid",
            stack.token_with("tenant-b", "bob", json!({"nbf": now_secs() + 3600})),
        ),
        (
            "wrong audience",
            stack.token_with("tenant-b", "bob", json!({"aud": "someone-else"})),
        ),
        (
            "wrong issuer",
            stack.token_with("tenant-b", "bob", json!({"iss": "https://evil.test/"})),
        ),
        ("tampered", format!("{h}.{forged_payload}.{sig}")),
        (
            "alg none",
            format!(
                "{}.{}.",
                header_b64(json!({"alg": "none", "typ": "JWT"})),
                forged_payload
            ),
        ),
        ("other secret", {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &json!({"iss": api_support::ISSUER, "aud": api_support::AUDIENCE, "sub": "bob", "tenant": "tenant-b", "exp": now_secs() + 600}),
                &jsonwebtoken::EncodingKey::from_secret(b"not the secret"),
            )
            .unwrap()
        }),
        (
            "no tenant claim",
            stack.token_with("tenant-b", "bob", json!({"tenant": null})),
        ),
    ];
    let mut endpoints = foreign_calls(put_id, multipart_id);
    endpoints.push((Method::GET, "/v1/files".to_owned(), None));
    endpoints.push((
        Method::POST,
        "/v1/uploads".to_owned(),
        Some(json!({"filename": "a.txt", "size": 1, "content_type": "text/plain"})),
    ));
    let mut refused = 0;
    for (kind, token) in &bad_tokens {
        for (method, path, body) in &endpoints {
            let (status, answer) = stack
                .call(method.clone(), path, Some(token), body.clone())
                .await;
            assert_eq!(status, 401, "{kind} token on {method} {path}: {answer}");
            assert!(answer["error"]["code"].is_string(), "{answer}");
            refused += 1;
        }
    }
    for (method, path, body) in &endpoints {
        let (status, answer) = stack.call(method.clone(), path, None, body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("missing_credentials")),
            "{method} {path}"
        );
        refused += 1;
    }
    let unknown_key = stack
        .http
        .get(format!("{}/v1/files", stack.base))
        .header("x-api-key", "not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_key.status(), 401);
    println!(
        "bad credentials: {refused} calls ({} token kinds + none, {} endpoints) all 401",
        bad_tokens.len(),
        endpoints.len()
    );
    assert_eq!(
        snapshot().await,
        before,
        "still unchanged after the bad tokens"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_openapi_cors_limits_and_errors() {
    let stack = ApiStack::start(
        "INTAKE_TEST_JWT_SECRET_OPS",
        "dev_tokens = true\nbody_limit = \"4KiB\"\n[api.rate_limits]\nper_ip_per_minute = 60\nburst = 40\n",
        true,
    )
    .await;
    let token = stack.token("tenant-a", "user-1");

    let (status, health) = stack.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, ready) = stack.call(Method::GET, "/readyz", None, None).await;
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s3", "sqs", "sns", "database", "clamd"], "{ready}");
    assert_eq!(status, 200, "{ready}");

    // Errors: a fixed code, a message, and the request id that is also in the header.
    let response = stack
        .http
        .post(format!("{}/v1/uploads", stack.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-request-id", "trace-abc-123")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
    assert_eq!(body["error"]["request_id"], "trace-abc-123");
    for (request, status, code) in [
        (
            json!({"filename": "a.exe", "size": 10, "content_type": "application/x-msdownload"}),
            400,
            "type_not_allowed",
        ),
        (
            json!({"filename": "huge.jpg", "size": 60u64 << 20, "content_type": "image/jpeg"}),
            400,
            "too_large",
        ),
        (
            json!({"filename": "../..", "size": 10, "content_type": "image/jpeg"}),
            400,
            "invalid_filename",
        ),
        (
            json!({"filename": "a.jpg", "size": 0, "content_type": "image/jpeg"}),
            400,
            "invalid_size",
        ),
        (
            json!({"filename": "a.jpg", "size": 10, "content_type": "image/jpeg", "colour": "red"}),
            422,
            "invalid_body",
        ),
        (
            json!({"filename": "x".repeat(5000), "size": 10, "content_type": "image/jpeg"}),
            413,
            "body_too_large",
        ),
    ] {
        let (got, answer) = stack
            .call(
                Method::POST,
                "/v1/uploads",
                Some(&token),
                Some(request.clone()),
            )
            .await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{request}: {answer}"
        );
        assert!(
            answer["error"]["message"].as_str().unwrap().len() > 20,
            "{answer}"
        );
    }
    let (status, answer) = stack
        .call(Method::GET, "/v1/nothing-here", None, None)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Dev tokens work when enabled, and sign in as the tenant asked for.
    let (status, dev) = stack
        .call(
            Method::POST,
            "/v1/dev/token",
            None,
            Some(json!({"tenant": "tenant-d", "user": "dev"})),
        )
        .await;
    assert_eq!(status, 200, "{dev}");
    let (status, list) = stack
        .call(Method::GET, "/v1/files", dev["token"].as_str(), None)
        .await;
    assert_eq!(
        (status, list["files"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // The OpenAPI document describes every route.
    let (status, doc) = stack
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    for path in [
        "/v1/uploads",
        "/v1/uploads/{file_id}/parts",
        "/v1/files",
        "/v1/files/{file_id}/events",
        "/v1/files/{file_id}/download",
        "/readyz",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }

    // CORS: the configured origin (the page's) is allowed, another origin is not.
    let preflight = |origin: &str| {
        stack
            .http
            .request(Method::OPTIONS, format!("{}/v1/uploads", stack.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight(&stack.base).await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        stack.base.as_str()
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The per-IP limit: a burst of 40, then 429 with Retry-After; liveness stays open.
    let mut limited = None;
    for i in 0..100 {
        let response = stack
            .http
            .get(format!("{}/v1/client-config", stack.base))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some((i, response));
            break;
        }
    }
    let (after, response) = limited.expect("the per-IP limit answers 429");
    assert!(
        after >= 20,
        "the burst is allowed first ({after} requests passed)"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, _) = stack.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200, "liveness is never limited");

    // Metrics count what happened.
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("intake_api_rate_limited_total{scope=\"ip\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "intake_api_requests_total{method=\"POST\",route=\"/v1/uploads\",status=\"400\"}"
        ),
        "{metrics}"
    );
    stack.shutdown().await;
}
