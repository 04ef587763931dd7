//! The admin consent endpoint, `GET /{tenant}/v2.0/adminconsent`, as
//! https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
//! describes it: `client_id`, `redirect_uri` (must exactly match one
//! registered on the app), `scope`, `state`. The emulator's page stands in
//! for Microsoft's sign-in and consent screens: the admin names their work
//! account (its domain picks the tenant, as `organizations` does) and
//! chooses Accept or Cancel.
//!
//! - Accept by an admin: the consent is recorded and the browser goes to
//!   `redirect_uri?admin_consent=True&tenant=GUID&scope=...&state=...`.
//!   Tokens for the tenant are refused as not consented (AADSTS700016)
//!   until `consent_propagation_ms` has passed.
//! - Cancel: `redirect_uri?error=access_denied&error_subcode=cancel&
//!   error_description=AADSTS65004...&admin_consent=True&state=...` (no
//!   tenant).
//! - Accept by an account without an admin role: Microsoft's "Need admin
//!   approval" (AADSTS90094, see
//!   https://learn.microsoft.com/troubleshoot/entra/entra-id/app-integration/troubleshoot-consent-issues);
//!   the emulator sends the browser back with that code so the app can say
//!   which account to use.
//! - An unknown account (AADSTS50034) or one from another directory than a
//!   tenant-specific URL names (AADSTS50020) stays on the page with the error.
//! - An unknown app (AADSTS700016) or unregistered redirect URI (AADSTS50011)
//!   gets an error page: Microsoft never redirects to an unregistered URI.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as HttpBody;
use axum::http::{header, Response};
use chrono::Utc;
use serde_json::{json, Value};

use super::config::EmulatorConfig;
use super::control::EmulatorControl;
use super::state::Shared;
use super::types::LoggedRequest;
use super::util::new_guid;
use super::EmulatorError;

/// Who may consent, where answers may go, when consents take effect.
pub(crate) struct ConsentState {
    admins: HashSet<String>,
    redirect_uris: HashMap<String, Vec<String>>,
    effective_at: HashMap<String, Instant>,
    /// Microsoft time (divided by `time_scale` when used).
    propagation: Duration,
    default_account: Option<String>,
}

impl ConsentState {
    pub(crate) fn new(cfg: &EmulatorConfig) -> Self {
        let mut s = Self {
            admins: cfg.admins.iter().map(|a| a.to_lowercase()).collect(),
            redirect_uris: HashMap::new(),
            effective_at: HashMap::new(),
            propagation: Duration::from_millis(cfg.consent_propagation_ms),
            default_account: cfg.default_account.clone(),
        };
        for r in &cfg.redirect_uris {
            s.add_redirect_uri(&r.client_id, &r.uri);
        }
        s
    }

    fn add_redirect_uri(&mut self, client_id: &str, uri: &str) {
        let list = self
            .redirect_uris
            .entry(client_id.to_lowercase())
            .or_default();
        if !list.iter().any(|u| u == uri) {
            list.push(uri.to_string());
        }
    }

    /// False while a fresh consent is still propagating.
    pub(crate) fn is_effective(&self, tenant_id: &str, now: Instant) -> bool {
        self.effective_at
            .get(&tenant_id.to_lowercase())
            .is_none_or(|at| now >= *at)
    }
}

impl EmulatorControl {
    /// Gives `account` (user@domain) an admin role able to grant consent.
    pub fn add_admin(&self, account: &str) {
        self.shared
            .lock()
            .consent
            .admins
            .insert(account.to_lowercase());
    }

    /// Registers a redirect URI on an app (exact match, as Microsoft requires).
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) {
        self.shared.lock().consent.add_redirect_uri(client_id, uri);
    }

    /// Registers a certificate (PEM) on an app; returns its `x5t#S256`.
    pub fn add_app_certificate(
        &self,
        client_id: &str,
        certificate_pem: &str,
    ) -> Result<String, EmulatorError> {
        self.shared
            .lock()
            .certificates
            .register(client_id, certificate_pem)
            .map_err(EmulatorError::Invalid)
    }

    /// Microsoft-time delay before a new consent is honoured.
    pub fn set_consent_propagation_delay(&self, d: Duration) {
        self.shared.lock().consent.propagation = d;
    }

    /// What the admin consent page records on Accept, without a browser.
    pub fn grant_consent(&self, tenant: &str) -> Result<(), EmulatorError> {
        grant(&self.shared, tenant)
    }
}

/// Records the consent; it takes effect after the propagation delay.
fn grant(shared: &Shared, tenant: &str) -> Result<(), EmulatorError> {
    let mut inner = shared.lock();
    let delay = shared.scaled(inner.consent.propagation);
    let t = inner
        .tenant_by_id_mut(tenant)
        .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
    // Consenting again to what is already granted changes nothing; only a
    // new grant has to propagate.
    if t.spec.consented {
        return Ok(());
    }
    t.spec.consented = true;
    let id = t.spec.id.to_lowercase();
    inner
        .consent
        .effective_at
        .insert(id, Instant::now() + delay);
    Ok(())
}

