//! Microsoft Graph v1.0 front door: authentication, faults, throttling,
//! response headers and the request log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as HttpBody;
use axum::http::{HeaderMap, Response};
use chrono::Utc;
use rand::Rng;
use serde_json::Value;

use super::batch;
use super::config::EmulatorConfig;
use super::deleted_items;
use super::errors::{code_for_status, message_for_status, Body, GraphResp};
use super::groups;
use super::licensing;
use super::listener::ConnHandle;
use super::permissions::{authorized, reads_lifecycle, reads_users};
use super::state::{Inner, Shared};
use super::throttle::{base_resource_units, cost_from_base, Decision};
use super::types::{FaultKind, LoggedRequest};
use super::users::{self, Call, Env};
use super::util::{format_seconds, new_guid, percent_decode, redact};

pub(crate) struct RawReq {
    pub method: String,
    /// Full path, e.g. `/v1.0/users/abc`.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub tenant_id: String,
    pub client_id: String,
    pub roles: Vec<String>,
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn unauthorized(message: &str) -> GraphResp {
    GraphResp::error(401, "InvalidAuthenticationToken", message).header(
        "WWW-Authenticate",
        "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
    )
}

/// Bearer token check; a token only ever reaches its own tenant. A withdrawn
/// consent does not stop a token already issued: "Existing access tokens
/// will continue to be valid for their lifetime"
/// (graph/api/oauth2permissiongrant-delete), unless the configuration asks
/// for the stricter `revoke_tokens_with_consent`.
pub(crate) fn authenticate(
    inner: &Inner,
    cfg: &EmulatorConfig,
    headers: &HeaderMap,
    now: Instant,
) -> Result<Auth, GraphResp> {
    let token = header(headers, "authorization")
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized("Access token is empty."));
    };
    let Some(rec) = inner.tokens.get(token) else {
        return Err(unauthorized("Access token validation failure."));
    };
    if now >= rec.expires_at {
        return Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    let consented = inner
        .tenant_by_id(&rec.tenant_id)
        .is_some_and(|t| t.spec.consented);
    let withdrawn = !consented && cfg.revoke_tokens_with_consent;
    if withdrawn || !inner.apps.contains_key(&rec.client_id.to_lowercase()) {
        return Err(unauthorized("Access token validation failure."));
    }
    Ok(Auth {
        tenant_id: rec.tenant_id.clone(),
        client_id: rec.client_id.clone(),
        roles: rec.roles.clone(),
    })
}

pub(crate) fn split_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Throttling check, then the handler. Throttled requests never reach it.
pub(crate) fn throttled_dispatch(
    inner: &mut Inner,
    shared: &Shared,
    auth: &Auth,
    call: &Call,
    now: Instant,
) -> GraphResp {
    let has = |k: &str| call.query.iter().any(|(q, _)| q.eq_ignore_ascii_case(k));
    let top = call
        .query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$top"))
        .and_then(|(_, v)| v.trim().parse::<u32>().ok());
    let cost = cost_from_base(
        call.method,
        base_resource_units(call.method, call.segments),
        has("$select"),
        has("$expand"),
        top,
    );
    let size = inner
        .tenant_by_id(&auth.tenant_id)
        .map(|t| t.spec.size)
        .unwrap_or_default();
    match inner
        .limiter
        .check(now, &auth.client_id, &auth.tenant_id, size, cost)
    {
        Decision::Throttled(t) => {
            GraphResp::error(429, "TooManyRequests", "Please retry again later.")
                .header("Retry-After", format_seconds(t.retry_after_secs))
                .header("x-ms-throttle-scope", t.scope)
                .header("x-ms-throttle-information", t.information)
        }
        Decision::Allowed { .. } if !authorized(auth, call) => GraphResp::error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
        Decision::Allowed { limit_percentage } => {
            let env = Env {
                tenant_id: &auth.tenant_id,
                graph_base: &shared.graph_base(),
                now,
                replication: shared.scaled(inner.replication_delay),
                read_lifecycle: reads_lifecycle(auth),
                read_users: reads_users(auth),
            };
            let first = call.segments.first().map(|s| s.to_ascii_lowercase());
            let mut r = match first.as_deref() {
                Some("groups") => groups::dispatch(inner, &env, call),
                Some("directory") => {
                    deleted_items::dispatch(inner, &env, call, shared.deleted_retention())
                }
                Some("subscribedskus") => match inner.tenant_by_id(&auth.tenant_id) {
                    Some(t) => licensing::subscribed_skus(t, &env, call),
                    None => users::dispatch(inner, &env, call),
                },
                _ => users::dispatch(inner, &env, call),
            };
            // Group licences are assigned in the background, after the
            // write that changed a membership or a licence.
            if !call.method.eq_ignore_ascii_case("GET") {
                if let Some(t) = inner.tenant_by_id_mut(&auth.tenant_id) {
                    licensing::reconcile(t);
                }
            }
            r.headers
                .push(("x-ms-resource-unit".into(), cost.resource_units.to_string()));
            if let Some(p) = limit_percentage {
                r.headers
                    .push(("x-ms-throttle-limit-percentage".into(), format!("{p:.2}")));
            }
            r
        }
    }
}

