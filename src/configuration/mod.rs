//! `entra-daemon.toml`: parsed strictly (unknown keys are errors), then
//! validated into typed settings so the rest of the daemon never re-checks.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

mod audit;
mod credential;
mod http;
mod raw;

pub use audit::AuditSettings;
pub use http::{HttpSettings, StoreKey};

use raw::RawSettings;

use crate::domain::TenantId;
use crate::engine::quarantine::ProbeSettings;
use crate::engine::retry::RetrySettings;
use crate::graph::batch::BatchSettings;
use crate::mapping::{Mapping, MappingError};
use crate::pacing::limits::{AppLimits, Rate, TenantLimits, TenantSize};
use crate::plan::OnDelete;
use crate::support::warn_if_readable_by_others;

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
    pub pacing: PacingSettings,
    pub log: LogSettings,
    /// The connect server; `None` runs the daemon without one.
    pub http: Option<HttpSettings>,
    pub audit: AuditSettings,
}

/// How hard the daemon may push each tenant: Graph's documented limits by
/// tenant size, or the operator's numbers for a tenant.
#[derive(Debug, Clone, Default)]
pub struct PacingSettings {
    pub default_size: TenantSize,
    pub tenants: BTreeMap<TenantId, TenantPacing>,
    /// Divides every limit's window: 1.0 against Microsoft; the emulator's
    /// `time_scale` when it runs Microsoft's ratios faster (benchmarks, tests).
    pub time_scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPacing {
    pub size: Option<TenantSize>,
    pub resource_units_per_10s: Option<f64>,
    pub writes_per_150s: Option<f64>,
}

impl PacingSettings {
    pub fn limits_for(&self, tenant: &TenantId) -> TenantLimits {
        let o = self.tenants.get(tenant);
        let size = o.and_then(|o| o.size).unwrap_or(self.default_size);
        let mut l = TenantLimits::documented(size);
        if let Some(ru) = o.and_then(|o| o.resource_units_per_10s) {
            l.resource_units = Rate::new(ru, 10.0);
        }
        if let Some(w) = o.and_then(|o| o.writes_per_150s) {
            l.writes = Rate::new(w, 150.0);
        }
        TenantLimits {
            resource_units: self.scaled(l.resource_units),
            writes: self.scaled(l.writes),
            tenant_writes: self.scaled(l.tenant_writes),
        }
    }

    pub fn app_limits(&self) -> AppLimits {
        let a = AppLimits::documented();
        AppLimits {
            resource_units: self.scaled(a.resource_units),
            writes: self.scaled(a.writes),
        }
    }

    fn scaled(&self, r: Rate) -> Rate {
        Rate::new(r.capacity, r.window_secs / self.time_scale)
    }
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

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub on_delete: OnDelete,
    pub revoke_sessions_on_suspend: bool,
    pub upn_domain: Option<String>,
    /// Users worked on at once per tenant, for real-time changes and for
    /// bulk work (initial sync): separate pools, so a bulk backlog never
    /// takes the slots a new hire needs. The pacer decides how fast they go.
    pub realtime_workers_per_tenant: usize,
    pub bulk_workers_per_tenant: usize,
    pub retry: RetrySettings,
    /// Graph's replication window: how long a user Graph refused as a
    /// duplicate may stay invisible to lookups before the user is parked,
    /// how long a 404 for an account we created is lag rather than "gone",
    /// and how long a create whose answer was lost is looked for.
    pub replication_timeout: Duration,
    /// How long `SIGTERM` lets in-flight Graph calls finish.
    pub drain_timeout: Duration,
    /// `$batch` coalescing, or `None` to send every request alone.
    pub batch: Option<BatchSettings>,
    /// How often a quarantined tenant is asked whether it accepts the app again.
    pub probes: ProbeSettings,
    /// When full resyncs run by themselves (six-field cron, UTC); `None`: never.
    pub reconcile_schedule: Option<String>,
    /// The mass-deprovision brake.
    pub brake: crate::resync::brake::BrakeSettings,
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

/// toml's own message quotes the offending line, which could be a secret
/// someone pasted into the file: report the section, the key and the
/// position, never the value.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_string();
    };
    let before = &text[..span.start.min(text.len())];
    let line_no = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
        k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c))
    });
    let section = text
        .lines()
        .take(line_no)
        .filter(|l| l.trim_start().starts_with('['))
        .last()
        .map(str::trim);
    let place = match (section, key) {
        (Some(s), Some(k)) => format!("{s} {k} "),
        (None, Some(k)) => format!("{k} "),
        _ => String::new(),
    };
    format!("{place}(line {line_no}, column {col}): {}", e.message())
}

pub(crate) fn duration(key: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(raw).map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("'{raw}' is not a duration like \"500ms\" or \"2m\": {e}"),
    })
}

