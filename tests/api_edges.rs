//! The API's edges against LocalStack, each a refusal docs/api.md lists with its code:
//! event streams capped per tenant and per process (`429 too_many_streams`, the slot
//! freed when the client goes away); `/readyz` detail (endpoints, ARNs, the account id)
//! only for admins or when configured; tenant and user ids that are `.`/`..` or carry
//! invisible format characters refused wherever they enter; part URLs refused after an
//! abort (`409 upload_aborted`); filenames cleaned as documented.

mod api_support;
mod support;

use std::time::Duration;

use api_support::{ApiStack, SERVICE_KEY_B};
use reqwest::Method;
use serde_json::{Value, json};

/// Opens `GET /v1/files/{id}/events`; on 200 waits for the first event, so the stream
/// is really open (and holds its slot) when this returns.
async fn open_stream(stack: &ApiStack, token: &str, file_id: &str) -> reqwest::Response {
    let mut response = stack
        .http
        .get(format!("{}/v1/files/{file_id}/events", stack.base))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    if response.status() == 200 {
        let first = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .expect("the first event comes at once")
            .unwrap()
            .expect("a first chunk");
        assert!(
            String::from_utf8_lossy(&first).contains("event: state"),
            "{first:?}"
        );
    }
    response
}

async fn refused_stream(stack: &ApiStack, token: &str, file_id: &str) -> (u64, Value) {
    let response = open_stream(stack, token, file_id).await;
    assert_eq!(response.status(), 429);
    let retry_after = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (retry_after, response.json().await.unwrap())
}

async fn signed_file(stack: &ApiStack, token: &str, name: &str) -> String {
    let signed = stack
        .sign(
            token,
            json!({"filename": name, "size": 5, "content_type": "text/plain"}),
        )
        .await;
    signed["file_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn event_streams_are_capped_per_tenant_and_per_process_and_freed_on_disconnect() {
    let stack = ApiStack::start(
        "INTAKE_TEST_JWT_SECRET_STREAMS",
        "max_event_streams = 3\nmax_event_streams_per_tenant = 2\n",
        false,
    )
    .await;
    // No workers: the files stay `awaiting_upload`, so their streams stay open.
    let token_a = stack.token("tenant-a", "alice");
    let token_c = stack.token("tenant-c", "carol");
    let token_d = stack.token("tenant-d", "dave");
    let file_a = signed_file(&stack, &token_a, "a.txt").await;
    let file_c = signed_file(&stack, &token_c, "c.txt").await;
    let file_d = signed_file(&stack, &token_d, "d.txt").await;

    let first = open_stream(&stack, &token_a, &file_a).await;
    let second = open_stream(&stack, &token_a, &file_a).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let (retry_after, body) = refused_stream(&stack, &token_a, &file_a).await;
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_event_streams_per_tenant = 2"),
        "{message}"
    );
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // Another tenant is not held back by tenant-a's cap, until the process is full.
    let third = open_stream(&stack, &token_c, &file_c).await;
    assert_eq!(third.status(), 200);
    let (_, body) = refused_stream(&stack, &token_d, &file_d).await;
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_event_streams = 3"),
        "{body}"
    );
    // A refused stream of an unknown file is a 404, not a slot.
    let response = open_stream(&stack, &token_d, "00000000-0000-4000-8000-000000000000").await;
    assert_eq!(response.status(), 404);

    // A client that goes away frees its place.
    drop(first);
    let reopened = intake_testkit::wait::eventually(
        "tenant-a's closed stream to free its slot",
        Duration::from_secs(60),
        || async {
            let response = open_stream(&stack, &token_a, &file_a).await;
            match response.status().as_u16() {
                200 => Ok(response),
                status => Err(format!("{status}")),
            }
        },
    )
    .await;
    drop((second, third, reopened));
    intake_testkit::wait::eventually(
        "tenant-d to get a stream once the others closed",
        Duration::from_secs(60),
        || async {
            let response = open_stream(&stack, &token_d, &file_d).await;
            match response.status().as_u16() {
                200 => Ok(()),
                status => Err(format!("{status}")),
            }
        },
    )
    .await;

    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("intake_api_rate_limited_total{scope=\"event_streams\"}"),
        "{metrics}"
    );
    stack.shutdown().await;
}

