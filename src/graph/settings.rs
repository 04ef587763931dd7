//! `[entra]`: the app registration and Microsoft's endpoints. Pure data.
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

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
