//! `entra-daemon.toml`: parsed strictly (unknown keys are errors), then each
//! section validated (one file per section) into the settings of the module
//! that reads them, and composed into [`Settings`]. Only `daemon`, `cli`
//! and `tools` import this module.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod audit;
mod databases;
mod entra;
mod groups;
mod http;
mod log;
mod metrics;
mod pacing;
mod parse;
mod sync;

use crate::engine::{Policy, SyncSettings};
use crate::graph::EntraSettings;
use crate::http::health::MetricsSettings;
use crate::http::HttpSettings;
use crate::mapping::groups::GroupRuleError;
use crate::mapping::{Mapping, MappingError};
use crate::pacing::PacingSettings;
use crate::resync::ResyncSettings;
use crate::store::{PlummSettings, StateSettings};
use crate::support::telemetry::LogSettings;

pub const DEFAULT_CONFIG_PATH: &str = "./entra-daemon.toml";
pub const SECRET_ENV: &str = "ENTRA_CLIENT_SECRET";
/// Name of the credential under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub const SECRET_CREDENTIAL: &str = "client-secret";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("config [mapping]: {0}")]
    Mapping(#[from] MappingError),
    #[error("config [[groups]] {0}")]
    Groups(#[from] GroupRuleError),
    #[error(
        "no client secret: set [entra] client_secret_file, the {SECRET_ENV} environment variable, \
         or a systemd credential named '{SECRET_CREDENTIAL}'"
    )]
    NoSecret,
    #[error("cannot read client secret file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("[entra] client certificate: {0}")]
    Certificate(#[from] crate::graph::assertion::CertificateError),
    #[error("config {0}")]
    StoreKey(#[from] crate::http::KeyError),
}

/// The whole configuration, each part typed by the module that reads it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub plumm: PlummSettings,
    pub state: StateSettings,
    pub entra: EntraSettings,
    /// The engine's pools and timings, fixed at start.
    pub sync: SyncSettings,
    /// What `SIGHUP` changes (see [`Policy`]).
    pub policy: Policy,
    pub resync: ResyncSettings,
    pub pacing: PacingSettings,
    pub log: LogSettings,
    /// The connect server; `None` runs the daemon without one.
    pub http: Option<HttpSettings>,
    /// The private health and metrics listener; `None`: not served.
    pub metrics: Option<MetricsSettings>,
}

/// The config file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    plumm: databases::RawPlumm,
    state: databases::RawState,
    entra: entra::RawEntra,
    #[serde(default)]
    sync: sync::RawSync,
    mapping: Option<BTreeMap<String, String>>,
    #[serde(default)]
    groups: Vec<groups::RawGroup>,
    #[serde(default)]
    pacing: pacing::RawPacing,
    #[serde(default)]
    log: log::RawLog,
    http: Option<http::RawHttp>,
    metrics: Option<metrics::RawMetrics>,
    #[serde(default)]
    audit: audit::RawAudit,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawSettings = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse::parse_message(text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::validate(raw, base)
    }

    fn validate(raw: RawSettings, base: &Path) -> Result<Self, ConfigError> {
        // Relative paths are read against the config file's folder, so a
        // config can travel with its databases.
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let entra = raw.entra.validate(&resolve)?;
        let mapping = match raw.mapping {
            Some(table) => Mapping::from_table(&table)?,
            None => Mapping::default(),
        };
        let rules = groups::validate(raw.groups)?;
        let sync = raw.sync.validate(mapping, rules, raw.audit.validate()?)?;
        Ok(Self {
            plumm: raw.plumm.validate(&resolve)?,
            state: raw.state.validate(&resolve),
            entra,
            sync: sync.settings,
            policy: sync.policy,
            resync: sync.resync,
            pacing: raw.pacing.validate()?,
            log: raw.log.validate()?,
            http: raw.http.map(|h| h.validate(&resolve)).transpose()?,
            metrics: raw.metrics.map(metrics::RawMetrics::validate).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests;
