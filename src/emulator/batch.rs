//! JSON batching: https://learn.microsoft.com/graph/json-batching
//!
//! At most 20 requests with unique (case-insensitive) ids; `headers` with a
//! Content-Type is required when a `body` is present; `dependsOn` sequences
//! requests and a failed dependency yields 424; each item is throttled on
//! its own; responses come back in any order; a parseable batch answers 200.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use serde_json::{json, Map, Value};

use super::errors::{Body, GraphResp};
use super::graph::{
    self, inject, log, parse_json_body, parse_query, split_segments, Auth, Injected, LogCtx, RawReq,
};
use super::listener::ConnHandle;
use super::state::Shared;
use super::types::FaultKind;
use super::users::Call;
use super::util::{new_guid, redact};

const MAX_REQUESTS: usize = 20;

struct Item {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn bad(message: impl Into<String>) -> GraphResp {
    GraphResp::error(400, "BadRequest", message)
}

fn invalid_payload() -> GraphResp {
    bad("Invalid batch payload format.")
}

fn parse_items(v: &Value) -> Result<Vec<Item>, GraphResp> {
    let Some(reqs) = v.get("requests").and_then(Value::as_array) else {
        return Err(invalid_payload());
    };
    if reqs.len() > MAX_REQUESTS {
        return Err(bad(format!(
            "The number of requests in the batch ({}) exceeds the limit of {MAX_REQUESTS}.",
            reqs.len()
        )));
    }
    let mut items = Vec::with_capacity(reqs.len());
    let mut seen = HashSet::new();
    for r in reqs {
        let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(id), Some(method), Some(url)) = (s("id"), s("method"), s("url")) else {
            return Err(invalid_payload());
        };
        if !seen.insert(id.to_lowercase()) {
            return Err(bad(format!(
                "Batch request contains duplicate request id '{id}'."
            )));
        }
        if url.contains("://") {
            return Err(invalid_payload());
        }
        let headers = match r.get("headers") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(h)) => h.clone(),
            Some(_) => return Err(invalid_payload()),
        };
        let body = r.get("body").filter(|b| !b.is_null()).cloned();
        check_write_item(&id, &method, &headers, body.as_ref())?;
        let depends_on = match r.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| d.as_str().map(str::to_string).ok_or_else(invalid_payload))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid_payload()),
        };
        items.push(Item {
            id,
            method,
            url,
            headers,
            body,
            depends_on,
        });
    }
    check_dependencies(&items)?;
    Ok(items)
}

/// A write item must carry a body and its `Content-Type`, even one that
/// needs no body: "you must still specify the headers and body parameters
/// where only body can be an empty object" (concepts/json-batching.md).
/// Graph refuses the whole batch otherwise (msgraph-sdk-dotnet#1038,
/// #2628: "Write request id : ... does not contain Content-Type header or
/// body."). A body on any item needs its `Content-Type` too.
fn check_write_item(
    id: &str,
    method: &str,
    headers: &Map<String, Value>,
    body: Option<&Value>,
) -> Result<(), GraphResp> {
    let has_ct = headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    let write = ["POST", "PATCH", "PUT"]
        .iter()
        .any(|m| method.eq_ignore_ascii_case(m));
    if (write && body.is_none()) || (body.is_some() && !has_ct) {
        return Err(bad(format!(
            "Write request id : {id} does not contain Content-Type header or body."
        )));
    }
    Ok(())
}

/// `dependsOn` may name only items that come earlier in the batch: a
/// forward (or self) reference is refused as a whole
/// (msgraph-sdk-dotnet-core#891).
fn check_dependencies(items: &[Item]) -> Result<(), GraphResp> {
    for (i, it) in items.iter().enumerate() {
        for d in &it.depends_on {
            let earlier = items[..i].iter().any(|e| e.id.eq_ignore_ascii_case(d));
            if !earlier {
                return Err(bad(format!(
                    "Request '{}' depends on '{d}', which is not an earlier request in the batch.",
                    it.id
                )));
            }
        }
    }
    Ok(())
}

