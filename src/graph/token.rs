//! App-only tokens (client credentials) per tenant, through the `oauth2`
//! crate, cached until shortly before they expire. One refresh at a time per
//! tenant: concurrent callers wait for the same token instead of stampeding
//! the login endpoint.
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use url::Url;

use super::assertion::{ClientCertificate, ASSERTION_TYPE};
use crate::domain::TenantId;

/// The app-only scope: every application permission the admin consented to.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Microsoft refused: wrong secret, app not consented in the tenant,
    /// app deleted... Retrying as-is will not help; an admin must act.
    #[error("login refused for tenant {tenant}: {error}: {description}")]
    Refused {
        tenant: TenantId,
        error: String,
        description: String,
    },
    /// No usable answer (network, 5xx): try again later.
    #[error("login endpoint unavailable for tenant {tenant}: {message}")]
    Unavailable { tenant: TenantId, message: String },
}

/// How the app proves who it is to the token endpoint.
#[derive(Clone)]
pub enum Credential {
    Secret(SecretString),
    /// A `client_assertion` signed with the app's certificate key
    /// (learn.microsoft.com/entra/identity-platform/certificate-credentials).
    Certificate(Arc<ClientCertificate>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

#[derive(Clone)]
struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

pub struct TokenProvider {
    http: reqwest::Client,
    authority: Url,
    client_id: String,
    credential: Credential,
    scope: String,
    slots: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("authority", &self.authority.as_str())
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .finish()
    }
}

impl TokenProvider {
    pub fn new(
        http: reqwest::Client,
        authority: Url,
        client_id: String,
        secret: SecretString,
    ) -> Self {
        Self::with_credential(http, authority, client_id, Credential::Secret(secret))
    }

    pub fn with_credential(
        http: reqwest::Client,
        authority: Url,
        client_id: String,
        credential: Credential,
    ) -> Self {
        Self {
            http,
            authority,
            client_id,
            credential,
            scope: GRAPH_SCOPE.into(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, tenant: &TenantId) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(tenant.clone()).or_default().clone()
    }

    /// A valid token for `tenant`, from the cache or freshly issued.
    pub async fn token(&self, tenant: &TenantId) -> Result<SecretString, TokenError> {
        let slot = self.slot(tenant);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.fetch(tenant).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the tenant's token if it is still `refused` (Graph answered
    /// 401 with it): a token another worker fetched meanwhile is kept.
    pub async fn invalidate(&self, tenant: &TenantId, refused: &SecretString) {
        let slot = self.slot(tenant);
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == refused.expose_secret())
        {
            *cached = None;
        }
    }

    fn token_url(&self, tenant: &TenantId) -> String {
        // {authority}/{tenant}/oauth2/v2.0/token
        // (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.as_str().trim_end_matches('/'),
            tenant
        )
    }

    async fn fetch(&self, tenant: &TenantId) -> Result<Cached, TokenError> {
        let unavailable = |message: String| TokenError::Unavailable {
            tenant: tenant.clone(),
            message,
        };
        let token_url = self.token_url(tenant);
        let url = TokenUrl::new(token_url.clone()).map_err(|e| unavailable(e.to_string()))?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
            // Microsoft documents the secret as a form field of the request body.
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(url);
        let mut assertion = None;
        match &self.credential {
            Credential::Secret(secret) => {
                client =
                    client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
            }
            Credential::Certificate(cert) => {
                // A new assertion (new jti) per request: one is never replayed.
                let signed = cert
                    .assertion(&self.client_id, &token_url)
                    .map_err(|e| unavailable(e.to_string()))?;
                assertion = Some(signed);
            }
        }
        let started = Instant::now();
        let mut request = client
            .exchange_client_credentials()
            .add_scope(Scope::new(self.scope.clone()));
        if let Some(a) = &assertion {
            request = request
                .add_extra_param("client_assertion_type", ASSERTION_TYPE)
                .add_extra_param("client_assertion", a.expose_secret().to_string());
        }
        let response = request.request_async(&self.http).await;
        match response {
            Ok(r) => {
                // A day at most, whatever the server says: no overflow, no
                // token kept past a plausible lifetime.
                let lifetime = r
                    .expires_in()
                    .unwrap_or(Duration::from_secs(3599))
                    .min(Duration::from_secs(86_400));
                // Refresh well before expiry so a long request never carries a dying token.
                let early = lifetime
                    .saturating_sub(Duration::from_secs(300))
                    .max(lifetime / 2);
                Ok(Cached {
                    token: SecretString::from(r.access_token().secret().to_string()),
                    refresh_at: started + early,
                })
            }
            Err(RequestTokenError::ServerResponse(e)) => {
                let error = match e.error() {
                    BasicErrorResponseType::Extension(s) => s.clone(),
                    other => other.to_string(),
                };
                let description = e
                    .error_description()
                    .map(|d| first_line(d))
                    .unwrap_or_default();
                // RFC 6749 5.2 / Microsoft's token errors: these two mean
                // "try again later", every other code needs someone to act.
                if matches!(error.as_str(), "temporarily_unavailable" | "server_error") {
                    return Err(unavailable(format!("{error}: {description}")));
                }
                Err(TokenError::Refused {
                    tenant: tenant.clone(),
                    error,
                    description,
                })
            }
            Err(RequestTokenError::Request(e)) => Err(unavailable(format!("{e}"))),
            Err(RequestTokenError::Parse(e, _)) => {
                Err(unavailable(format!("unreadable answer: {e}")))
            }
            Err(RequestTokenError::Other(s)) => Err(unavailable(s)),
        }
    }
}

/// AADSTS descriptions carry trace and correlation ids on later lines; the
/// first line is the part an admin can act on.
fn first_line(d: &str) -> String {
    d.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let p = TokenProvider::new(
            reqwest::Client::new(),
            Url::parse("https://login.microsoftonline.com").unwrap(),
            "11111111-2222-3333-4444-555555555555".into(),
            SecretString::from("s3cr3t-value".to_string()),
        );
        let d = format!("{p:?}");
        assert!(!d.contains("s3cr3t-value"), "{d}");
        assert!(d.contains("redacted"), "{d}");
    }
}
