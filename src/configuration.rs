//! `entra-daemon.toml`: parsed strictly (unknown keys are errors), then
//! validated into typed settings so the rest of the daemon never re-checks.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::mapping::{Mapping, MappingError};

mod credential;
mod http;
pub use http::{HttpSettings, StoreKey};

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
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub plumm: PlummSettings,
    pub state: StateSettings,
    pub entra: EntraSettings,
    pub sync: SyncSettings,
    pub mapping: Mapping,
    pub log: LogSettings,
    /// The connect server; `None` runs the daemon without one.
    pub http: Option<HttpSettings>,
}

#[derive(Debug, Clone)]
pub struct PlummSettings {
    pub database: PathBuf,
    /// How often `PRAGMA data_version` is sampled: a cheap read of shared
    /// memory, so a few milliseconds keeps the end-to-end latency low.
    pub poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct StateSettings {
    pub database: PathBuf,
}

#[derive(Debug, Clone)]
pub struct EntraSettings {
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    /// PEM certificate registered on the app; when set, token requests
    /// carry a signed client assertion instead of the secret.
    pub client_certificate_file: Option<PathBuf>,
    /// Its PEM private key (default: the certificate file itself).
    pub client_certificate_key_file: Option<PathBuf>,
    pub authority_host: Url,
    pub graph_base_url: Url,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDelete {
    Suspend,
    Delete,
    Ignore,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub on_delete: OnDelete,
    pub revoke_sessions_on_suspend: bool,
    pub upn_domain: Option<String>,
    /// Graph calls in flight at once for one tenant.
    pub max_in_flight_per_tenant: usize,
    pub retry: RetrySettings,
    /// How long a user Graph refused as a duplicate may stay invisible to
    /// lookups (replication) before the user is parked.
    pub replication_timeout: Duration,
    /// How long `SIGTERM` lets in-flight Graph calls finish.
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub initial: Duration,
    pub max: Duration,
    /// Attempts for one Graph call before the user goes back to the queue.
    pub max_attempts: usize,
    /// Longest wait before a user whose push failed is tried again.
    pub requeue_max: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

// ---- raw, as written in the file -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    plumm: RawPlumm,
    state: RawState,
    entra: RawEntra,
    #[serde(default)]
    sync: RawSync,
    mapping: Option<BTreeMap<String, String>>,
    #[serde(default)]
    log: RawLog,
    http: Option<http::RawHttp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlumm {
    database: PathBuf,
    #[serde(default = "d_poll")]
    poll_interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    database: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntra {
    client_id: String,
    client_secret_file: Option<PathBuf>,
    client_certificate_file: Option<PathBuf>,
    client_certificate_key_file: Option<PathBuf>,
    #[serde(default = "d_authority")]
    authority_host: String,
    #[serde(default = "d_graph")]
    graph_base_url: String,
    #[serde(default = "d_timeout")]
    request_timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    #[serde(default = "d_on_delete")]
    on_delete: OnDelete,
    #[serde(default = "d_true")]
    revoke_sessions_on_suspend: bool,
    #[serde(default)]
    upn_domain: String,
    #[serde(default = "d_in_flight")]
    max_in_flight_per_tenant: usize,
    #[serde(default = "d_retry_initial")]
    retry_initial: String,
    #[serde(default = "d_retry_max")]
    retry_max: String,
    #[serde(default = "d_retry_attempts")]
    retry_attempts: usize,
    #[serde(default = "d_requeue_max")]
    requeue_max: String,
    #[serde(default = "d_replication_timeout")]
    replication_timeout: String,
    #[serde(default = "d_drain_timeout")]
    drain_timeout: String,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            on_delete: d_on_delete(),
            revoke_sessions_on_suspend: true,
            upn_domain: String::new(),
            max_in_flight_per_tenant: d_in_flight(),
            retry_initial: d_retry_initial(),
            retry_max: d_retry_max(),
            retry_attempts: d_retry_attempts(),
            requeue_max: d_requeue_max(),
            replication_timeout: d_replication_timeout(),
            drain_timeout: d_drain_timeout(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
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

fn d_poll() -> String {
    "5ms".into()
}
fn d_authority() -> String {
    "https://login.microsoftonline.com".into()
}
fn d_graph() -> String {
    "https://graph.microsoft.com/v1.0".into()
}
fn d_timeout() -> String {
    "30s".into()
}
fn d_on_delete() -> OnDelete {
    OnDelete::Suspend
}
fn d_true() -> bool {
    true
}
fn d_in_flight() -> usize {
    4
}
fn d_retry_initial() -> String {
    "500ms".into()
}
fn d_retry_max() -> String {
    "60s".into()
}
fn d_retry_attempts() -> usize {
    6
}
fn d_requeue_max() -> String {
    "5m".into()
}
fn d_replication_timeout() -> String {
    "3m".into()
}
fn d_drain_timeout() -> String {
    "10s".into()
}
fn d_level() -> String {
    "info".into()
}
fn d_format() -> LogFormat {
    LogFormat::Text
}

pub(crate) fn duration(key: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(raw).map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("'{raw}' is not a duration like \"500ms\" or \"2m\": {e}"),
    })
}

pub(crate) fn base_url(key: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("'{raw}' is not a URL: {e}"),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        // Plain http is only for the loopback emulator; tokens never cross a network in clear.
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(ConfigError::Invalid {
            key,
            reason: format!("'{raw}' must be https (plain http is allowed only on loopback)"),
        }),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
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
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::validate(raw, base)
    }

    fn validate(raw: RawSettings, base: &Path) -> Result<Self, ConfigError> {
        // Relative paths are read against the config file's folder, so a
        // config can travel with its databases.
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        if raw.entra.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "entra.client_id",
                reason: "is empty: set the Application (client) ID of the app registration".into(),
            });
        }
        let in_flight = raw.sync.max_in_flight_per_tenant;
        if !(1..=64).contains(&in_flight) {
            return Err(ConfigError::Invalid {
                key: "sync.max_in_flight_per_tenant",
                reason: format!("{in_flight} is outside 1..=64"),
            });
        }
        if raw.sync.retry_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "sync.retry_attempts",
                reason: "must be at least 1".into(),
            });
        }
        let upn_domain = raw.sync.upn_domain.trim().to_string();
        if !upn_domain.is_empty() && (!upn_domain.contains('.') || upn_domain.contains('@')) {
            return Err(ConfigError::Invalid {
                key: "sync.upn_domain",
                reason: format!("'{upn_domain}' is not a domain name like contoso.onmicrosoft.com"),
            });
        }
        let mapping = match raw.mapping {
            Some(table) => Mapping::from_table(&table)?,
            None => Mapping::default(),
        };
        tracing_subscriber::EnvFilter::try_new(&raw.log.level).map_err(|e| {
            ConfigError::Invalid {
                key: "log.level",
                reason: format!("'{}': {e}", raw.log.level),
            }
        })?;
        Ok(Self {
            plumm: PlummSettings {
                database: resolve(raw.plumm.database),
                poll_interval: duration("plumm.poll_interval", &raw.plumm.poll_interval)?,
            },
            state: StateSettings {
                database: resolve(raw.state.database),
            },
            entra: EntraSettings {
                client_id: raw.entra.client_id.trim().to_string(),
                client_secret_file: raw.entra.client_secret_file.map(resolve),
                client_certificate_file: raw.entra.client_certificate_file.map(resolve),
                client_certificate_key_file: raw.entra.client_certificate_key_file.map(resolve),
                authority_host: base_url("entra.authority_host", &raw.entra.authority_host)?,
                graph_base_url: base_url("entra.graph_base_url", &raw.entra.graph_base_url)?,
                request_timeout: duration("entra.request_timeout", &raw.entra.request_timeout)?,
            },
            sync: SyncSettings {
                on_delete: raw.sync.on_delete,
                revoke_sessions_on_suspend: raw.sync.revoke_sessions_on_suspend,
                upn_domain: (!upn_domain.is_empty()).then_some(upn_domain),
                max_in_flight_per_tenant: in_flight,
                retry: RetrySettings {
                    initial: duration("sync.retry_initial", &raw.sync.retry_initial)?,
                    max: duration("sync.retry_max", &raw.sync.retry_max)?,
                    max_attempts: raw.sync.retry_attempts,
                    requeue_max: duration("sync.requeue_max", &raw.sync.requeue_max)?,
                },
                replication_timeout: duration(
                    "sync.replication_timeout",
                    &raw.sync.replication_timeout,
                )?,
                drain_timeout: duration("sync.drain_timeout", &raw.sync.drain_timeout)?,
            },
            mapping,
            log: LogSettings {
                level: raw.log.level,
                format: raw.log.format,
            },
            http: raw.http.map(|h| h.validate(&resolve)).transpose()?,
        })
    }

    /// The client secret, from (in order) the configured file, the
    /// environment, or a systemd credential. Read on demand so commands that
    /// never call Microsoft (migrate, audit) do not need it.
    pub fn client_secret(&self) -> Result<SecretString, ConfigError> {
        if let Some(path) = &self.entra.client_secret_file {
            warn_if_readable_by_others(path);
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
                path: path.clone(),
                source,
            })?;
            return non_empty(text);
        }
        if let Ok(v) = std::env::var(SECRET_ENV) {
            return non_empty(v);
        }
        if let Ok(dir) = std::env::var("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(SECRET_CREDENTIAL);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return non_empty(text);
            }
        }
        Err(ConfigError::NoSecret)
    }
}