fn fault_response(status: u16, retry_after: Option<f64>) -> GraphResp {
    let mut r = GraphResp::error(status, code_for_status(status), message_for_status(status));
    if let Some(ra) = retry_after {
        r = r.header("Retry-After", format_seconds(ra));
    }
    r
}

/// Random background faults from the configuration.
pub(crate) async fn random_noise(shared: &Shared) -> Option<u16> {
    let rf = &shared.cfg.random_faults;
    if rf.latency_ms_max > 0 {
        let ms = rand::thread_rng().gen_range(rf.latency_ms_min..=rf.latency_ms_max);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if rf.error_rate > 0.0 && rand::thread_rng().gen_bool(rf.error_rate) {
        const STATUSES: [u16; 4] = [500, 502, 503, 504];
        return Some(STATUSES[rand::thread_rng().gen_range(0..STATUSES.len())]);
    }
    None
}

pub(crate) fn log_body(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact(&mut v);
            Some(v)
        }
        Err(_) => Some(Value::String(format!("<{} bytes, not JSON>", body.len()))),
    }
}

/// Parses a JSON write body the way Graph does.
pub(crate) fn parse_json_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Value>, GraphResp> {
    if body.is_empty() {
        return Ok(None);
    }
    let ct = header(headers, "content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(GraphResp::error(
            415,
            "BadRequest",
            "A supported MIME type could not be found that matches the content type of the response. None of the supported type(s) 'application/json' matches the content type.",
        ));
    }
    serde_json::from_slice(body).map(Some).map_err(|_| {
        GraphResp::error(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    })
}

/// Serializes a Graph answer with the headers Graph sends on every response.
pub(crate) fn to_http(
    r: &GraphResp,
    request_id: &str,
    client_request_id: &str,
) -> Response<HttpBody> {
    let mut b = Response::builder()
        .status(r.status)
        .header("request-id", request_id)
        .header("client-request-id", client_request_id)
        .header("Cache-Control", "no-cache");
    if let Some(ct) = r.content_type() {
        b = b.header("Content-Type", ct);
    }
    if matches!(r.body, Body::Json(_)) {
        b = b.header("OData-Version", "4.0");
    }
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let body = match (&r.body, r.body_json(request_id, client_request_id)) {
        (Body::Text(t), _) => HttpBody::from(t.clone()),
        (_, Some(v)) => HttpBody::from(v.to_string()),
        (_, None) => HttpBody::empty(),
    };
    b.body(body)
        .unwrap_or_else(|_| Response::new(HttpBody::empty()))
}

pub(crate) struct LogCtx<'a> {
    pub seq: u64,
    pub auth: Option<&'a Auth>,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub client_request_id: Option<&'a str>,
    pub request_id: &'a str,
    pub priority: Option<&'a str>,
    pub batch: Option<(u64, &'a str)>,
    pub body: Option<Value>,
    pub fault: Option<String>,
}

pub(crate) fn log(shared: &Shared, c: LogCtx, status: u16) {
    let entry = LoggedRequest {
        seq: c.seq,
        time: Utc::now(),
        tenant: c.auth.map(|a| a.tenant_id.clone()),
        client_id: c.auth.map(|a| a.client_id.clone()),
        method: c.method.to_string(),
        path: c.path.to_string(),
        query: c.query.map(str::to_string),
        status,
        client_request_id: c.client_request_id.map(str::to_string),
        request_id: c.request_id.to_string(),
        throttle_priority: c.priority.map(str::to_string),
        batch_seq: c.batch.map(|b| b.0),
        batch_item_id: c.batch.map(|b| b.1.to_string()),
        body: c.body,
        fault: c.fault,
    };
    let cap = shared.cfg.log_capacity;
    shared.lock().push_log(entry, cap);
}

/// What a queued fault leaves of a request.
pub(super) enum Injected {
    /// The connection was closed without an answer.
    Dropped,
    /// Answered with the fault's status; the request is not carried out.
    Answer(GraphResp),
    /// Carried out as usual, after any delay (a `DropAfter` loses the answer
    /// once the request is done).
    Proceed,
}

