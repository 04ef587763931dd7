//! `[audit]`: how long audit rows are kept (part of the reloadable policy).
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    #[serde(default = "d_retention_days")]
    retention_days: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            retention_days: d_retention_days(),
        }
    }
}

/// A little over a year: a full annual review can still read last year's rows.
fn d_retention_days() -> u64 {
    400
}

impl RawAudit {
    /// The retention: rows older than this are pruned.
    pub(super) fn validate(self) -> Result<Duration, ConfigError> {
        // At least a day (a typo of 0 must not wipe the log); at most a century.
        if !(1..=36_500).contains(&self.retention_days) {
            return Err(ConfigError::Invalid {
                key: "audit.retention_days",
                reason: format!("{} is outside 1..=36500", self.retention_days),
            });
        }
        Ok(Duration::from_secs(self.retention_days * 86_400))
    }
}
