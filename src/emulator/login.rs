//! Microsoft identity platform token endpoint, client credentials grant:
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//! Error codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as HttpBody;
use axum::http::{HeaderMap, Response};
use chrono::Utc;
use serde_json::{json, Value};

use super::client_assertion;
use super::config::{AppRegistration, TenantSpec};
use super::errors::login_error;
use super::graph::{header, random_noise};
use super::listener::ConnHandle;
use super::login_request::{
    basic_credentials, check_endpoint, check_scope, client_id_and_secret, missing, one_method_only,
    param,
};
use super::state::{Shared, TokenRecord};
use super::types::{FaultKind, LoggedRequest};
use super::util::{format_seconds, new_guid, random_hex};

pub(super) struct Failure {
    status: u16,
    error: &'static str,
    code: u32,
    description: String,
    /// Seconds for a `Retry-After` header (an injected 429 or 503).
    retry_after: Option<f64>,
}

pub(super) fn fail(
    status: u16,
    error: &'static str,
    code: u32,
    description: impl Into<String>,
) -> Failure {
    Failure {
        status,
        error,
        code,
        description: description.into(),
        retry_after: None,
    }
}

fn reply(status: u16, body: &Value) -> Response<HttpBody> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Cache-Control", "no-store, no-cache")
        .header("Pragma", "no-cache")
        .body(HttpBody::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(HttpBody::empty()))
}

struct Issued {
    tenant_id: String,
    client_id: String,
    token: String,
    lifetime: Duration,
    /// The app roles granted in the tenant now; the token keeps them for
    /// its lifetime, whatever the admin changes meanwhile.
    roles: Vec<String>,
}

fn unavailable(status: u16) -> Failure {
    fail(
        status,
        "temporarily_unavailable",
        90006,
        "The service is temporarily unavailable.",
    )
}