/// Applies a queued fault and notes it in the request's log entry.
pub(super) async fn inject(fault: FaultKind, conn: &ConnHandle, lc: &mut LogCtx<'_>) -> Injected {
    match fault {
        FaultKind::DropAfter => Injected::Proceed,
        FaultKind::Drop => {
            conn.kill();
            lc.fault = Some("drop".into());
            Injected::Dropped
        }
        FaultKind::Delay { ms } => {
            lc.fault = Some(format!("delay {ms}ms"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Injected::Proceed
        }
        FaultKind::Status {
            status,
            retry_after,
        } => {
            lc.fault = Some(format!("status {status}"));
            Injected::Answer(fault_response(status, retry_after))
        }
    }
}

/// Background faults apply only to requests no fault was queued for.
async fn inject_random(shared: &Shared, conn: &ConnHandle, lc: &mut LogCtx<'_>) -> Injected {
    let reset = shared.cfg.random_faults.reset_rate;
    if reset > 0.0 && rand::thread_rng().gen_bool(reset) {
        conn.kill();
        lc.fault = Some("random reset".into());
        return Injected::Dropped;
    }
    match random_noise(shared).await {
        Some(s) => {
            lc.fault = Some(format!("random {s}"));
            Injected::Answer(fault_response(s, None))
        }
        None => Injected::Proceed,
    }
}

/// Sequence number, authentication and the queued fault, taken under one lock.
fn admit(shared: &Shared, raw: &RawReq) -> (u64, Result<Auth, GraphResp>, Option<FaultKind>) {
    let mut inner = shared.lock();
    let seq = inner.next_seq();
    let auth = authenticate(&inner, &shared.cfg, &raw.headers, Instant::now());
    let tenant = auth.as_ref().ok().map(|a| a.tenant_id.clone());
    let fault = inner.take_fault(tenant.as_deref(), &raw.method, &raw.path);
    (seq, auth, fault)
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: ConnHandle,
    raw: RawReq,
) -> Response<HttpBody> {
    let request_id = new_guid();
    let crid_in = header(&raw.headers, "client-request-id").map(str::to_string);
    // Graph echoes its own request-id when the client sent none.
    let crid_out = crid_in.clone().unwrap_or_else(|| request_id.clone());
    let priority = header(&raw.headers, "x-ms-throttle-priority").map(str::to_string);
    let (seq, auth, fault) = admit(&shared, &raw);
    let mut lc = LogCtx {
        seq,
        auth: auth.as_ref().ok(),
        method: &raw.method,
        path: &raw.path,
        query: raw.query.as_deref(),
        client_request_id: crid_in.as_deref(),
        request_id: &request_id,
        priority: priority.as_deref(),
        batch: None,
        body: log_body(&raw.body),
        fault: None,
    };
    // A lost answer: the request is carried out, the connection then closes.
    let lose_answer =
        matches!(fault, Some(FaultKind::DropAfter)) || lost_at_random(&shared, &raw.method);
    let injected = match fault {
        Some(f) => inject(f, &conn, &mut lc).await,
        None => inject_random(&shared, &conn, &mut lc).await,
    };
    let resp = match (injected, &auth) {
        (Injected::Dropped, _) => {
            log(&shared, lc, 0);
            return Response::new(HttpBody::empty());
        }
        (Injected::Answer(r), _) => r,
        (Injected::Proceed, Err(r)) => r.clone(),
        (Injected::Proceed, Ok(a)) => serve(&shared, &conn, a, seq, &raw, &crid_out).await,
    };
    if lose_answer {
        conn.kill();
        lc.fault = Some("answer lost".into());
    }
    log(&shared, lc, resp.status);
    to_http(&resp, &request_id, &crid_out)
}

/// An authenticated request past its faults: a `$batch`, or one call.
async fn serve(
    shared: &Arc<Shared>,
    conn: &ConnHandle,
    auth: &Auth,
    seq: u64,
    raw: &RawReq,
    crid_out: &str,
) -> GraphResp {
    let rel = raw.path.get("/v1.0".len()..).unwrap_or("");
    let segments = split_segments(rel);
    let query = parse_query(raw.query.as_deref());
    let is_batch = segments.len() == 1 && segments[0] == "$batch";
    if is_batch && raw.method.eq_ignore_ascii_case("POST") {
        return batch::run(shared, conn, auth, seq, raw, crid_out).await;
    }
    match parse_json_body(&raw.headers, &raw.body) {
        Err(e) => e,
        Ok(body) => {
            let call = Call {
                method: &raw.method,
                segments: &segments,
                query: &query,
                eventual: header(&raw.headers, "consistencylevel")
                    .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
                body: body.as_ref(),
            };
            let mut inner = shared.lock();
            throttled_dispatch(&mut inner, shared, auth, &call, Instant::now())
        }
    }
}

/// Whether a write's answer is lost at random (`random_faults.lost_answer_rate`).
fn lost_at_random(shared: &Shared, method: &str) -> bool {
    let rate = shared.cfg.random_faults.lost_answer_rate;
    rate > 0.0 && !method.eq_ignore_ascii_case("GET") && rand::thread_rng().gen_bool(rate)
}
