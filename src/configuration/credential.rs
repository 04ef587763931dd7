//! Which credential the app signs in with: a certificate when one is
//! configured (Microsoft's recommendation for unattended apps), else the
//! client secret.
use std::sync::Arc;

use super::{ConfigError, Settings};
use crate::graph::{ClientCertificate, Credential};

impl Settings {
    /// Read on demand, like the secret, so commands that never call
    /// Microsoft do not need it.
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
}