/// Dependency order, keeping request order among independent items.
fn order(items: &[Item]) -> Result<Vec<usize>, GraphResp> {
    let mut done: Vec<bool> = vec![false; items.len()];
    let mut out = Vec::with_capacity(items.len());
    while out.len() < items.len() {
        let next = (0..items.len()).find(|&i| {
            !done[i]
                && items[i].depends_on.iter().all(|d| {
                    items
                        .iter()
                        .position(|o| o.id.eq_ignore_ascii_case(d))
                        .is_some_and(|j| done[j])
                })
        });
        let Some(i) = next else {
            return Err(bad("The batch contains a circular dependsOn chain."));
        };
        done[i] = true;
        out.push(i);
    }
    Ok(out)
}

fn item_header<'a>(h: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn item_response(id: &str, r: &GraphResp, request_id: &str, crid: &str) -> Value {
    let mut headers = Map::new();
    headers.insert("Cache-Control".into(), json!("no-cache"));
    if let Some(ct) = r.content_type() {
        headers.insert("Content-Type".into(), json!(ct));
    }
    if matches!(r.body, Body::Json(_)) {
        headers.insert("OData-Version".into(), json!("4.0"));
    }
    for (k, v) in &r.headers {
        headers.insert(k.clone(), json!(v));
    }
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    o.insert("status".into(), json!(r.status));
    o.insert("headers".into(), Value::Object(headers));
    if let Some(b) = r.body_json(request_id, crid) {
        o.insert("body".into(), b);
    }
    Value::Object(o)
}

/// What every item of one batch shares.
struct Batch<'a> {
    shared: &'a Arc<Shared>,
    conn: &'a ConnHandle,
    auth: &'a Auth,
    /// The envelope's sequence number, which each item's log entry carries.
    seq: u64,
    raw: &'a RawReq,
    outer_crid: &'a str,
    items: &'a [Item],
}

/// Where an item goes, relative to `/v1.0` and in full.
struct Target {
    rel_path: String,
    query: Option<String>,
    full_path: String,
}

fn target(url: &str) -> Target {
    let (rel_path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (url.to_string(), None),
    };
    let full_path = format!("/v1.0/{}", rel_path.trim_start_matches('/'));
    Target {
        rel_path,
        query,
        full_path,
    }
}

/// The envelope's items in the order they run, or why the whole batch is refused.
fn parse_batch(raw: &RawReq) -> Result<(Vec<Item>, Vec<usize>), GraphResp> {
    let parsed = parse_json_body(&raw.headers, &raw.body)?.ok_or_else(invalid_payload)?;
    let items = parse_items(&parsed)?;
    let order = order(&items)?;
    Ok((items, order))
}

pub(crate) async fn run(
    shared: &Arc<Shared>,
    conn: &ConnHandle,
    auth: &Auth,
    batch_seq: u64,
    raw: &RawReq,
    outer_crid: &str,
) -> GraphResp {
    let (items, order) = match parse_batch(raw) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let b = Batch {
        shared,
        conn,
        auth,
        seq: batch_seq,
        raw,
        outer_crid,
        items: &items,
    };
    let mut statuses: Vec<Option<u16>> = vec![None; items.len()];
    let mut responses = Vec::with_capacity(items.len());
    for i in order {
        let Some((status, response)) = run_item(&b, &items[i], &statuses).await else {
            return GraphResp::empty(0);
        };
        statuses[i] = Some(status);
        responses.push(response);
    }
    // "Individual responses might appear in a different order than the requests."
    responses.shuffle(&mut rand::thread_rng());
    GraphResp::json(200, json!({ "responses": responses }))
}

