//! `[log]`: level and format.
use serde::Deserialize;

use super::ConfigError;
use crate::support::telemetry::{LogFormat, LogSettings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default = "d_level")]
    level: String,
    #[serde(default = "d_format")]
    format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: d_level(),
            format: d_format(),
        }
    }
}

fn d_level() -> String {
    "info".into()
}
fn d_format() -> LogFormat {
    LogFormat::Text
}

impl RawLog {
    pub(super) fn validate(self) -> Result<LogSettings, ConfigError> {
        LogSettings::check_level(&self.level).map_err(|e| ConfigError::Invalid {
            key: "log.level",
            reason: format!("'{}': {e}", self.level),
        })?;
        Ok(LogSettings {
            level: self.level,
            format: self.format,
        })
    }
}