/// AADSTS700016 names the requested client id and the tenant's GUID.
fn not_in_tenant(client_id: &str, tenant_id: &str) -> Failure {
    fail(
        400,
        "unauthorized_client",
        700016,
        format!("Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
    )
}

/// The grant's rules in the order the endpoint refuses: request shape,
/// client, scope, tenant and app, credential, consent.
fn issue(
    shared: &Shared,
    tenant_seg: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Issued, Failure> {
    let grant = param(params, "grant_type").ok_or_else(|| missing("grant_type"))?;
    check_endpoint(tenant_seg, grant)?;
    let (client_id, secret) = client_id_and_secret(headers, params)?;
    check_scope(param(params, "scope").ok_or_else(|| missing("scope"))?)?;
    let (tenant, app) = tenant_and_app(shared, tenant_seg, &client_id)?;
    check_credential(shared, tenant_seg, params, &client_id, &app, secret)?;
    // Without admin consent the multi-tenant app has no service principal in
    // the tenant (AADSTS700016: "not installed by the administrator of the
    // tenant or consented to by any user in the tenant"); a fresh consent
    // counts only once it has propagated.
    let propagated = shared
        .lock()
        .consent
        .is_effective(&tenant.id, Instant::now());
    if !tenant.consented || !propagated {
        return Err(not_in_tenant(&client_id, &tenant.id));
    }
    let lifetime = shared.scaled(Duration::from_secs(shared.cfg.token_lifetime_secs));
    Ok(Issued {
        tenant_id: tenant.id.clone(),
        client_id: app.client_id.clone(),
        token: format!("emu.{}", random_hex(32)),
        lifetime,
        roles: tenant.permissions.clone(),
    })
}

/// The tenant the URL names and the app registration, read under one lock
/// that is released before the credential checks take it again.
fn tenant_and_app(
    shared: &Shared,
    tenant_seg: &str,
    client_id: &str,
) -> Result<(TenantSpec, AppRegistration), Failure> {
    let inner = shared.lock();
    let Some(ti) = inner.tenant_index(tenant_seg) else {
        return Err(fail(
            400,
            "invalid_request",
            90002,
            format!("Tenant '{tenant_seg}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
        ));
    };
    let tenant = inner.tenants[ti].spec.clone();
    let Some(app) = inner.apps.get(&client_id.to_lowercase()).cloned() else {
        return Err(not_in_tenant(client_id, &tenant.id));
    };
    Ok((tenant, app))
}

/// Exactly one credential, a secret or a certificate assertion, and it must be the app's.
fn check_credential(
    shared: &Shared,
    tenant_seg: &str,
    params: &HashMap<String, String>,
    client_id: &str,
    app: &AppRegistration,
    secret: Option<String>,
) -> Result<(), Failure> {
    match (secret, param(params, "client_assertion")) {
        (Some(_), Some(_)) => Err(one_method_only()),
        (None, None) => Err(fail(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Some(secret), None) if secret != app.client_secret => Err(fail(
            401,
            "invalid_client",
            7000215,
            format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
        )),
        (Some(_), None) => Ok(()),
        (None, Some(assertion)) => {
            check_assertion(shared, tenant_seg, params, client_id, assertion)
        }
    }
}

fn check_assertion(
    shared: &Shared,
    tenant_seg: &str,
    params: &HashMap<String, String>,
    client_id: &str,
    assertion: &str,
) -> Result<(), Failure> {
    if param(params, "client_assertion_type") != Some(client_assertion::JWT_BEARER) {
        return Err(fail(
            400,
            "invalid_request",
            50027,
            format!(
                "client_assertion_type must be '{}'.",
                client_assertion::JWT_BEARER
            ),
        ));
    }
    // The audience is the token URL the request was sent to (or Microsoft's own).
    let sent_to = format!("{}/{tenant_seg}/oauth2/v2.0/token", shared.base_url);
    let token_url = client_assertion::TokenUrl {
        sent_to: &sent_to,
        tenant_segment: tenant_seg,
    };
    let now = Utc::now().timestamp();
    shared
        .lock()
        .certificates
        .verify(client_id, &token_url, assertion, now)
        .map_err(|r| fail(401, "invalid_client", r.code, r.description))
}

fn form_params(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The log never holds secrets or assertions.
fn logged_params(params: &HashMap<String, String>) -> serde_json::Map<String, Value> {
    params
        .iter()
        .map(|(k, v)| {
            let v = if k == "client_secret" || k == "client_assertion" {
                "***"
            } else {
                v.as_str()
            };
            (k.clone(), json!(v))
        })
        .collect()
}

/// Queued and background faults come before the endpoint's own checks.
/// Returns the outcome and the fault the log notes.
async fn attempt(
    shared: &Shared,
    conn: &ConnHandle,
    fault: Option<FaultKind>,
    method: &str,
    tenant_seg: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> (Result<Issued, Failure>, Option<String>) {
    match fault {
        Some(FaultKind::Drop) => {
            conn.kill();
            (Err(fail(0, "", 0, "")), Some("drop".to_string()))
        }
        Some(FaultKind::Status {
            status,
            retry_after,
        }) => {
            let f = Failure {
                retry_after,
                ..unavailable(status)
            };
            (Err(f), Some(format!("status {status}")))
        }
        other => {
            let mut note = None;
            if let Some(FaultKind::Delay { ms }) = other {
                note = Some(format!("delay {ms}ms"));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match random_noise(shared).await {
                Some(s) => (Err(unavailable(s)), Some(format!("random {s}"))),
                None if !method.eq_ignore_ascii_case("POST") => (
                    Err(fail(
                        400,
                        "invalid_request",
                        900561,
                        format!("The endpoint only accepts POST, OPTIONS requests. Received a {method} request."),
                    )),
                    note,
                ),
                None => (issue(shared, tenant_seg, headers, params), note),
            }
        }
    }
}

/// Records the token for Graph's bearer check, then answers with it.
fn hand_out(shared: &Shared, iss: Issued) -> Response<HttpBody> {
    let mut inner = shared.lock();
    let now = Instant::now();
    inner.prune_tokens(now);
    inner.tokens.insert(
        iss.token.clone(),
        TokenRecord {
            tenant_id: iss.tenant_id,
            client_id: iss.client_id,
            expires_at: now + iss.lifetime,
            roles: iss.roles,
        },
    );
    let secs = iss.lifetime.as_secs_f64().ceil() as u64;
    let body = json!({
        "token_type": "Bearer",
        "expires_in": secs,
        "ext_expires_in": secs,
        "access_token": iss.token,
    });
    reply(200, &body)
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: ConnHandle,
    method: &str,
    tenant_seg: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<HttpBody> {
    let request_id = new_guid();
    let params = form_params(body);
    let logged = logged_params(&params);
    let (seq, fault) = {
        let mut inner = shared.lock();
        (
            inner.next_seq(),
            inner.take_fault(Some(tenant_seg), method, path),
        )
    };
    let (outcome, mut fault_note) = attempt(
        &shared,
        &conn,
        fault.clone(),
        method,
        tenant_seg,
        headers,
        &params,
    )
    .await;
    if matches!(fault, Some(FaultKind::DropAfter)) && outcome.is_ok() {
        fault_note = Some("answer lost".into());
    }
    let client_id = params
        .get("client_id")
        .cloned()
        .or_else(|| basic_credentials(headers).map(|b| b.0));
    let (status, resp) = match outcome {
        // Issued, then the connection closes: a token the client never
        // received (it simply asks again).
        Ok(iss) if matches!(fault, Some(FaultKind::DropAfter)) => {
            hand_out(&shared, iss);
            conn.kill();
            (0, Response::new(HttpBody::empty()))
        }
        Ok(iss) => (200, hand_out(&shared, iss)),
        Err(f) if f.status == 0 => (0, Response::new(HttpBody::empty())),
        Err(f) => {
            let mut r = reply(f.status, &login_error(f.error, f.code, &f.description));
            if let Some(v) = f
                .retry_after
                .and_then(|s| axum::http::HeaderValue::from_str(&format_seconds(s)).ok())
            {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            (f.status, r)
        }
    };
    let entry = LoggedRequest {
        seq,
        time: Utc::now(),
        tenant: Some(tenant_seg.to_string()),
        client_id,
        method: method.to_string(),
        path: path.to_string(),
        query: None,
        status,
        client_request_id: header(headers, "client-request-id").map(str::to_string),
        request_id,
        throttle_priority: None,
        batch_seq: None,
        batch_item_id: None,
        body: Some(Value::Object(logged)),
        fault: fault_note,
    };
    let cap = shared.cfg.log_capacity;
    shared.lock().push_log(entry, cap);
    resp
}
