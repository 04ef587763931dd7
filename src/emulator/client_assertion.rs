//! Certificate credentials at the token endpoint: the app authenticates
//! with a `client_assertion` JWT signed by a certificate registered on it,
//! as https://learn.microsoft.com/entra/identity-platform/certificate-credentials
//! describes: header `alg` (PS256; RS256 still accepted), `typ` JWT,
//! `x5t#S256` (base64url SHA-256 of the certificate's DER); claims `aud` =
//! the token URL, `iss` = `sub` = client id, `jti` unique, `nbf`, `exp`.
//! Error codes from
//! https://learn.microsoft.com/entra/identity-platform/reference-error-codes.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Registered {
    thumbprint_s256: String,
    /// PKCS#1 RSAPublicKey DER (the certificate's subjectPublicKey).
    key: Vec<u8>,
}

/// Certificates per app (lower-case client id) and the assertion ids seen.
#[derive(Default)]
pub(crate) struct CertificateRegistry {
    by_app: HashMap<String, Vec<Registered>>,
    /// jti -> exp: an assertion is accepted once (RFC 7523 section 3 lets
    /// the server refuse a replayed jti).
    used: HashMap<String, i64>,
}

/// A refusal: AADSTS code and description (always `invalid_client`, 401).
pub(crate) struct Refusal {
    pub code: u32,
    pub description: String,
}

fn refuse(code: u32, description: impl Into<String>) -> Refusal {
    Refusal {
        code,
        description: description.into(),
    }
}

/// JWS segments are base64url (RFC 7515 section 2 says without padding,
/// but Entra also takes the `=` padding some clients, azure-identity among
/// them, send).
fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn malformed() -> Refusal {
    refuse(50027, "JWT token is invalid or malformed.")
}

/// A compact JWS, decoded.
struct Jws {
    header: Value,
    claims: Value,
    signature: Vec<u8>,
    /// `header.payload` as sent: what the signature covers.
    signed: String,
}

fn decode(assertion: &str) -> Result<Jws, Refusal> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header: Value = b64url(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let claims: Value = b64url(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let signature = b64url(s).ok_or_else(malformed)?;
    Ok(Jws {
        header,
        claims,
        signature,
        signed: format!("{h}.{p}"),
    })
}

impl Registered {
    /// Whether this certificate's key made the signature, under the `alg` the header names.
    fn signed(&self, jws: &Jws) -> bool {
        let alg = match jws.header.get("alg").and_then(Value::as_str) {
            Some("PS256") => &RSA_PSS_2048_8192_SHA256,
            Some("RS256") => &RSA_PKCS1_2048_8192_SHA256,
            _ => return false,
        };
        UnparsedPublicKey::new(alg, &self.key)
            .verify(jws.signed.as_bytes(), &jws.signature)
            .is_ok()
    }
}

/// The token endpoint an assertion may name as its audience: the URL the
/// request was sent to, or Microsoft's own for the same tenant segment,
/// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`, which the
/// certificate-credentials page documents and Microsoft's SDKs put there.
pub(crate) struct TokenUrl<'a> {
    pub(crate) sent_to: &'a str,
    pub(crate) tenant_segment: &'a str,
}

impl TokenUrl<'_> {
    fn canonical(&self) -> String {
        format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            self.tenant_segment
        )
    }

    fn matches(&self, aud: &str) -> bool {
        aud.eq_ignore_ascii_case(self.sent_to) || aud.eq_ignore_ascii_case(&self.canonical())
    }
}

/// Audience, issuer and subject, validity window and a jti; returns the
/// jti and its expiry for the replay check.
fn check_claims(
    claims: &Value,
    client_id: &str,
    token_url: &TokenUrl<'_>,
    now: i64,
) -> Result<(String, i64), Refusal> {
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    if !token_url.matches(claim("aud")) {
        return Err(refuse(
            700212,
            format!("The audience '{}' of the client assertion is not valid: it must be the token endpoint '{}'.", claim("aud"), token_url.canonical()),
        ));
    }
    if !claim("iss").eq_ignore_ascii_case(client_id)
        || !claim("sub").eq_ignore_ascii_case(client_id)
    {
        return Err(refuse(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let num = |k: &str| claims.get(k).and_then(Value::as_i64);
    let (Some(exp), nbf) = (num("exp"), num("nbf")) else {
        return Err(malformed());
    };
    if exp <= now || nbf.is_some_and(|n| n > now) {
        return Err(refuse(
            700024,
            format!("Client assertion is not within its valid time range. Current time: {now}, assertion valid from {}, expiry time of assertion {exp}.", nbf.unwrap_or(0)),
        ));
    }
    let jti = claim("jti");
    if jti.is_empty() {
        return Err(malformed());
    }
    Ok((jti.to_string(), exp))
}

impl CertificateRegistry {
    /// Registers a PEM certificate on an app; returns its `x5t#S256`.
    pub(crate) fn register(&mut self, client_id: &str, pem: &str) -> Result<String, String> {
        let cert = Certificate::from_pem(pem.trim().as_bytes())
            .map_err(|e| format!("not a PEM X.509 certificate: {e}"))?;
        let spki = &cert.tbs_certificate.subject_public_key_info;
        // rsaEncryption (RFC 8017 appendix C)
        if spki.algorithm.oid.to_string() != "1.2.840.113549.1.1.1" {
            return Err("not an RSA certificate".into());
        }
        let key = spki.subject_public_key.raw_bytes().to_vec();
        let der = cert.to_der().map_err(|e| e.to_string())?;
        let thumbprint_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
        self.by_app
            .entry(client_id.to_lowercase())
            .or_default()
            .push(Registered {
                thumbprint_s256: thumbprint_s256.clone(),
                key,
            });
        Ok(thumbprint_s256)
    }

    /// Checks `assertion` from `client_id` sent to `token_url` at Unix time `now`.
    pub(crate) fn verify(
        &mut self,
        client_id: &str,
        token_url: &TokenUrl<'_>,
        assertion: &str,
        now: i64,
    ) -> Result<(), Refusal> {
        let jws = decode(assertion)?;
        let thumbprint = jws
            .header
            .get("x5t#S256")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(cert) = self
            .by_app
            .get(&client_id.to_lowercase())
            .and_then(|v| v.iter().find(|c| c.thumbprint_s256 == thumbprint))
        else {
            return Err(refuse(
                700027,
                format!("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"),
            ));
        };
        if !cert.signed(&jws) {
            return Err(refuse(
                700027,
                "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]",
            ));
        }
        let (jti, exp) = check_claims(&jws.claims, client_id, token_url, now)?;
        self.used.retain(|_, e| *e > now);
        if self.used.insert(jti, exp).is_some() {
            return Err(refuse(
                700027,
                "Client assertion failed validation: the assertion (jti) was already used.",
            ));
        }
        Ok(())
    }
}
