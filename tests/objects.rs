//! Moving object versions between buckets on LocalStack: the multipart path (UploadPartCopy)
//! that objects over 5 GB take, exercised with small limits, keeps the bytes, the
//! Content-Type, the user metadata, and sets the tags.

mod support;

use intake_aws::objects::{CopyLimits, copy_version_with};
use intake_core::ObjectRef;
use intake_core::names::BucketRole;
use support::{Pipeline, key};

#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_copy_keeps_bytes_type_and_metadata() {
    let p = Pipeline::start().await;
    let k = key("tenant-a", "large.bin");
    // 12 MiB + 3 bytes of a non-repeating pattern, so a misplaced part would show.
    let body: Vec<u8> = (0..12 * 1024 * 1024 + 3)
        .map(|i: u32| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    let put = p
        .aws
        .s3
        .put_object()
        .bucket(p.bucket(BucketRole::Uploads))
        .key(&k)
        .content_type("application/x-test")
        .metadata("origin", "the test")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    let source = ObjectRef {
        bucket: p.bucket(BucketRole::Uploads).to_owned(),
        key: k.clone(),
        version_id: put.version_id().map(str::to_owned),
        etag: None,
        size: body.len() as u64,
        tenant: None,
        user: None,
        sequencer: None,
    };
    // Limits scaled down so 12 MiB takes the path a 6 GB object would: three 5 MiB parts.
    let limits = CopyLimits {
        single_max: 8 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
    };
    let copied = copy_version_with(
        &p.aws,
        &source,
        p.bucket(BucketRole::Store),
        &[("intake-scan", "clean")],
        limits,
    )
    .await
    .expect("multipart copy");
    assert!(copied.version_id.is_some());
    assert!(
        copied.etag.as_deref().is_some_and(|e| e.contains("-3")),
        "a 3-part ETag: {:?}",
        copied.etag
    );

    let got = p
        .aws
        .s3
        .get_object()
        .bucket(p.bucket(BucketRole::Store))
        .key(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("the test")
    );
    assert_eq!(
        got.body.collect().await.unwrap().to_vec(),
        body,
        "same bytes, in order"
    );
    let tags = p
        .aws
        .s3
        .get_object_tagging()
        .bucket(p.bucket(BucketRole::Store))
        .key(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tag_set()
            .iter()
            .map(|t| (t.key(), t.value()))
            .collect::<Vec<_>>(),
        [("intake-scan", "clean")]
    );
}
