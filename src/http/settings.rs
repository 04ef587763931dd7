//! `[http]`: the connect server's settings and the Store's signing key.
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Shortest signing key accepted: 256 bits of hex or base64 text.
const MIN_KEY_LEN: usize = 32;

/// Why the Store's signing key cannot be used. Never carries the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "[http] store_signing_key_file: the key is shorter than {MIN_KEY_LEN} characters: \
         create one with `openssl rand -hex 32`"
    )]
    Short,
    #[error("[http] store_signing_key_file: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where the server listens (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// How browsers reach the server (the redirect URI registered on the app
    /// is `{public_url}/oauth/callback`). `None` on loopback: the bound address.
    pub public_url: Option<Url>,
    /// Plumm's Store page the browser returns to, with `status=...`.
    pub store_return_url: Url,
    /// The key Plumm signs Connect and Disconnect links with.
    pub store_signing_key_file: PathBuf,
    /// How long a Connect click may take to come back through consent.
    pub state_ttl: Duration,
    /// Links whose `exp` lies further ahead than this are refused, so a
    /// leaked link cannot be kept for later.
    pub link_max_lifetime: Duration,
    /// How long the callback keeps trying to prove consent (Microsoft takes
    /// seconds to make a new consent effective).
    pub consent_timeout: Duration,
    pub consent_retry_interval: Duration,
}

/// The shared key of the signed Store links. `Debug` never shows it.
#[derive(Clone)]
pub struct StoreKey(SecretString);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

impl StoreKey {
    /// The key is the file's text without surrounding whitespace, so
    /// `openssl rand -hex 32 > key` and an editor's final newline both work.
    pub fn new(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if t.len() < MIN_KEY_LEN {
            return Err(KeyError::Short);
        }
        Ok(Self(SecretString::from(t.to_string())))
    }

    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl HttpSettings {
    pub fn signing_key(&self) -> Result<StoreKey, KeyError> {
        let path = &self.store_signing_key_file;
        crate::support::warn_if_readable_by_others(path);
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.clone(),
            source: e,
        })?;
        StoreKey::new(&text)
    }

    /// `{public_url}` as browsers see it, given the address actually bound.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreKey;

    #[test]
    fn a_short_signing_key_is_refused_and_never_printed() {
        let err = StoreKey::new("short-key\n").unwrap_err().to_string();
        assert!(err.contains("openssl rand -hex 32") && !err.contains("short-key"));
        let key = StoreKey::new("0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(key.bytes(), b"0123456789abcdef0123456789abcdef");
        assert!(!format!("{key:?}").contains("0123"));
    }
}
