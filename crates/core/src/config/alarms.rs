//! `[alarms]`: the CloudWatch alarms provisioning creates for every stage.

use serde::{Deserialize, Serialize};

use super::defaults;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSection {
    #[serde(default = "defaults::alarms_enabled")]
    pub enabled: bool,
    #[serde(default = "defaults::alarm_period_secs")]
    pub period_secs: u32,
    #[serde(default = "defaults::failures_threshold")]
    pub failures_threshold: u32,
    #[serde(default = "defaults::oldest_message_age_secs")]
    pub oldest_message_age_secs: u32,
}

impl Default for AlarmsSection {
    fn default() -> Self {
        AlarmsSection {
            enabled: defaults::alarms_enabled(),
            period_secs: defaults::alarm_period_secs(),
            failures_threshold: defaults::failures_threshold(),
            oldest_message_age_secs: defaults::oldest_message_age_secs(),
        }
    }
}
