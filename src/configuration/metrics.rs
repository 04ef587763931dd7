//! `[metrics]`: the private listener for `/healthz`, `/readyz`, `/metrics`.
use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;
use crate::http::health::MetricsSettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    listen: String,
}

impl RawMetrics {
    pub(super) fn validate(self) -> Result<MetricsSettings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|e| ConfigError::Invalid {
            key: "metrics.listen",
            reason: format!(
                "'{}' is not an address like 127.0.0.1:9464: {e}",
                self.listen
            ),
        })?;
        if !listen.ip().is_loopback() {
            // Allowed (a scraper on another host), but never by accident:
            // the probes name companies and database errors.
            tracing::warn!(
                %listen,
                "[metrics] listen is not a loopback address: keep it off the internet (firewall)"
            );
        }
        Ok(MetricsSettings { listen })
    }
}
