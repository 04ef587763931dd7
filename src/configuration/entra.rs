//! `[entra]`: the app registration, Microsoft's endpoints, and where the
//! credential comes from (read on demand, never at parse time).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;

use super::parse::{base_url, bounded, ms, secs};
use super::{ConfigError, Settings, SECRET_CREDENTIAL, SECRET_ENV};
use crate::domain::TenantId;
use crate::graph::{ClientCertificate, Credential, EntraSettings};
use crate::support::warn_if_readable_by_others;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntra {
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

fn d_authority() -> String {
    "https://login.microsoftonline.com".into()
}
fn d_graph() -> String {
    "https://graph.microsoft.com/v1.0".into()
}
fn d_timeout() -> String {
    "30s".into()
}

impl RawEntra {
    pub(super) fn validate(
        self,
        resolve: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<EntraSettings, ConfigError> {
        // Application (client) IDs are GUIDs, like tenant ids.
        if TenantId::parse(&self.client_id).is_err() {
            return Err(ConfigError::Invalid {
                key: "entra.client_id",
                reason: format!(
                    "'{}' is not a GUID: set the Application (client) ID of the app registration",
                    self.client_id
                ),
            });
        }
        Ok(EntraSettings {
            client_id: self.client_id.trim().to_string(),
            client_secret_file: self.client_secret_file.map(resolve),
            client_certificate_file: self.client_certificate_file.map(resolve),
            client_certificate_key_file: self.client_certificate_key_file.map(resolve),
            authority_host: base_url("entra.authority_host", &self.authority_host)?,
            graph_base_url: base_url("entra.graph_base_url", &self.graph_base_url)?,
            request_timeout: bounded(
                "entra.request_timeout",
                &self.request_timeout,
                ms(50),
                secs(600),
            )?,
        })
    }
}

impl Settings {
    /// Which credential the app signs in with: a certificate when one is
    /// configured (Microsoft's recommendation for unattended apps), else the
    /// client secret. Read on demand, so commands that never call Microsoft
    /// (migrate, audit) do not need it.
    pub fn credential(&self) -> Result<Credential, ConfigError> {
        if let Some(cert) = &self.entra.client_certificate_file {
            let key = self
                .entra
                .client_certificate_key_file
                .as_ref()
                .unwrap_or(cert);
            let loaded = ClientCertificate::load(cert, key)?;
            return Ok(Credential::Certificate(Arc::new(loaded)));
        }
        self.client_secret().map(Credential::Secret)
    }

    /// The client secret, from (in order) the configured file, the
    /// environment, or a systemd credential.
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