/// Runs and logs one item: its status and answer, or `None` once the
/// connection has gone with it.
async fn run_item(b: &Batch<'_>, it: &Item, statuses: &[Option<u16>]) -> Option<(u16, Value)> {
    let request_id = new_guid();
    let crid_in = item_header(&it.headers, "client-request-id").map(str::to_string);
    let crid = crid_in.clone().unwrap_or_else(|| b.outer_crid.to_string());
    let t = target(&it.url);
    let (seq, fault) = {
        let mut inner = b.shared.lock();
        let seq = inner.next_seq();
        let fault = inner.take_fault(Some(&b.auth.tenant_id), &it.method, &t.full_path);
        (seq, fault)
    };
    let mut body_for_log = it.body.clone();
    if let Some(body) = body_for_log.as_mut() {
        redact(body);
    }
    let mut lc = LogCtx {
        seq,
        auth: Some(b.auth),
        method: &it.method,
        path: &t.full_path,
        query: t.query.as_deref(),
        client_request_id: crid_in.as_deref(),
        request_id: &request_id,
        priority: item_header(&it.headers, "x-ms-throttle-priority")
            .or_else(|| graph::header(&b.raw.headers, "x-ms-throttle-priority")),
        batch: Some((b.seq, &it.id)),
        body: body_for_log,
        fault: None,
    };
    let Some((resp, lose_answer)) = answer_item(b, it, &t, fault, statuses, &mut lc).await else {
        log(b.shared, lc, 0);
        return None;
    };
    let response = item_response(&it.id, &resp, &request_id, &crid);
    if lose_answer {
        // Applied, and then the connection goes: no answer of the batch arrives.
        b.conn.kill();
        lc.fault = Some("answer lost".into());
        log(b.shared, lc, resp.status);
        return None;
    }
    log(b.shared, lc, resp.status);
    Some((resp.status, response))
}

/// An item's answer and whether it is then lost; `None` when a fault
/// dropped the connection. A failed dependency is answered before any fault.
async fn answer_item(
    b: &Batch<'_>,
    it: &Item,
    t: &Target,
    fault: Option<FaultKind>,
    statuses: &[Option<u16>],
    lc: &mut LogCtx<'_>,
) -> Option<(GraphResp, bool)> {
    if failed_dependency(b.items, statuses, it) {
        let failed = GraphResp::error(
            424,
            "FailedDependency",
            "The request could not be processed because a request it depends on failed.",
        );
        return Some((failed, false));
    }
    let lose_answer = matches!(fault, Some(FaultKind::DropAfter));
    let injected = match fault {
        Some(f) => inject(f, b.conn, lc).await,
        None => Injected::Proceed,
    };
    match injected {
        Injected::Dropped => None,
        Injected::Answer(r) => Some((r, lose_answer)),
        Injected::Proceed => Some((dispatch_item(b, it, t), lose_answer)),
    }
}

/// Whether an item depends on one that has already answered outside 2xx.
fn failed_dependency(items: &[Item], statuses: &[Option<u16>], it: &Item) -> bool {
    it.depends_on.iter().any(|d| {
        items
            .iter()
            .position(|o| o.id.eq_ignore_ascii_case(d))
            .and_then(|j| statuses[j])
            .is_some_and(|s| !(200..300).contains(&s))
    })
}

/// Graph's own handling of one item; a batch inside a batch is refused.
fn dispatch_item(b: &Batch<'_>, it: &Item, t: &Target) -> GraphResp {
    let segments = split_segments(&t.rel_path);
    let q = parse_query(t.query.as_deref());
    if segments.first().is_some_and(|s| s == "$batch") {
        return bad("Nested batch requests are not supported.");
    }
    let call = Call {
        method: &it.method,
        segments: &segments,
        query: &q,
        eventual: item_header(&it.headers, "ConsistencyLevel")
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
        body: it.body.as_ref(),
    };
    let mut inner = b.shared.lock();
    graph::throttled_dispatch(&mut inner, b.shared, b.auth, &call, Instant::now())
}