/// The text of `GET /readyz` with these headers.
async fn readyz(http: &reqwest::Client, base: &str, token: Option<&str>) -> (u16, String) {
    let mut request = http.get(format!("{base}/readyz"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_shows_endpoints_arns_and_the_account_only_to_admins_or_when_configured() {
    let stack = ApiStack::start("INTAKE_TEST_JWT_SECRET_READYZ", "", false).await;
    let p = &stack.pipeline;
    // Break one dependency so that a check has something to tell: the events topic.
    let account = p.aws.account_id().await.unwrap();
    let topic_arn = intake_aws::arn::Arns::new(account.clone(), p.aws.region.clone())
        .topic(&p.names.events_topic);
    p.aws
        .sns
        .delete_topic()
        .topic_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    let secrets = [
        account.as_str(),
        topic_arn.as_str(),
        p.names.events_topic.as_str(),
    ];

    let admin = stack.token_with("tenant-a", "root", json!({"roles": ["intake-admin"]}));
    let user = stack.token("tenant-a", "alice");
    let (status, detailed) = readyz(&stack.http, &stack.base, Some(&admin)).await;
    assert_eq!(status, 503, "{detailed}");
    assert!(
        detailed.contains(&topic_arn),
        "an admin sees what failed: {detailed}"
    );
    assert!(detailed.contains("latency_ms"), "{detailed}");

    for (who, token) in [
        ("anonymous", None),
        ("a tenant's user", Some(user.as_str())),
        ("a bad token", Some("not-a-token")),
    ] {
        let (status, text) = readyz(&stack.http, &stack.base, token).await;
        assert_eq!(status, 503, "{who}: {text}");
        for secret in secrets {
            assert!(!text.contains(secret), "{who} sees {secret}: {text}");
        }
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["ready"], false, "{who}: {text}");
        for check in body["checks"].as_array().unwrap() {
            let fields: Vec<&String> = check.as_object().unwrap().keys().collect();
            assert_eq!(fields, ["name", "ok"], "{who}: {text}");
        }
        let sns = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "sns")
            .unwrap();
        assert_eq!(sns["ok"], false, "{who}: {text}");
    }

    // `[api] readyz_detail = true`: everyone gets the detail.
    let mut config = (*p.config).clone();
    config.aws.endpoint_url = Some(p.localstack.endpoint().to_owned());
    config.api.readyz_detail = true;
    let api = intake_api::Api::new(config, p.aws.clone(), (*p.ledger).clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(intake_api::serve(listener, api, async move {
        let _ = stopped.await;
    }));
    let (status, text) = readyz(&stack.http, &base, None).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains(&topic_arn), "configured detail: {text}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ids_aborted_uploads_and_unsafe_filenames_get_their_documented_answers() {
    let stack = ApiStack::start("INTAKE_TEST_JWT_SECRET_EDGES", "dev_tokens = true\n", false).await;

    // Ids: `.`, `..` and invisible format characters, in tokens, dev tokens and the
    // X-Intake-User of a service key.
    for id in [
        ".",
        "..",
        "tenant-a\u{200b}",
        "tenant\u{202e}a",
        "\u{feff}tenant-a",
    ] {
        for token in [stack.token(id, "alice"), stack.token("tenant-a", id)] {
            let (status, body) = stack
                .call(Method::GET, "/v1/files", Some(&token), None)
                .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some("invalid_identity")),
                "{id:?}: {body}"
            );
        }
        for request in [
            json!({"tenant": id, "user": "dev"}),
            json!({"tenant": "tenant-d", "user": id}),
        ] {
            let (status, body) = stack
                .call(Method::POST, "/v1/dev/token", None, Some(request.clone()))
                .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_identity")),
                "{request}: {body}"
            );
        }
    }
    for user in [".", ".."] {
        let response = stack
            .http
            .get(format!("{}/v1/files", stack.base))
            .header("x-api-key", SERVICE_KEY_B)
            .header("x-intake-user", user)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_user_header", "{body}");
    }

    // Part URLs after an abort: 409 upload_aborted, and so is completing it.
    let token = stack.token("tenant-a", "alice");
    let signed = stack
        .sign(
            &token,
            json!({"filename": "big.zip", "size": 40 << 20, "content_type": "application/zip"}),
        )
        .await;
    let id = signed["file_id"].as_str().unwrap();
    let parts_path = format!("/v1/uploads/{id}/parts");
    let (status, body) = stack
        .call(
            Method::POST,
            &parts_path,
            Some(&token),
            Some(json!({"part_numbers": [1, 2]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stack
        .call(
            Method::DELETE,
            &format!("/v1/uploads/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = stack
        .call(
            Method::POST,
            &parts_path,
            Some(&token),
            Some(json!({"part_numbers": [1]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("upload_aborted")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/uploads"),
        "{body}"
    );
    let parts: Vec<Value> = (1..=5)
        .map(|n| json!({"part_number": n, "etag": "\"0123456789abcdef0123456789abcdef\""}))
        .collect();
    let (status, body) = stack
        .call(
            Method::POST,
            &format!("/v1/uploads/{id}/complete"),
            Some(&token),
            Some(json!({ "parts": parts })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("upload_aborted")),
        "{body}"
    );

    // Filenames: shell-special characters become `_`, as docs/api.md says.
    for (raw, clean) in [
        ("invoice $(rm -rf ~).txt", "invoice _rm -rf _.txt"),
        ("a;b&c!.txt", "a_b_c_.txt"),
        ("Red Flower (2).txt", "Red Flower _2_.txt"),
    ] {
        let signed = stack
            .sign(
                &token,
                json!({"filename": raw, "size": 5, "content_type": "text/plain"}),
            )
            .await;
        assert_eq!(signed["filename"], clean, "{raw}");
        assert!(
            signed["key"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{clean}")),
            "{signed}"
        );
    }
    stack.shutdown().await;
}
