//! ARNs of a pipeline's resources, computed (not looked up) so a dry run against an empty
//! account can show them and IAM policies can name them.

use intake_core::ResourceNames;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    pub account: String,
    pub region: String,
}

impl Arns {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Arns {
            account: account.into(),
            region: region.into(),
        }
    }

    pub fn bucket(&self, bucket: &str) -> String {
        format!("arn:aws:s3:::{bucket}")
    }

    pub fn queue(&self, queue: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{queue}", self.region, self.account)
    }

    pub fn topic(&self, topic: &str) -> String {
        format!("arn:aws:sns:{}:{}:{topic}", self.region, self.account)
    }

    /// A rule on the default event bus.
    pub fn rule(&self, rule: &str) -> String {
        format!(
            "arn:aws:events:{}:{}:rule/{rule}",
            self.region, self.account
        )
    }

    pub fn role_bucket(&self, names: &ResourceNames, role: BucketRole) -> String {
        self.bucket(names.bucket(role))
    }

    pub fn stage_queue(&self, names: &ResourceNames, stage: StageKind) -> String {
        self.queue(&names.stage(stage).queue)
    }

    pub fn stage_dlq(&self, names: &ResourceNames, stage: StageKind) -> String {
        self.queue(&names.stage(stage).dlq)
    }
}
