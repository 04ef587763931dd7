//! Certificate credentials: instead of a client secret, the token request
//! carries a `client_assertion`, a JWT the app signs with its certificate's
//! private key. Microsoft recommends certificates over secrets for apps that
//! run unattended. Format, as documented in
//! https://learn.microsoft.com/entra/identity-platform/certificate-credentials:
//! header `alg` PS256, `typ` JWT, `x5t#S256` the base64url SHA-256
//! thumbprint of the certificate's DER; claims `aud` the token URL, `iss` and
//! `sub` the client id, `jti` a GUID, `nbf`, `iat` and a short `exp`.
use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest, Sha256};
use x509_cert::der::{pem, DecodePem, Encode};
use x509_cert::Certificate;

/// `client_assertion_type` for a JWT client assertion (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// "Keep it short - 5-10 minutes after nbf at most" (certificate-credentials).
const LIFETIME_SECS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "the private key in {key} does not belong to the certificate in {certificate}: \
         use the key the certificate was issued for"
    )]
    Mismatch { certificate: PathBuf, key: PathBuf },
    #[error("cannot sign the client assertion: {0}")]
    Sign(String),
}

/// The app's certificate and its private key. `Debug` shows the thumbprint
/// only; the key never leaves this type except as signatures (made by
/// `ring`, whose RSA private-key operations are constant-time).
pub struct ClientCertificate {
    thumbprint_s256: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_s256)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The first PEM block labelled `label` in `text`, markers included.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

impl ClientCertificate {
    /// Reads a PEM certificate and its PEM private key (PKCS#8 or PKCS#1);
    /// both may sit in the same file. Refuses a key that does not match the
    /// certificate, so a rotation mistake shows at start, not as AADSTS700027
    /// at the first token request.
    pub fn load(certificate: &Path, key: &Path) -> Result<Self, CertificateError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CertificateError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let invalid = |path: &Path, reason: String| CertificateError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        crate::support::warn_if_readable_by_others(key);
        let cert_text = read(certificate)?;
        let block = pem_block(&cert_text, "CERTIFICATE").ok_or_else(|| {
            invalid(
                certificate,
                "no PEM certificate (-----BEGIN CERTIFICATE-----) found".into(),
            )
        })?;
        let cert = Certificate::from_pem(block.as_bytes())
            .map_err(|e| invalid(certificate, format!("not an X.509 certificate: {e}")))?;
        let key_text = read(key)?;
        let private = if let Some(b) = pem_block(&key_text, "PRIVATE KEY") {
            let (_, der) = pem::decode_vec(b.as_bytes())
                .map_err(|e| invalid(key, format!("unreadable PEM: {e}")))?;
            RsaKeyPair::from_pkcs8(&der)
                .map_err(|e| invalid(key, format!("not an RSA PKCS#8 private key: {e}")))?
        } else if let Some(b) = pem_block(&key_text, "RSA PRIVATE KEY") {
            let (_, der) = pem::decode_vec(b.as_bytes())
                .map_err(|e| invalid(key, format!("unreadable PEM: {e}")))?;
            RsaKeyPair::from_der(&der)
                .map_err(|e| invalid(key, format!("not an RSA PKCS#1 private key: {e}")))?
        } else {
            return Err(invalid(
                key,
                "no unencrypted PEM private key (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN RSA PRIVATE KEY-----) found"
                    .into(),
            ));
        };
        // The certificate's subjectPublicKey is the PKCS#1 RSAPublicKey DER,
        // which is what ring exposes for the key pair.
        let public = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        if public != private.public().as_ref() {
            return Err(CertificateError::Mismatch {
                certificate: certificate.to_path_buf(),
                key: key.to_path_buf(),
            });
        }
        let der = cert
            .to_der()
            .map_err(|e| invalid(certificate, format!("cannot re-encode: {e}")))?;
        Ok(Self {
            thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(&der)),
            key: private,
            rng: SystemRandom::new(),
        })
    }

    /// The `x5t#S256` header value.
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// A fresh assertion for one token request to `token_url`.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
    ) -> Result<SecretString, CertificateError> {
        let now = chrono::Utc::now().timestamp();
        let header = json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint_s256 });
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": crate::support::new_guid(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PSS_SHA256, &self.rng, input.as_bytes(), &mut signature)
            .map_err(|_| CertificateError::Sign("RSA-PSS signing failed".into()))?;
        Ok(SecretString::from(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}
