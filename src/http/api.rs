//! The read API for Plumm's admin UI: a company's connection state and its
//! audit log ("View logs", search "Failure").
//!
//! Every request carries
//! `Authorization: Plumm-HMAC-SHA256 exp=UNIX,sig=HEX`, where `sig` is the
//! lowercase hex HMAC-SHA256, under the Store's shared signing key, of
//! `METHOD "\n" PATH "\n" QUERY "\n" EXP` (QUERY exactly as sent, empty when
//! there is none). The path names the company, so a signature made for one
//! company is refused for any other: a company sees only its own rows. The
//! newlines keep these signatures apart from the Store's Connect links
//! (`company=..&admin=..&exp=..`), so neither can stand in for the other.
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::App;
use crate::domain::CompanyId;
use crate::http::StoreKey;
use crate::store::reports::AuditPage;
use crate::store::time_text;

pub const SCHEME: &str = "Plumm-HMAC-SHA256";
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// The bytes a request's signature covers.
pub fn string_to_sign(method: &str, path: &str, query: &str, exp: i64) -> String {
    format!("{method}\n{path}\n{query}\n{exp}")
}

/// The `Authorization` header value for a request (Plumm's side, the tests).
pub fn authorization(key: &StoreKey, method: &str, path: &str, query: &str, exp: i64) -> String {
    let sig = super::signed::signature(key, &string_to_sign(method, path, query, exp));
    format!("{SCHEME} exp={exp},sig={sig}")
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn unauthorized(why: &str) -> Response {
    let mut r = answer(StatusCode::UNAUTHORIZED, json!({ "error": why }));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(SCHEME),
    );
    r
}

fn bad_request(why: String) -> Response {
    answer(StatusCode::BAD_REQUEST, json!({ "error": why }))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("admin API: {e}");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "error": "internal error" }),
    )
}

/// Checks the signature (in constant time), then the expiry.
fn authenticate(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("missing Authorization header")?;
    let params = raw
        .strip_prefix(SCHEME)
        .and_then(|p| p.strip_prefix(' '))
        .ok_or("the Authorization scheme must be Plumm-HMAC-SHA256")?;
    let (mut exp, mut sig) = (None, None);
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("exp", v)) if exp.is_none() => exp = Some(v),
            Some(("sig", v)) if sig.is_none() => sig = Some(v),
            _ => return Err("the Authorization header must be exp=UNIX,sig=HEX"),
        }
    }
    let exp_text = exp.ok_or("no exp")?;
    let exp: i64 = exp_text.parse().map_err(|_| "exp is not a Unix time")?;
    let sig = sig.ok_or("no sig")?;
    let signed = string_to_sign(method.as_str(), uri.path(), uri.query().unwrap_or(""), exp);
    super::signed::check_signature(&app.parts.key, &signed, sig).map_err(|e| match e {
        super::signed::LinkError::BadSignature => "the signature is not valid",
        _ => "sig must be 64 lowercase hex digits",
    })?;
    let now = chrono::Utc::now().timestamp();
    if exp <= now {
        return Err("the request has expired");
    }
    if exp - now > app.http().link_max_lifetime.as_secs() as i64 {
        return Err("exp is further ahead than this server accepts");
    }
    Ok(())
}

/// `GET /api/companies/{id}/status`: connection state, pending work, parked
/// users, last success and last error, and what needs attention.
pub(crate) async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(why) = authenticate(&app, &method, &uri, &headers) {
        return unauthorized(why);
    }
    let status = match crate::status::company(app.state(), CompanyId(id)) {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let attention = match crate::status::needs_attention(app.state(), &status) {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let mut body = json!(status);
    body["needs_attention"] = json!(attention);
    answer(StatusCode::OK, body)
}

/// Reads `failed`, `since`, `email`, `cursor` and `limit`; anything else is
/// refused, so a typo is not silently ignored.
fn audit_query(company: CompanyId, query: &str) -> Result<AuditPage, String> {
    let mut page = AuditPage {
        company: Some(company),
        limit: DEFAULT_LIMIT,
        ..AuditPage::default()
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "failed" => {
                page.failed_only = match v.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("failed={v}: expected true or false")),
                }
            }
            "since" => page.since = Some(since(&v)?),
            "email" => page.email = Some(v.into_owned()),
            "cursor" => {
                page.before = Some(
                    v.parse()
                        .map_err(|_| format!("cursor={v}: expected a cursor from next_cursor"))?,
                )
            }
            "limit" => {
                page.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit={v}: expected 1 to {MAX_LIMIT}"))?
            }
            other => return Err(format!("unknown parameter {other}")),
        }
    }
    Ok(page)
}

/// A time (RFC 3339) or an age (`24h`, `7d`), as the stored text format.
fn since(v: &str) -> Result<String, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(time_text(t.with_timezone(&chrono::Utc)));
    }
    let d = humantime::parse_duration(v)
        .map_err(|_| format!("since={v}: expected a time (RFC 3339) or an age such as 24h"))?;
    let d = chrono::Duration::from_std(d).map_err(|_| format!("since={v}: too large"))?;
    let t = chrono::Utc::now()
        .checked_sub_signed(d)
        .ok_or_else(|| format!("since={v}: too large"))?;
    Ok(time_text(t))
}

/// `GET /api/companies/{id}/audit?failed=true&since=24h&email=..&cursor=..&limit=..`:
/// the company's audit rows, newest first; `next_cursor` (an audit row id)
/// fetches the next, older page.
pub(crate) async fn audit(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(why) = authenticate(&app, &method, &uri, &headers) {
        return unauthorized(why);
    }
    let page = match audit_query(CompanyId(id), uri.query().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let mut rows = match app.state().audit_page(&page) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let next = (rows.len() > page.limit).then(|| {
        rows.truncate(page.limit);
        rows.last().map(|r| r.id)
    });
    answer(
        StatusCode::OK,
        json!({ "company": id, "rows": rows, "next_cursor": next.flatten() }),
    )
}

/// `GET /api/companies/{id}/users/{user}/groups`: the groups the daemon
/// manages for one of the company's people (made, or on their way); 404
/// when the person has no linked Entra account in that company.
pub(crate) async fn person_groups(
    State(app): State<Arc<App>>,
    Path((id, user)): Path<(i64, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(why) = authenticate(&app, &method, &uri, &headers) {
        return unauthorized(why);
    }
    let found = crate::status::person::person(
        app.state(),
        Some(CompanyId(id)),
        crate::domain::PlummUserId(user),
    );
    match found {
        Ok(Some(p)) => answer(StatusCode::OK, json!(p)),
        Ok(None) => answer(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("user {user} has no linked Entra account in company {id}") }),
        ),
        Err(e) => internal(e),
    }
}