fn html(status: u16, body: String) -> Response<HttpBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(HttpBody::from(body))
        .unwrap_or_else(|_| Response::new(HttpBody::empty()))
}

fn redirect(location: &str) -> Response<HttpBody> {
    Response::builder()
        .status(302)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(HttpBody::empty())
        .unwrap_or_else(|_| Response::new(HttpBody::empty()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f2f2f2;margin:0}\
main{background:#fff;max-width:440px;margin:3rem auto;padding:2.5rem;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:1.5rem;font-weight:600}.err{color:#a80000}ul{padding-left:1.2rem}\
input[type=email]{width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box}\
button{padding:.5rem 1.5rem;font-size:1rem;margin:1rem .5rem 0 0;border:1px solid #888;background:#fff}\
button#accept{background:#0067b8;color:#fff;border-color:#0067b8}";

fn error_page(code: u32, message: &str) -> Response<HttpBody> {
    html(
        400,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to your account</title>\
             <style>{STYLE}</style></head><body><main><h1>Sorry, but we're having trouble signing you in.</h1>\
             <p class=\"err\" id=\"error\">AADSTS{code}: {}</p><p>Microsoft identity platform (emulator)</p></main></body></html>",
            esc(message)
        ),
    )
}

/// The request's parameters, whether in the query (GET) or the form (POST).
struct Req {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    account: String,
    action: String,
}

fn parse(query: Option<&str>, body: &[u8], post: bool) -> Req {
    let raw: &[u8] = if post {
        body
    } else {
        query.unwrap_or_default().as_bytes()
    };
    let mut m: HashMap<String, String> = url::form_urlencoded::parse(raw).into_owned().collect();
    let mut take = |k: &str| m.remove(k).unwrap_or_default();
    Req {
        client_id: take("client_id"),
        redirect_uri: take("redirect_uri"),
        scope: take("scope"),
        state: Some(take("state")).filter(|s| !s.is_empty()),
        account: take("account"),
        action: take("action"),
    }
}

fn consent_form(tenant_seg: &str, r: &Req, account: &str, error: Option<&str>) -> String {
    let hidden =
        |k: &str, v: &str| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Permissions requested</title>\
         <style>{STYLE}</style></head><body><main>\
         <p>Microsoft (emulator)</p><h1>Permissions requested</h1>\
         <p>Accept for your organization</p>\
         <p>App <b>{app}</b> needs permission to:</p>\
         <ul><li>Read and write all users' full profiles (User.ReadWrite.All)</li>\
         <li>Revoke all sign-in sessions for a user (User.RevokeSessions.All)</li></ul>\
         <p>(scope {scope})</p>\
         <form method=\"post\" action=\"/{seg}/v2.0/adminconsent\">\
         <label for=\"account\">Sign in as an administrator</label>\
         <input type=\"email\" id=\"account\" name=\"account\" value=\"{account}\" placeholder=\"admin@contoso.com\">\
         {err}{h1}{h2}{h3}{h4}\
         <div><button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button>\
         <button type=\"submit\" id=\"accept\" name=\"action\" value=\"accept\">Accept</button></div>\
         </form></main></body></html>",
        app = esc(&r.client_id),
        scope = esc(&r.scope),
        seg = esc(tenant_seg),
        account = esc(account),
        err = error
            .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
            .unwrap_or_default(),
        h1 = hidden("client_id", &r.client_id),
        h2 = hidden("redirect_uri", &r.redirect_uri),
        h3 = hidden("scope", &r.scope),
        h4 = hidden("state", r.state.as_deref().unwrap_or_default()),
    )
}

fn back_to_app(r: &Req, pairs: &[(&str, &str)]) -> Response<HttpBody> {
    let Ok(mut url) = url::Url::parse(&r.redirect_uri) else {
        return error_page(50011, "The redirect URI is not a valid URL.");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = &r.state {
            q.append_pair("state", s);
        }
    }
    redirect(url.as_str())
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    method: &str,
    tenant_seg: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response<HttpBody> {
    let post = method.eq_ignore_ascii_case("POST");
    let r = parse(query, body, post);
    let (status, resp, tenant_logged) = respond(&shared, post, tenant_seg, &r);
    // The log never holds the state or what the admin typed beyond its domain.
    let mut logged = json!({
        "client_id": r.client_id, "redirect_uri": r.redirect_uri, "scope": r.scope,
        "state": r.state.as_ref().map(|_| "***"),
    });
    if post {
        logged["action"] = Value::String(r.action.clone());
    }
    let mut inner = shared.lock();
    let entry = LoggedRequest {
        seq: inner.next_seq(),
        time: Utc::now(),
        tenant: Some(tenant_logged),
        client_id: Some(r.client_id.clone()).filter(|c| !c.is_empty()),
        method: method.to_uppercase(),
        path: path.to_string(),
        query: None,
        status,
        client_request_id: None,
        request_id: new_guid(),
        throttle_priority: None,
        batch_seq: None,
        batch_item_id: None,
        body: Some(logged),
        fault: None,
    };
    inner.push_log(entry, shared.cfg.log_capacity);
    resp
}

/// Status, response, and the tenant the log entry names.
type Answer = (u16, Response<HttpBody>, String);

/// What the store knows of the request, read under one lock.
struct Known {
    /// The tenant the URL names (`None` when it names none, as `organizations`).
    path_tenant: Option<String>,
    app: bool,
    redirect_registered: bool,
    default_account: Option<String>,
}

fn known(shared: &Shared, tenant_seg: &str, r: &Req) -> Known {
    let inner = shared.lock();
    let path_tenant = inner
        .tenant_index(tenant_seg)
        .map(|i| inner.tenants[i].spec.id.clone());
    let app = inner.apps.contains_key(&r.client_id.to_lowercase());
    let redirect_registered = inner
        .consent
        .redirect_uris
        .get(&r.client_id.to_lowercase())
        .is_some_and(|l| l.iter().any(|u| u == &r.redirect_uri));
    Known {
        path_tenant,
        app,
        redirect_registered,
        default_account: inner.consent.default_account.clone(),
    }
}

fn respond(shared: &Shared, post: bool, tenant_seg: &str, r: &Req) -> Answer {
    let seg = tenant_seg.to_string();
    let k = known(shared, tenant_seg, r);
    if let Some((code, msg)) = refusal(tenant_seg, r, &k) {
        return (400, error_page(code, &msg), seg);
    }
    if !post {
        let account = k.default_account.unwrap_or_default();
        return (
            200,
            html(200, consent_form(tenant_seg, r, &account, None)),
            seg,
        );
    }
    if r.action != "accept" {
        return (
            302,
            back_to_app(
                r,
                // The doc's error response carries admin_consent=True too
                // (v2-admin-consent, "Error response").
                &[
                    ("error", "access_denied"),
                    ("error_subcode", "cancel"),
                    (
                        "error_description",
                        "AADSTS65004: User declined to consent to access the app.",
                    ),
                    ("admin_consent", "True"),
                ],
            ),
            seg,
        );
    }
    accept(shared, tenant_seg, r, k.path_tenant.as_deref())
}

/// Why the request gets an error page rather than a form (code, message);
/// checked in this order whether the page is shown or submitted.
fn refusal(tenant_seg: &str, r: &Req, k: &Known) -> Option<(u32, String)> {
    let organizations = tenant_seg.eq_ignore_ascii_case("organizations");
    if !organizations && k.path_tenant.is_none() {
        return Some((90002, format!("Tenant '{tenant_seg}' not found.")));
    }
    if r.client_id.is_empty() {
        return Some((
            900144,
            "The request body must contain the following parameter: 'client_id'.".into(),
        ));
    }
    if !k.app {
        return Some((
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory.",
                r.client_id
            ),
        ));
    }
    if !k.redirect_registered {
        return Some((50011, format!("The redirect URI '{}' specified in the request does not match the redirect URIs configured for the application '{}'.", r.redirect_uri, r.client_id)));
    }
    if r.scope.is_empty() {
        return Some((
            900144,
            "The request body must contain the following parameter: 'scope'.".into(),
        ));
    }
    None
}

/// Accept: the account's domain picks the tenant, and only an admin's
/// accept records the consent.
fn accept(shared: &Shared, tenant_seg: &str, r: &Req, path_tenant: Option<&str>) -> Answer {
    let seg = tenant_seg.to_string();
    let account = r.account.trim().to_lowercase();
    let domain = account.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let (account_tenant, is_admin) = {
        let inner = shared.lock();
        let t = (!domain.is_empty())
            .then(|| inner.tenant_index(domain))
            .flatten()
            .map(|i| inner.tenants[i].spec.id.clone());
        (t, inner.consent.admins.contains(&account))
    };
    let stay = |msg: String| {
        (
            200,
            html(200, consent_form(tenant_seg, r, &r.account, Some(&msg))),
            seg.clone(),
        )
    };
    let Some(tenant) = account_tenant else {
        return stay(format!("AADSTS50034: The user account {} does not exist in the directory. To sign into this application, the account must be added to the directory.", r.account));
    };
    if path_tenant.is_some_and(|p| p != tenant) {
        return stay(format!("AADSTS50020: User account '{}' from identity provider does not exist in tenant '{tenant_seg}' and cannot access the application in that tenant.", r.account));
    }
    if !is_admin {
        return (
            302,
            back_to_app(
                r,
                &[
                    ("error", "access_denied"),
                    (
                        "error_description",
                        "AADSTS90094: The grant requires admin permission.",
                    ),
                ],
            ),
            tenant,
        );
    }
    if let Err(e) = grant(shared, &tenant) {
        return (400, error_page(90002, &e.to_string()), seg);
    }
    let scope = r.scope.clone();
    (
        302,
        back_to_app(
            r,
            &[
                ("admin_consent", "True"),
                ("tenant", &tenant),
                ("scope", &scope),
            ],
        ),
        tenant,
    )
}
