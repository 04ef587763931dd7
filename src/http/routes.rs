//! The three routes of the connect flow.
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::{harden, HttpError};
use super::outcome::{failure_from_microsoft, Failure};
use super::prove::{prove_consent, ProofError};
use super::signed::{self, SignedLink};
use super::App;
use crate::connections::{disconnect as disconnect_company, ConnectError, Proof};
use crate::domain::{CompanyId, TenantId};
use crate::graph::token::GRAPH_SCOPE;
use crate::store::{AuditRecord, ConnectStart, Outcome, StoreError};

/// A `state` value: 256 random bits from the OS, base64url.
fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Only this is stored: a leaked database cannot complete a consent.
fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn redirect(status: StatusCode, location: &str) -> Result<Response, HttpError> {
    let value = HeaderValue::from_str(location)
        .map_err(|_| HttpError::Internal("redirect location is not a valid header".into()))?;
    let mut r = (status, [(header::LOCATION, value)]).into_response();
    harden(&mut r);
    Ok(r)
}

fn verify_link(app: &App, query: Option<String>) -> Result<SignedLink, HttpError> {
    let query = query.ok_or(HttpError::BadRequest("the link has no parameters"))?;
    let now = chrono::Utc::now().timestamp();
    Ok(signed::verify(
        &app.parts.key,
        &query,
        now,
        app.http().link_max_lifetime,
    )?)
}

/// `GET /connect?company&admin&exp&sig`: the Store's Connect button.
pub(crate) async fn connect(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let link = verify_link(&app, query)?;
    let state = new_state();
    let ttl = chrono::Duration::from_std(app.http().state_ttl)
        .map_err(|_| HttpError::Internal("http.state_ttl is too large".into()))?;
    app.state().create_oauth_state(
        &state_hash(&state),
        &ConnectStart {
            company: link.company,
            admin: link.admin.as_str().to_string(),
        },
        chrono::Utc::now() + ttl,
    )?;
    tracing::info!(company = %link.company, "connect started; sending the admin to Microsoft's consent page");
    // `organizations`: the admin's own work account picks the tenant.
    // https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
    let mut url = app
        .parts
        .authority_host
        .join("organizations/v2.0/adminconsent")
        .map_err(|e| HttpError::Internal(format!("authority_host: {e}")))?;
    url.query_pairs_mut()
        .append_pair("client_id", &app.parts.client_id)
        .append_pair("scope", GRAPH_SCOPE)
        .append_pair("redirect_uri", &app.redirect_uri())
        .append_pair("state", &state);
    redirect(StatusCode::FOUND, url.as_str())
}

/// `GET /oauth/callback`: where Microsoft sends the admin back.
pub(crate) async fn callback(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let state = params
        .get("state")
        .filter(|s| !s.is_empty())
        .ok_or(HttpError::BadRequest(
            "the answer from Microsoft has no state",
        ))?;
    let start = app
        .state()
        .take_oauth_state(&state_hash(state))?
        .map_err(HttpError::State)?;
    let company = start.company;
    let result = complete(&app, &start, &params).await;
    let location = match result {
        Ok(tenant) => app.return_url(company, Ok(&tenant)),
        Err(failure) => {
            let mut r = AuditRecord::new("connect", Outcome::Failed);
            r.company = Some(company);
            r.tenant = failure.tenant().cloned();
            r.error_code = failure.microsoft_code();
            r.detail = Some(format!(
                "connect started by {} failed: {}",
                start.admin,
                failure.detail()
            ));
            app.state().append_audit(&r)?;
            tracing::warn!(%company, reason = failure.reason(), "connect failed: {}", failure.detail());
            app.return_url(company, Err(&failure))
        }
    };
    redirect(StatusCode::SEE_OTHER, &location)
}

/// After a valid state: read Microsoft's answer, prove it, record it.
async fn complete(
    app: &App,
    start: &ConnectStart,
    params: &HashMap<String, String>,
) -> Result<TenantId, Failure> {
    if let Some(error) = params.get("error") {
        let description = params
            .get("error_description")
            .map(String::as_str)
            .unwrap_or_default();
        return Err(failure_from_microsoft(error, description));
    }
    let consented = params
        .get("admin_consent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let tenant = params
        .get("tenant")
        .and_then(|t| TenantId::parse(t).ok())
        .filter(|_| consented)
        .ok_or(Failure::InvalidResponse)?;
    check_conflicts(app, start.company, &tenant)?;
    let tries = prove_consent(
        &app.parts.graph,
        &tenant,
        app.http().consent_timeout,
        app.http().consent_retry_interval,
    )
    .await
    .map_err(|e| match e {
        ProofError::Pending(last) => Failure::ConsentPending {
            tenant: tenant.clone(),
            last,
        },
        ProofError::AppRefused(why) => Failure::AppRefused {
            tenant: tenant.clone(),
            why,
        },
    })?;
    record(app, start, &tenant, tries)
        .await
        .map_err(|e| match e {
            ConnectError::Store(StoreError::Conflict(_)) => {
                // Lost a race with another connect: say which rule it broke.
                check_conflicts(app, start.company, &tenant)
                    .err()
                    .unwrap_or(Failure::Internal(e.to_string()))
            }
            other => Failure::Internal(other.to_string()),
        })?;
    Ok(tenant)
}

/// One tenant per company and one company per tenant.
fn check_conflicts(app: &App, company: CompanyId, tenant: &TenantId) -> Result<(), Failure> {
    let internal = |e: StoreError| Failure::Internal(e.to_string());
    let holder = app
        .state()
        .connections()
        .map_err(internal)?
        .into_iter()
        .find(|c| &c.tenant == tenant);
    if let Some(h) = holder.filter(|h| h.company != company) {
        return Err(Failure::TenantInUse {
            tenant: tenant.clone(),
            other: h.company,
        });
    }
    if let Some(current) = app.state().connection(company).map_err(internal)? {
        if &current.tenant != tenant {
            return Err(Failure::OtherTenant {
                tenant: tenant.clone(),
                current: current.tenant,
            });
        }
    }
    Ok(())
}

/// The connection, the initial sync, the audit row (one implementation,
/// shared with the CLI). The dispatcher notices the state database changed
/// and starts at once.
async fn record(
    app: &App,
    start: &ConnectStart,
    tenant: &TenantId,
    tries: u32,
) -> Result<usize, ConnectError> {
    let policy = app.policy();
    let how = format!(
        "through Microsoft admin consent (token and Graph read verified after {tries} attempt(s))"
    );
    let proof = Proof::Verified {
        graph: &app.parts.graph,
        how,
    };
    app.connections(&policy)
        .connect(start.company, tenant, &start.admin, proof)
        .await
}

/// `POST /disconnect?company&admin&exp&sig`: the Store's Disconnect button.
pub(crate) async fn disconnect(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let link = verify_link(&app, query)?;
    let by = format!("{} (Plumm Store)", link.admin);
    let dropped = disconnect_company(app.state(), link.company, &by)
        .map_err(|e| HttpError::Internal(e.to_string()))?;
    let location = match dropped {
        Some(n) => {
            tracing::debug!(company = %link.company, dropped = n, "disconnected from the Store");
            app.disconnected_url(link.company, true)
        }
        None => app.disconnected_url(link.company, false),
    };
    redirect(StatusCode::SEE_OTHER, &location)
}
