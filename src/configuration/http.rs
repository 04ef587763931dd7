//! `[http]` as written, validated into [`HttpSettings`].
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::parse::{base_url, duration};
use super::ConfigError;
use crate::http::HttpSettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    listen: String,
    public_url: Option<String>,
    store_return_url: String,
    store_signing_key_file: PathBuf,
    #[serde(default = "d_state_ttl")]
    state_ttl: String,
    #[serde(default = "d_link_max")]
    link_max_lifetime: String,
    #[serde(default = "d_consent_timeout")]
    consent_timeout: String,
    #[serde(default = "d_consent_retry")]
    consent_retry_interval: String,
}

fn d_state_ttl() -> String {
    "10m".into()
}
fn d_link_max() -> String {
    "15m".into()
}
fn d_consent_timeout() -> String {
    "90s".into()
}
fn d_consent_retry() -> String {
    "3s".into()
}

impl RawHttp {
    pub(super) fn validate(
        self,
        resolve: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<HttpSettings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|e| ConfigError::Invalid {
            key: "http.listen",
            reason: format!(
                "'{}' is not an address like 127.0.0.1:8080: {e}",
                self.listen
            ),
        })?;
        let public_url = match &self.public_url {
            Some(raw) => Some(base_url("http.public_url", raw)?),
            None if listen.ip().is_loopback() => None,
            None => {
                return Err(ConfigError::Invalid {
                    key: "http.public_url",
                    reason: "is required when http.listen is not a loopback address: set the \
                             https URL browsers use to reach this server"
                        .into(),
                })
            }
        };
        let store_return_url = base_url("http.store_return_url", &self.store_return_url)?;
        let settings = HttpSettings {
            listen,
            public_url,
            store_return_url,
            store_signing_key_file: resolve(self.store_signing_key_file),
            state_ttl: duration("http.state_ttl", &self.state_ttl)?,
            link_max_lifetime: duration("http.link_max_lifetime", &self.link_max_lifetime)?,
            consent_timeout: duration("http.consent_timeout", &self.consent_timeout)?,
            consent_retry_interval: duration(
                "http.consent_retry_interval",
                &self.consent_retry_interval,
            )?,
        };
        if settings.consent_retry_interval.is_zero() {
            return Err(ConfigError::Invalid {
                key: "http.consent_retry_interval",
                reason: "must be more than 0".into(),
            });
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::configuration::Settings;

    const BASE: &str = "[plumm]\ndatabase = \"p.db\"\n[state]\ndatabase = \"s.db\"\n\
                        [entra]\nclient_id = \"11111111-2222-3333-4444-555555555555\"\n";

    fn parse(http: &str) -> Result<Settings, String> {
        Settings::parse(&format!("{BASE}[http]\n{http}"), Path::new("/etc/e/c.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_annotated_example_parses_with_its_http_section() {
        let text = include_str!("../../entra-daemon.toml");
        let s = Settings::parse(text, Path::new("/etc/entra-daemon/entra-daemon.toml")).unwrap();
        let h = s.http.expect("[http]");
        assert_eq!(h.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            h.public_base("127.0.0.1:8080".parse().unwrap()),
            "https://entra-sync.plumm.example"
        );
        assert_eq!(h.state_ttl.as_secs(), 600);
    }

    #[test]
    fn http_settings_are_checked_with_the_key_and_the_reason() {
        let ok = "listen = \"127.0.0.1:0\"\nstore_return_url = \"https://app.example/store\"\n\
                  store_signing_key_file = \"k\"\n";
        let s = parse(ok).unwrap();
        let h = s.http.unwrap();
        assert_eq!(h.store_signing_key_file, Path::new("/etc/e/k"));
        assert_eq!(
            h.public_base("127.0.0.1:4321".parse().unwrap()),
            "http://127.0.0.1:4321"
        );

        let public = ok.replace("127.0.0.1:0", "0.0.0.0:8080");
        assert!(parse(&public).unwrap_err().contains("http.public_url"));
        let plain = format!("{public}public_url = \"http://sync.example\"\n");
        assert!(parse(&plain).unwrap_err().contains("must be https"));
        let ret = ok.replace("https://app.example/store", "http://app.example/store");
        assert!(parse(&ret).unwrap_err().contains("http.store_return_url"));
        let unknown = format!("{ok}listn = \"x\"\n");
        assert!(parse(&unknown).unwrap_err().contains("listn"));
        let zero = format!("{ok}consent_retry_interval = \"0s\"\n");
        assert!(parse(&zero).unwrap_err().contains("consent_retry_interval"));
    }
}
