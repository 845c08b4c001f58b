//! The app's own integration test, end to end: the whole Intake pipeline from
//! `intake-testkit` (real LocalStack, real clamd, every stage in-process), Intake's HTTP API
//! on a free port as `intake serve` runs it (with a service key for the app), the app on a
//! free port talking only to that API, and the test acting as the browser: ask the app for
//! an upload URL, PUT the bytes to S3, ask the app for the photo until it is final,
//! download it. No sleeps: the app follows Intake's event stream, with a deadline.

use intake_testkit::stack::DEFAULT_CONFIG;
use intake_testkit::{IntakeStack, Scanner, samples};
use sha2::Digest;
use upload_app::{App, Created, IntakeClient, NewPhoto, Photo};

/// The app's service key; the stack's config holds only its SHA-256, like a real one.
const API_KEY: &str = "upload-app-test-service-key-0123456789";
/// Seconds the app may wait for a photo to be final (the pipeline takes a few).
const WAIT_SECS: u64 = 90;

/// The default pipeline with a service key for tenant `photos`, and no bearer-token secret
/// (the test has no `INTAKE_JWT_SECRET`; the app uses the key only).
fn config_with_service_key() -> String {
    let secret_line = "hs256_secret_env = \"INTAKE_JWT_SECRET\"";
    assert!(
        DEFAULT_CONFIG.contains(secret_line),
        "pipeline.toml's [api.auth] changed: update this test's config"
    );
    let hash = hex::encode(sha2::Sha256::digest(API_KEY.as_bytes()));
    format!(
        "{}\n[[api.keys]]\nname = \"upload-app\"\ntenant = \"photos\"\nsha256 = \"{hash}\"\n",
        DEFAULT_CONFIG.replace(secret_line, "")
    )
}

/// Something that stops a server task when dropped (also when the test panics).
struct Running(#[allow(dead_code)] tokio::sync::oneshot::Sender<()>);

/// Intake's API for `stack`, as `intake serve` would run it, on a free port.
async fn start_api(stack: &IntakeStack) -> (String, Running) {
    let api = intake_api::Api::new(
        (**stack.config()).clone(),
        stack.aws().clone(),
        (**stack.ledger()).clone(),
    )
    .await
    .expect("Intake's API starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(intake_api::serve(listener, api, async {
        let _ = stopped.await;
    }));
    (base, Running(stop))
}

/// The app, talking to the API at `api`, on a free port.
async fn start_app(api: &str) -> (String, Running) {
    let app = App::new(IntakeClient::new(api, API_KEY).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(upload_app::serve(listener, app, async {
        let _ = stopped.await;
    }));
    (base, Running(stop))
}

async fn create(http: &reqwest::Client, app: &str, filename: &str, ct: &str, size: u64) -> Created {
    let response = http
        .post(format!("{app}/photos"))
        .json(&NewPhoto {
            user: "user-1".into(),
            filename: filename.into(),
            size,
            content_type: ct.into(),
        })
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 201, "POST /photos {filename}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// What a browser does: ask the app for an upload URL, then PUT the bytes to it.
async fn upload(
    http: &reqwest::Client,
    app: &str,
    filename: &str,
    ct: &str,
    bytes: Vec<u8>,
) -> String {
    let created = create(http, app, filename, ct, bytes.len() as u64).await;
    let mut put = http.put(&created.upload.url).body(bytes);
    for (name, value) in &created.upload.headers {
        put = put.header(name, value);
    }
    let response = put.send().await.unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "PUT {filename}: {status}: {}",
        response.text().await.unwrap_or_default()
    );
    created.id
}

async fn photo(http: &reqwest::Client, app: &str, id: &str, wait_secs: u64) -> Photo {
    let response = http
        .get(format!("{app}/photos/{id}?wait_secs={wait_secs}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "GET /photos/{id}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn get_bytes(http: &reqwest::Client, url: &str, what: &str) -> Vec<u8> {
    let response = http.get(url).send().await.unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    assert!(
        status.is_success(),
        "GET {what}: {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes.to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_goes_through_the_app_to_done_and_downloads_and_eicar_is_quarantined() {
    let stack = IntakeStack::builder()
        .config_toml(config_with_service_key())
        .scanner(Scanner::Clamd)
        .start()
        .await
        .expect("Intake stack");
    let (api, api_running) = start_api(&stack).await;
    let (app, app_running) = start_app(&api).await;
    let http = reqwest::Client::new();

    let jpeg = samples::jpeg();
    let photo_id = upload(&http, &app, "beach.jpg", "image/jpeg", jpeg.clone()).await;
    let virus_id = upload(&http, &app, "notes.txt", "text/plain", samples::eicar()).await;

    // The clean photo: final state `done`, its bytes downloadable, a WebP thumbnail.
    let shown = photo(&http, &app, &photo_id, WAIT_SECS).await;
    assert_eq!(
        (shown.state.as_str(), shown.reason.as_deref()),
        ("done", None),
        "{shown:?}"
    );
    assert_eq!(shown.filename, "beach.jpg");
    let download_url = shown
        .download_url
        .as_deref()
        .expect("a done photo downloads");
    let downloaded = get_bytes(&http, download_url, "the photo").await;
    assert!(
        downloaded == jpeg,
        "the download is not the uploaded photo: {} bytes, uploaded {}",
        downloaded.len(),
        jpeg.len()
    );
    let thumbnail_url = shown
        .thumbnail_url
        .as_deref()
        .expect("a photo has a thumbnail");
    let thumb = get_bytes(&http, thumbnail_url, "the thumbnail").await;
    assert_eq!(
        (&thumb[..4], &thumb[8..12]),
        (&b"RIFF"[..], &b"WEBP"[..]),
        "a WebP thumbnail"
    );

    // EICAR: quarantined by the scan, nothing to download.
    let virus = photo(&http, &app, &virus_id, WAIT_SECS).await;
    assert_eq!(virus.state, "quarantined", "{virus:?}");
    assert_eq!(
        virus.reason.as_deref(),
        Some("scan/infected/infected"),
        "{virus:?}"
    );
    assert_eq!((virus.download_url, virus.thumbnail_url), (None, None));

    // An unknown id is a 404; a photo signed but not uploaded is awaiting its upload.
    let missing = http.get(format!("{app}/photos/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let later = create(&http, &app, "later.jpg", "image/jpeg", 10).await;
    let later = photo(&http, &app, &later.id, 0).await;
    assert_eq!(later.state, "awaiting_upload", "{later:?}");
    assert_eq!(later.download_url, None);

    // A type no content class takes is refused by Intake, and the app says so.
    let refused = http
        .post(format!("{app}/photos"))
        .json(&NewPhoto {
            user: "user-1".into(),
            filename: "tool.exe".into(),
            size: 10,
            content_type: "application/x-msdownload".into(),
        })
        .send()
        .await
        .unwrap();
    let status = refused.status();
    let body = refused.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("type_not_allowed"), "{body}");

    drop(app_running);
    drop(api_running);
    stack.shutdown().await;
}