fn non_empty(text: String) -> Result<SecretString, ConfigError> {
    let t = text.trim();
    if t.is_empty() {
        Err(ConfigError::NoSecret)
    } else {
        Ok(SecretString::from(t.to_string()))
    }
}

/// A secret other users can read is a leak waiting to happen; say so, but
/// do not refuse (operators sometimes stage files before fixing modes).
pub fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "secret file is readable by group or others; run chmod 600 on it"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[plumm]
database = "plumm.db"
[state]
database = "/var/lib/entra-daemon/state.db"
[entra]
client_id = "11111111-2222-3333-4444-555555555555"
"#;

    #[test]
    fn minimal_config_gets_microsoft_endpoints_and_documented_defaults() {
        let s = Settings::parse(MINIMAL, Path::new("/etc/entra/entra-daemon.toml")).unwrap();
        assert_eq!(
            s.entra.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(
            s.entra.graph_base_url.as_str(),
            "https://graph.microsoft.com/v1.0"
        );
        assert_eq!(s.plumm.database, PathBuf::from("/etc/entra/plumm.db"));
        assert_eq!(s.sync.on_delete, OnDelete::Suspend);
        assert!(s.sync.revoke_sessions_on_suspend);
        assert_eq!(s.sync.upn_domain, None);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let text = format!("{MINIMAL}\n[sync]\non_delet = \"suspend\"\n");
        let err = Settings::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("on_delet"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_and_the_reason() {
        let text = format!("{MINIMAL}\n[sync]\non_delete = \"purge\"\n");
        let err = Settings::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("purge"), "{err}");

        let text = MINIMAL.replace(
            "[entra]",
            "[entra]\ngraph_base_url = \"http://graph.example.com/v1.0\"",
        );
        let err = Settings::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("entra.graph_base_url"), "{err}");

        let text = format!("{MINIMAL}\n[mapping]\njobTitel = \"{{role}}\"\n");
        let err = Settings::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobTitel"), "{err}");
    }
}
