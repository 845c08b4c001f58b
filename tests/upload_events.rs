//! A PUT into the uploads bucket reaches the validate queue as an S3 event whose key decodes
//! back to the exact name uploaded: spaces, `+`, `%` and non-ASCII letters included.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use intake_aws::provision::{apply, plan};
use intake_core::names::BucketRole;
use intake_core::s3_key::decode_notification_key;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_testkit::{LocalStack, eventually, unique_pipeline_name};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn uploaded_keys_arrive_in_the_validate_queue_and_decode_exactly() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let aws = localstack.clients();
    let config = PipelineConfig::from_toml(include_str!("../pipeline.toml"), "pipeline.toml")
        .unwrap()
        .renamed(&unique_pipeline_name());
    apply(&aws, &plan(&aws, &config).await.unwrap())
        .await
        .unwrap();
    let names = ResourceNames::of(&config);

    let keys = [
        "tenant-a/user-1/01J-red flower.jpg",
        "tenant-a/user-1/01J-a+b=c.png",
        "tenant-a/user-1/01J-100% sure.pdf",
        "tenant-a/user-1/01J-café 日本 Ünïcödé.txt",
        "tenant-a/user-1/01J-plain.bin",
    ];
    for key in keys {
        aws.s3
            .put_object()
            .bucket(names.bucket(BucketRole::Uploads))
            .key(key)
            .body(key.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }

    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(&names.stage(StageKind::Validate).queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let seen = Mutex::new(BTreeSet::new());
    let expected: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
    eventually(
        "every uploaded key in the validate queue",
        Duration::from_secs(60),
        || {
            let (aws, url, seen, expected) = (&aws, &url, &seen, &expected);
            async move {
                let out = aws
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(2)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                for message in out.messages() {
                    let body: Value =
                        serde_json::from_str(message.body().unwrap()).expect("S3 event JSON");
                    // S3 announces a new notification configuration with a test event: skip it.
                    if body["Event"] != "s3:TestEvent" {
                        for record in body["Records"].as_array().expect("Records") {
                            assert!(
                                record["eventName"]
                                    .as_str()
                                    .unwrap()
                                    .starts_with("ObjectCreated:Put"),
                                "{record}"
                            );
                            let raw = record["s3"]["object"]["key"].as_str().unwrap();
                            seen.lock().unwrap().insert(
                                decode_notification_key(raw).unwrap_or_else(|e| panic!("{e}")),
                            );
                        }
                    }
                    aws.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(message.receipt_handle().unwrap())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let seen = seen.lock().unwrap();
                if &*seen == expected {
                    Ok(())
                } else {
                    Err(format!("seen {seen:?}"))
                }
            }
        },
    )
    .await;
    assert_eq!(seen.into_inner().unwrap(), expected);
}
