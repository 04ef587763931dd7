//! The checks every section shares: durations, bounds, URLs, and an error
//! message that never quotes a value.
use std::time::Duration;

use url::Url;

use super::ConfigError;

/// toml's own message quotes the offending line, which could be a secret
/// someone pasted into the file: report the section, the key and the
/// position, never the value.
pub(super) fn parse_message(text: &str, e: &toml::de::Error) -> String {
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

pub(super) fn duration(key: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(raw).map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("'{raw}' is not a duration like \"500ms\" or \"2m\": {e}"),
    })
}

/// A duration within `min..=max`, so a typo cannot spin a loop or overflow a clock.
pub(super) fn bounded(
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

pub(super) fn base_url(key: &'static str, raw: &str) -> Result<Url, ConfigError> {
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

pub(super) fn at_least_one(key: &'static str, n: u64) -> Result<u64, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be at least 1".into(),
        });
    }
    Ok(n)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn secs(n: u64) -> Duration {
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
