//! Buckets: read what S3 has, apply what differs. The uploads bucket's notification is
//! in [`super::entry_route`].

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketLoggingStatus, BucketVersioningStatus, CorsConfiguration, CreateBucketConfiguration,
    ExpirationStatus, LifecycleExpiration, LifecycleRule as SdkRule, LifecycleRuleFilter,
    LoggingEnabled, NoncurrentVersionExpiration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Transition, TransitionStorageClass, VersioningConfiguration,
};

use super::desired::{BucketState, CorsRule, LifecycleRule, Logging};
use crate::clients::AwsClients;
use crate::error::{AwsError, CallSite, classify, is_code};

/// Bucket settings that can differ, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    PublicAccessBlock,
    Encryption,
    Versioning,
    Policy,
    Cors,
    Lifecycle,
    Logging,
}

impl Aspect {
    pub const ALL: [Aspect; 7] = [
        Aspect::PublicAccessBlock,
        Aspect::Encryption,
        Aspect::Versioning,
        Aspect::Policy,
        Aspect::Cors,
        Aspect::Lifecycle,
        Aspect::Logging,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Aspect::PublicAccessBlock => "public access block",
            Aspect::Encryption => "encryption",
            Aspect::Versioning => "versioning",
            Aspect::Policy => "policy",
            Aspect::Cors => "cors",
            Aspect::Lifecycle => "lifecycle",
            Aspect::Logging => "logging",
        }
    }

    pub fn differs(self, a: &BucketState, b: &BucketState) -> bool {
        match self {
            Aspect::PublicAccessBlock => a.public_access_block != b.public_access_block,
            Aspect::Encryption => a.encryption != b.encryption,
            Aspect::Versioning => a.versioning != b.versioning,
            Aspect::Policy => a.policy != b.policy,
            Aspect::Cors => a.cors != b.cors,
            Aspect::Lifecycle => a.lifecycle != b.lifecycle,
            Aspect::Logging => a.logging != b.logging,
        }
    }
}