/// A duration within `min..=max`, so a typo cannot spin a loop or overflow a clock.
fn bounded(
    key: &'static str,
    raw: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let d = duration(key, raw)?;
    if d < min || d > max {
        return Err(ConfigError::Invalid {
            key,
            reason: format!(
                "'{raw}' is outside {} to {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        });
    }
    Ok(d)
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

fn at_least_one(key: &'static str, n: u64) -> Result<u64, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be at least 1".into(),
        });
    }
    Ok(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
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
            message: parse_message(text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::validate(raw, base)
    }

    fn validate(raw: RawSettings, base: &Path) -> Result<Self, ConfigError> {
        // Relative paths are read against the config file's folder, so a
        // config can travel with its databases.
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        // Application (client) IDs are GUIDs, like tenant ids.
        if TenantId::parse(&raw.entra.client_id).is_err() {
            return Err(ConfigError::Invalid {
                key: "entra.client_id",
                reason: format!(
                    "'{}' is not a GUID: set the Application (client) ID of the app registration",
                    raw.entra.client_id
                ),
            });
        }
        for (key, n) in [
            (
                "sync.realtime_workers_per_tenant",
                raw.sync.realtime_workers_per_tenant,
            ),
            (
                "sync.bulk_workers_per_tenant",
                raw.sync.bulk_workers_per_tenant,
            ),
        ] {
            if !(1..=256).contains(&n) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{n} is outside 1..=256"),
                });
            }
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
        let retry = RetrySettings {
            initial: bounded(
                "sync.retry_initial",
                &raw.sync.retry_initial,
                ms(1),
                secs(600),
            )?,
            max: bounded("sync.retry_max", &raw.sync.retry_max, ms(1), secs(3600))?,
            max_attempts: raw.sync.retry_attempts,
            requeue_max: bounded(
                "sync.requeue_max",
                &raw.sync.requeue_max,
                ms(1),
                secs(86_400),
            )?,
        };
        if retry.initial > retry.max {
            return Err(ConfigError::Invalid {
                key: "sync.retry_initial",
                reason: format!(
                    "{} is longer than sync.retry_max ({})",
                    raw.sync.retry_initial, raw.sync.retry_max
                ),
            });
        }
        let mapping = match raw.mapping {
            Some(table) => Mapping::from_table(&table)?,
            None => Mapping::default(),
        };
        let scale = raw.pacing.time_scale;
        if !(scale.is_finite() && (0.001..=1000.0).contains(&scale)) {
            return Err(ConfigError::Invalid {
                key: "pacing.time_scale",
                reason: format!("{scale} is outside 0.001..=1000 (1.0 is Microsoft's timing)"),
            });
        }
        let mut pacing = PacingSettings {
            default_size: raw.pacing.default_tenant_size,
            tenants: BTreeMap::new(),
            time_scale: scale,
        };
        for (tenant, o) in raw.pacing.tenants {
            let id = TenantId::parse(&tenant).map_err(|e| ConfigError::Invalid {
                key: "pacing.tenants",
                reason: e.to_string(),
            })?;
            let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
            if !positive(o.resource_units_per_10s) || !positive(o.writes_per_150s) {
                return Err(ConfigError::Invalid {
                    key: "pacing.tenants",
                    reason: format!("tenant {tenant}: limits must be positive numbers"),
                });
            }
            pacing.tenants.insert(id, o);
        }
        tracing_subscriber::EnvFilter::try_new(&raw.log.level).map_err(|e| {
            ConfigError::Invalid {
                key: "log.level",
                reason: format!("'{}': {e}", raw.log.level),
            }
        })?;
        Ok(Self {
            plumm: PlummSettings {
                database: resolve(raw.plumm.database),
                poll_interval: bounded(
                    "plumm.poll_interval",
                    &raw.plumm.poll_interval,
                    ms(1),
                    secs(10),
                )?,
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
                request_timeout: bounded(
                    "entra.request_timeout",
                    &raw.entra.request_timeout,
                    ms(50),
                    secs(600),
                )?,
            },
            sync: SyncSettings {
                on_delete: raw.sync.on_delete,
                revoke_sessions_on_suspend: raw.sync.revoke_sessions_on_suspend,
                upn_domain: (!upn_domain.is_empty()).then_some(upn_domain),
                realtime_workers_per_tenant: raw.sync.realtime_workers_per_tenant,
                bulk_workers_per_tenant: raw.sync.bulk_workers_per_tenant,
                retry,
                replication_timeout: bounded(
                    "sync.replication_timeout",
                    &raw.sync.replication_timeout,
                    ms(10),
                    secs(3600),
                )?,
                drain_timeout: bounded(
                    "sync.drain_timeout",
                    &raw.sync.drain_timeout,
                    ms(0),
                    secs(3600),
                )?,
                probes: ProbeSettings {
                    first: bounded(
                        "sync.quarantine_probe_first",
                        &raw.sync.quarantine_probe_first,
                        ms(10),
                        secs(86_400),
                    )?,
                    max: bounded(
                        "sync.quarantine_probe_max",
                        &raw.sync.quarantine_probe_max,
                        ms(10),
                        secs(7 * 86_400),
                    )?,
                },
                reconcile_schedule: crate::resync::schedule::parse(&raw.sync.reconcile_schedule)
                    .map_err(|reason| ConfigError::Invalid {
                        key: "sync.reconcile_schedule",
                        reason,
                    })?,
                brake: crate::resync::brake::BrakeSettings {
                    max_count: at_least_one(
                        "sync.max_deprovision_count",
                        raw.sync.max_deprovision_count,
                    )?,
                    max_percent: match raw.sync.max_deprovision_percent {
                        p @ 0..=100 => p,
                        p => {
                            return Err(ConfigError::Invalid {
                                key: "sync.max_deprovision_percent",
                                reason: format!("{p} is outside 0..=100"),
                            })
                        }
                    },
                    window: bounded(
                        "sync.brake_window",
                        &raw.sync.brake_window,
                        ms(0),
                        secs(86_400),
                    )?,
                },
                batch: match raw.sync.batch {
                    false => None,
                    true => Some(BatchSettings {
                        linger: bounded(
                            "sync.batch_linger",
                            &raw.sync.batch_linger,
                            ms(0),
                            secs(10),
                        )?,
                        in_flight: 4,
                    }),
                },
            },
            mapping,
            pacing,
            log: LogSettings {
                level: raw.log.level,
                format: raw.log.format,
            },
            http: raw.http.map(|h| h.validate(&resolve)).transpose()?,
            audit: raw.audit.validate()?,
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

#[cfg(test)]
mod tests;
