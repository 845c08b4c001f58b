//! `IntakeStack` against a real LocalStack and a real clamd: a clean photo ends done with
//! a thumbnail, the EICAR file ends quarantined, and waiting for an executable that
//! validation rejects fails with a message naming the stage, the outcome and the code.

use std::time::Duration;

use intake_testkit::{IntakeStack, Scanner, StackError, State, samples};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_photo_ends_done_with_a_thumbnail_and_eicar_ends_quarantined() {
    let started = std::time::Instant::now();
    let stack = IntakeStack::builder()
        .scanner(Scanner::Clamd)
        .start()
        .await
        .expect("stack");
    let up = started.elapsed();

    let photo = stack
        .upload("tenant-a", "user-1", "red flower.jpg", samples::jpeg())
        .await
        .expect("upload the photo");
    let virus = stack
        .upload("tenant-a", "user-1", "notes.txt", samples::eicar())
        .await
        .expect("upload EICAR");
    assert!(photo.key.starts_with("tenant-a/user-1/"), "{photo}");
    assert!(photo.key.ends_with("-red flower.jpg"), "{photo}");

    let done = stack.wait_terminal(&photo, WAIT).await.expect("photo ends");
    assert_eq!(done.state, State::Done, "{done:#?}");
    let stages: Vec<&str> = done.steps.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(
        stages,
        ["validate", "scan", "thumbnail", "catalog", "archive"],
        "{done:#?}"
    );
    let thumb = stack.rendition(&photo, "thumb").await.expect("thumb");
    assert_eq!(thumb.content_type, "image/webp");
    assert_eq!(&thumb.bytes[..4], b"RIFF");
    assert!(
        thumb.width <= 256 && thumb.height <= 256,
        "{}x{}",
        thumb.width,
        thumb.height
    );
    let unknown = stack.rendition(&photo, "poster").await.unwrap_err();
    assert!(
        unknown.to_string().contains("it has thumb, preview"),
        "{unknown}"
    );

    let quarantined = stack
        .wait_for(&virus, State::Quarantined, WAIT)
        .await
        .expect("EICAR is quarantined");
    assert_eq!(
        (
            quarantined.stage.as_str(),
            quarantined.outcome.as_str(),
            quarantined.code.as_deref()
        ),
        ("scan", "infected", Some("infected")),
        "{quarantined:#?}"
    );
    assert!(
        quarantined
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("Intake.Test.EICAR"),
        "{quarantined:#?}"
    );
    let no_thumb = stack.rendition(&virus, "thumb").await.unwrap_err();
    assert!(
        no_thumb.to_string().contains("not in the catalog"),
        "{no_thumb}"
    );

    eprintln!(
        "timing: stack up in {up:?}, both files terminal after {:?}",
        started.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_rejected_executable_to_be_done_names_stage_outcome_and_code() {
    let stack = IntakeStack::builder()
        // Validation rejects it before any scan: no clamd needed here.
        .scanner(Scanner::None)
        .start()
        .await
        .expect("stack");
    let file = stack
        .upload("tenant-a", "user-1", "cat.png", samples::elf())
        .await
        .expect("upload");

    let err = stack.wait_done(&file, WAIT).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, StackError::Unexpected { stage, outcome, code, .. }
            if stage == "validate" && outcome == "rejected" && code == "type_mismatch"),
        "{err:?}"
    );
    assert!(
        message.contains(&format!(
            "{file} ended quarantined, not done: stage validate, outcome rejected, code type_mismatch"
        )),
        "{message}"
    );
    assert!(
        message.contains("application/x-executable"),
        "the detail: {message}"
    );
    eprintln!("the failure reads: {message}");

    // A version that never reaches the ledger times out saying so, not just "timed out".
    let ghost = intake_testkit::UploadedFile::new(stack.uploads_bucket(), "tenant-a/none", "v0");
    let timeout = stack
        .wait_terminal(&ghost, Duration::from_millis(300))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        timeout.contains("did not reach a terminal state within 300ms"),
        "{timeout}"
    );
    assert!(
        timeout.contains("the ledger has no record of this version"),
        "{timeout}"
    );
    stack.shutdown().await;
}
