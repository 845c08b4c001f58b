//! The app's own integration test: the whole Intake pipeline from `intake-testkit` (real
//! LocalStack, real clamd, every stage in-process), the app on port 0, and the test acting
//! as the browser. No sleeps: the testkit's waits poll Intake's ledger with a deadline.

use std::time::Duration;

use intake_testkit::{IntakeStack, Scanner, State, UploadedFile, samples};
use upload_app::{App, Created, NewPhoto, Photo};

const WAIT: Duration = Duration::from_secs(90);

/// The app, served on a free port until the returned sender is dropped.
async fn start_app(stack: &IntakeStack) -> (String, tokio::sync::oneshot::Sender<()>) {
    let app = App::new(
        stack.aws().clone(),
        stack.config(),
        stack.ledger().clone(),
        "tenant-a",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(upload_app::serve(listener, app, async {
        let _ = stopped.await;
    }));
    (base, stop)
}

/// What a browser does: ask the app for an upload URL, then PUT the bytes to S3.
async fn upload(
    http: &reqwest::Client,
    base: &str,
    stack: &IntakeStack,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (String, UploadedFile) {
    let created: Created = http
        .post(format!("{base}/photos"))
        .json(&NewPhoto {
            user: "user-1".into(),
            filename: filename.into(),
            size: bytes.len() as u64,
            content_type: content_type.into(),
        })
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut put = http.put(&created.upload.url).body(bytes);
    for (name, value) in &created.upload.headers {
        put = put.header(name, value);
    }
    let response = put.send().await.unwrap();
    assert!(response.status().is_success(), "PUT: {}", response.status());
    let version = response.headers()["x-amz-version-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let file = UploadedFile::new(stack.uploads_bucket(), &created.key, version);
    (created.id, file)
}

async fn photo(http: &reqwest::Client, base: &str, id: &str) -> Photo {
    http.get(format!("{base}/photos/{id}"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_photo_is_shown_with_its_thumbnail_and_eicar_is_quarantined() {
    let stack = IntakeStack::builder()
        .scanner(Scanner::Clamd)
        .start()
        .await
        .expect("Intake stack");
    let (base, _stop) = start_app(&stack).await;
    let http = reqwest::Client::new();

    let (photo_id, photo_file) = upload(
        &http,
        &base,
        &stack,
        "beach.jpg",
        "image/jpeg",
        samples::jpeg(),
    )
    .await;
    let (virus_id, virus_file) = upload(
        &http,
        &base,
        &stack,
        "notes.txt",
        "text/plain",
        samples::eicar(),
    )
    .await;

    // The pipeline: waits on Intake's ledger; a wrong ending fails with stage/outcome/code.
    let done = stack.wait_done(&photo_file, WAIT).await.unwrap();
    assert_eq!(done.state, State::Done);
    let quarantined = stack
        .wait_for(&virus_file, State::Quarantined, WAIT)
        .await
        .unwrap();
    assert_eq!(
        (quarantined.stage.as_str(), quarantined.outcome.as_str()),
        ("scan", "infected")
    );

    // The app: what its users see.
    let shown = photo(&http, &base, &photo_id).await;
    assert_eq!(shown.state, "done", "{shown:?}");
    let thumbnail_url = shown.thumbnail_url.expect("a done photo has a thumbnail");
    let thumb = http.get(&thumbnail_url).send().await.unwrap();
    assert!(
        thumb.status().is_success(),
        "thumbnail GET: {}",
        thumb.status()
    );
    let thumb = thumb.bytes().await.unwrap();
    assert_eq!(&thumb[..4], b"RIFF", "a WebP thumbnail");
    assert_eq!(
        thumb.to_vec(),
        stack.rendition(&photo_file, "thumb").await.unwrap().bytes
    );

    let virus = photo(&http, &base, &virus_id).await;
    assert_eq!(virus.state, "quarantined", "{virus:?}");
    assert_eq!(
        virus.reason.as_deref(),
        Some("scan/infected/infected"),
        "{virus:?}"
    );
    assert_eq!(virus.thumbnail_url, None);

    // An unknown id is a 404, and a photo not yet uploaded is pending.
    let missing = http
        .get(format!("{base}/photos/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let pending: Created = http
        .post(format!("{base}/photos"))
        .json(&NewPhoto {
            user: "user-1".into(),
            filename: "later.jpg".into(),
            size: 10,
            content_type: "image/jpeg".into(),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let later = photo(&http, &base, &pending.id).await;
    assert_eq!(later.state, "pending", "{later:?}");

    stack.shutdown().await;
}
