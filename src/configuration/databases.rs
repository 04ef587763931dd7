//! `[plumm]` and `[state]`: the two databases.
use std::path::PathBuf;

use serde::Deserialize;

use super::parse::{bounded, ms, secs};
use super::ConfigError;
use crate::store::{PlummSettings, StateSettings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlumm {
    database: PathBuf,
    #[serde(default = "d_poll")]
    poll_interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    database: PathBuf,
}

fn d_poll() -> String {
    "5ms".into()
}

impl RawPlumm {
    pub(super) fn validate(
        self,
        resolve: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<PlummSettings, ConfigError> {
        Ok(PlummSettings {
            database: resolve(self.database),
            poll_interval: bounded("plumm.poll_interval", &self.poll_interval, ms(1), secs(10))?,
        })
    }
}

impl RawState {
    pub(super) fn validate(self, resolve: &dyn Fn(PathBuf) -> PathBuf) -> StateSettings {
        StateSettings {
            database: resolve(self.database),
        }
    }
}
