//! Two stacks in one test binary, in parallel on ONE LocalStack: each has its own
//! resources, sees only its own uploads, and removing one leaves the other untouched.

use std::sync::Arc;
use std::time::Duration;

use intake_testkit::{IntakeStack, LocalStack, Scanner, State, samples};

const WAIT: Duration = Duration::from_secs(90);

/// Every key (all versions) in the stack's buckets.
async fn keys_in_buckets(stack: &IntakeStack) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for bucket in stack.names().buckets.values() {
        let listed = stack
            .aws()
            .s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list {bucket}: {e}"));
        for v in listed.versions() {
            out.push((bucket.clone(), v.key().unwrap_or_default().to_owned()));
        }
    }
    out
}

async fn bucket_names(localstack: &LocalStack) -> Vec<String> {
    let aws = localstack.clients();
    let out = aws.s3.list_buckets().send().await.unwrap();
    out.buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect()
}

async fn queue_urls(localstack: &LocalStack, prefix: &str) -> Vec<String> {
    let aws = localstack.clients();
    let out = aws
        .sqs
        .list_queues()
        .queue_name_prefix(prefix)
        .send()
        .await
        .unwrap();
    out.queue_urls().to_vec()
}

/// Upload one photo for `tenant` and wait until it is done.
async fn one_photo(stack: &IntakeStack, tenant: &str) -> intake_testkit::UploadedFile {
    let file = stack
        .upload(
            tenant,
            "user-1",
            "photo.jpg",
            samples::jpeg_sized(320, 240, 80),
        )
        .await
        .expect("upload");
    let done = stack.wait_done(&file, WAIT).await.expect("done");
    assert_eq!(done.state, State::Done);
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stacks_share_one_localstack_without_touching_each_other() {
    let started = std::time::Instant::now();
    let localstack = Arc::new(LocalStack::start().await.expect("LocalStack"));
    let localstack_up = started.elapsed();
    let builder = || {
        IntakeStack::builder()
            .localstack(localstack.clone())
            .scanner(Scanner::None)
    };
    let (a, b) = tokio::join!(builder().start(), builder().start());
    let (a, b) = (a.expect("stack a"), b.expect("stack b"));
    let stacks_up = started.elapsed() - localstack_up;
    assert_ne!(a.name(), b.name());
    assert_eq!(
        a.localstack().endpoint(),
        b.localstack().endpoint(),
        "one LocalStack"
    );

    // Disjoint names, every one under its own stack's prefix.
    for (stack, other) in [(&a, &b), (&b, &a)] {
        for name in stack.resource_names() {
            assert!(name.starts_with(&format!("{}-", stack.name())), "{name}");
            assert!(!other.resource_names().contains(&name), "{name} is shared");
        }
    }

    // Both pipelines at work at once.
    let (file_a, file_b) = tokio::join!(one_photo(&a, "tenant-a"), one_photo(&b, "tenant-b"));

    // Each stack's buckets hold only its own upload and what its stages derived from it.
    for (stack, tenant, other_key) in [(&a, "tenant-a", &file_b.key), (&b, "tenant-b", &file_a.key)]
    {
        let keys = keys_in_buckets(stack).await;
        assert!(!keys.is_empty());
        for (bucket, key) in &keys {
            assert!(
                key.starts_with(&format!("{tenant}/")),
                "{bucket}/{key} in {}",
                stack.name()
            );
            assert_ne!(key, other_key);
        }
    }
    // Each ledger knows only its own file.
    assert!(
        a.ledger()
            .history(&file_b.bucket, &file_b.key)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.ledger()
            .history(&file_a.bucket, &file_a.key)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(a.rendition(&file_a, "thumb").await.is_ok());
    assert!(b.rendition(&file_a, "thumb").await.is_err());

    // Shutting A down removes A's resources and nothing of B's.
    let (a_name, b_name) = (a.name().to_owned(), b.name().to_owned());
    let b_buckets_before: Vec<String> = b.names().buckets.values().cloned().collect();
    let shutdown_started = std::time::Instant::now();
    a.shutdown().await;
    let shutdown = shutdown_started.elapsed();
    let buckets = bucket_names(&localstack).await;
    assert!(
        !buckets.iter().any(|n| n.starts_with(&a_name)),
        "{buckets:?}"
    );
    for bucket in &b_buckets_before {
        assert!(
            buckets.contains(bucket),
            "{bucket} of B went with A: {buckets:?}"
        );
    }
    assert!(queue_urls(&localstack, &a_name).await.is_empty());
    assert_eq!(
        queue_urls(&localstack, &b_name).await.len(),
        12,
        "B's 6 queues and 6 DLQs"
    );
    // B still works after A is gone.
    one_photo(&b, "tenant-b").await;

    // Dropping B (no shutdown) also removes its resources: the LocalStack is shared.
    let drop_started = std::time::Instant::now();
    drop(b);
    let dropped = drop_started.elapsed();
    let buckets = bucket_names(&localstack).await;
    assert!(
        !buckets.iter().any(|n| n.starts_with(&b_name)),
        "{buckets:?}"
    );
    assert!(queue_urls(&localstack, &b_name).await.is_empty());
    eprintln!(
        "timing: LocalStack up in {localstack_up:?}; two stacks on it up in {stacks_up:?}; \
         shutdown {shutdown:?}, drop {dropped:?}; all in {:?}",
        started.elapsed()
    );
}