/// What S3 has for a bucket, or `None` when it does not exist.
pub async fn observe(aws: &AwsClients, bucket: &str) -> Result<Option<BucketState>, AwsError> {
    let s3 = &aws.s3;
    let site = CallSite::new(&aws.endpoint, format!("bucket {bucket}"));
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(None),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            return Err(AwsError::Conflict {
                resource: format!("bucket {bucket}"),
                message: "the name is taken by another account (403 on HeadBucket); set another name under [buckets] in pipeline.toml".into(),
            });
        }
        Err(e) => return Err(site.fail("HeadBucket")(e)),
    }

    let versioning = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(site.fail("GetBucketVersioning"))?;
    let encryption = match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|rule| {
                let algorithm = rule
                    .apply_server_side_encryption_by_default()?
                    .sse_algorithm()
                    .as_str()
                    .to_owned();
                Some((algorithm, rule.bucket_key_enabled().unwrap_or(false)))
            }),
        Err(e) if is_code(&e, &["ServerSideEncryptionConfigurationNotFoundError"]) => None,
        Err(e) => return Err(site.fail("GetBucketEncryption")(e)),
    };
    let public_access_block = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out
            .public_access_block_configuration()
            .map_or([false; 4], |c| {
                [
                    c.block_public_acls().unwrap_or(false),
                    c.ignore_public_acls().unwrap_or(false),
                    c.block_public_policy().unwrap_or(false),
                    c.restrict_public_buckets().unwrap_or(false),
                ]
            }),
        Err(e) if is_code(&e, &["NoSuchPublicAccessBlockConfiguration"]) => [false; 4],
        Err(e) => return Err(site.fail("GetPublicAccessBlock")(e)),
    };
    let cors = match s3.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => out
            .cors_rules()
            .iter()
            .map(|r| CorsRule {
                origins: r.allowed_origins().to_vec(),
                methods: sorted(r.allowed_methods().to_vec()),
                headers: r.allowed_headers().to_vec(),
                expose: r.expose_headers().to_vec(),
                max_age_secs: r.max_age_seconds(),
            })
            .collect(),
        Err(e) if is_code(&e, &["NoSuchCORSConfiguration"]) => Vec::new(),
        Err(e) => return Err(site.fail("GetBucketCors")(e)),
    };
    let lifecycle = match s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => {
            let mut rules: Vec<_> = out.rules().iter().map(rule_from_sdk).collect();
            rules.sort();
            rules
        }
        Err(e) if is_code(&e, &["NoSuchLifecycleConfiguration"]) => Vec::new(),
        Err(e) => return Err(site.fail("GetBucketLifecycleConfiguration")(e)),
    };
    let logging = s3
        .get_bucket_logging()
        .bucket(bucket)
        .send()
        .await
        .map_err(site.fail("GetBucketLogging"))?
        .logging_enabled()
        .map(|l| Logging {
            target_bucket: l.target_bucket().to_owned(),
            prefix: l.target_prefix().to_owned(),
        });
    let policy = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out.policy().and_then(|p| serde_json::from_str(p).ok()),
        Err(e) if is_code(&e, &["NoSuchBucketPolicy"]) => None,
        Err(e) => return Err(site.fail("GetBucketPolicy")(e)),
    };

    Ok(Some(BucketState {
        versioning: versioning.status() == Some(&BucketVersioningStatus::Enabled),
        encryption,
        public_access_block,
        cors,
        lifecycle,
        logging,
        policy,
    }))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn rule_from_sdk(rule: &SdkRule) -> LifecycleRule {
    let prefix = rule
        .filter()
        .and_then(|f| f.prefix())
        .or(
            #[allow(deprecated)]
            rule.prefix(),
        )
        .unwrap_or_default()
        .to_owned();
    let tag = rule
        .filter()
        .and_then(|f| f.tag())
        .map(|t| (t.key().to_owned(), t.value().to_owned()));
    LifecycleRule {
        id: rule.id().unwrap_or_default().to_owned(),
        prefix,
        tag,
        expiration_days: rule.expiration().and_then(|e| e.days()),
        noncurrent_days: rule
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        abort_multipart_days: rule
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        transitions: rule
            .transitions()
            .iter()
            .map(|t| {
                (
                    t.days().unwrap_or(0),
                    t.storage_class()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect(),
    }
}

pub async fn create(aws: &AwsClients, bucket: &str) -> Result<(), AwsError> {
    let mut request = aws.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if aws.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, &["BucketAlreadyOwnedByYou"]) => Ok(()),
        Err(e) => Err(classify(
            &aws.endpoint,
            "CreateBucket",
            &format!("bucket {bucket}"),
            e,
        )),
    }
}

pub async fn apply(
    aws: &AwsClients,
    bucket: &str,
    state: &BucketState,
    aspect: Aspect,
) -> Result<(), AwsError> {
    let s3 = &aws.s3;
    let site = CallSite::new(&aws.endpoint, format!("bucket {bucket}"));
    match aspect {
        Aspect::PublicAccessBlock => {
            let [acls, ignore, policy, restrict] = state.public_access_block;
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(acls)
                        .ignore_public_acls(ignore)
                        .block_public_policy(policy)
                        .restrict_public_buckets(restrict)
                        .build(),
                )
                .send()
                .await
                .map_err(site.fail("PutPublicAccessBlock"))?;
        }
        Aspect::Encryption => {
            let Some((algorithm, bucket_key)) = &state.encryption else {
                return Ok(());
            };
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(algorithm.as_str()))
                .build()
                .expect("algorithm is set");
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(*bucket_key)
                .build();
            s3.put_bucket_encryption()
                .bucket(bucket)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(rule)
                        .build()
                        .expect("rules are set"),
                )
                .send()
                .await
                .map_err(site.fail("PutBucketEncryption"))?;
        }
        Aspect::Versioning => {
            let status = if state.versioning {
                BucketVersioningStatus::Enabled
            } else {
                BucketVersioningStatus::Suspended
            };
            s3.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .map_err(site.fail("PutBucketVersioning"))?;
        }
        Aspect::Policy => match &state.policy {
            Some(policy) => {
                s3.put_bucket_policy()
                    .bucket(bucket)
                    .policy(policy.to_string())
                    .send()
                    .await
                    .map_err(site.fail("PutBucketPolicy"))?;
            }
            None => {
                s3.delete_bucket_policy()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(site.fail("DeleteBucketPolicy"))?;
            }
        },
        Aspect::Cors if state.cors.is_empty() => {
            s3.delete_bucket_cors()
                .bucket(bucket)
                .send()
                .await
                .map_err(site.fail("DeleteBucketCors"))?;
        }
        Aspect::Cors => {
            let rules = state.cors.iter().map(|r| {
                aws_sdk_s3::types::CorsRule::builder()
                    .set_allowed_origins(Some(r.origins.clone()))
                    .set_allowed_methods(Some(r.methods.clone()))
                    .set_allowed_headers(Some(r.headers.clone()))
                    .set_expose_headers(Some(r.expose.clone()))
                    .set_max_age_seconds(r.max_age_secs)
                    .build()
                    .expect("origins and methods are set")
            });
            s3.put_bucket_cors()
                .bucket(bucket)
                .cors_configuration(
                    CorsConfiguration::builder()
                        .set_cors_rules(Some(rules.collect()))
                        .build()
                        .expect("rules are set"),
                )
                .send()
                .await
                .map_err(site.fail("PutBucketCors"))?;
        }
        Aspect::Lifecycle => {
            let rules = state.lifecycle.iter().map(rule_to_sdk).collect();
            s3.put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder()
                        .set_rules(Some(rules))
                        .build()
                        .expect("rules are set"),
                )
                .send()
                .await
                .map_err(site.fail("PutBucketLifecycleConfiguration"))?;
        }
        Aspect::Logging => {
            let enabled = state.logging.as_ref().map(|l| {
                LoggingEnabled::builder()
                    .target_bucket(&l.target_bucket)
                    .target_prefix(&l.prefix)
                    .build()
                    .expect("target is set")
            });
            s3.put_bucket_logging()
                .bucket(bucket)
                .bucket_logging_status(
                    BucketLoggingStatus::builder()
                        .set_logging_enabled(enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(site.fail("PutBucketLogging"))?;
        }
    }
    Ok(())
}

fn rule_to_sdk(rule: &LifecycleRule) -> SdkRule {
    SdkRule::builder()
        .id(&rule.id)
        .status(ExpirationStatus::Enabled)
        .filter(match &rule.tag {
            Some((key, value)) => LifecycleRuleFilter::builder()
                .tag(
                    Tag::builder()
                        .key(key)
                        .value(value)
                        .build()
                        .expect("key and value are set"),
                )
                .build(),
            None => LifecycleRuleFilter::builder().prefix(&rule.prefix).build(),
        })
        .set_expiration(
            rule.expiration_days
                .map(|d| LifecycleExpiration::builder().days(d).build()),
        )
        .set_noncurrent_version_expiration(rule.noncurrent_days.map(|d| {
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(d)
                .build()
        }))
        .set_abort_incomplete_multipart_upload(rule.abort_multipart_days.map(|d| {
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(d)
                .build()
        }))
        .set_transitions(Some(
            rule.transitions
                .iter()
                .map(|(days, class)| {
                    Transition::builder()
                        .days(*days)
                        .storage_class(TransitionStorageClass::from(class.as_str()))
                        .build()
                })
                .collect(),
        ))
        .build()
        .expect("status is set")
}
