//! Logging (`[log]`): human-readable on a terminal, JSON lines for log
//! collectors; `RUST_LOG` overrides `[log] level`.
use serde::Deserialize;
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info` or `entra_daemon=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl LogSettings {
    /// Whether `level` is a filter `tracing` accepts (the reason if not).
    pub fn check_level(level: &str) -> Result<(), String> {
        EnvFilter::try_new(level)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
