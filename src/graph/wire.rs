//! Graph's wire format for answers and for `$batch`
//! (https://learn.microsoft.com/graph/json-batching): pure, the time a
//! parameter, so the rules are unit-tested without a server.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use http::Method;

use super::request::GraphRequest;
use super::response::{parse_limit_percentage, parse_retry_after, Reply};
use crate::pacing::Priority;

/// A header of an answer, or of a `$batch` item's `headers` object.
pub(crate) fn header_value(headers: &Map<String, Value>, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        })
}

/// An answer as the caller reads it; `now` dates an HTTP-date `Retry-After`.
pub(crate) fn reply_from(
    status: u16,
    header: impl Fn(&str) -> Option<String>,
    body: Option<Value>,
    request_id: Option<String>,
    now: DateTime<Utc>,
) -> Reply {
    Reply {
        status,
        request_id,
        retry_after: header("retry-after").and_then(|v| parse_retry_after(&v, now)),
        throttle_scope: header("x-ms-throttle-scope"),
        limit_percentage: header("x-ms-throttle-limit-percentage")
            .and_then(|v| parse_limit_percentage(&v)),
        body,
    }
}

/// One request of a `$batch`, with the `client-request-id` it carries.
pub(crate) struct BatchItem<'a> {
    pub(crate) request: &'a GraphRequest,
    pub(crate) priority: Priority,
    pub(crate) client_request_id: &'a str,
}

/// The `$batch` body: items numbered from 1 in order, independent (no
/// `dependsOn`). A write item (POST, PATCH, PUT) always carries a body and
/// its `Content-Type`, `{}` when the request has none (`revokeSignInSessions`):
/// "you must still specify the headers and body parameters where only body
/// can be an empty object" (concepts/json-batching.md); Graph refuses the
/// whole batch otherwise ("Write request id : ... does not contain
/// Content-Type header or body.", msgraph-sdk-dotnet#2628).
pub(crate) fn encode_batch(items: &[BatchItem<'_>]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let r = it.request;
            let mut item = json!({
                "id": (i + 1).to_string(),
                "method": r.method.as_str(),
                "url": r.relative_url(),
                "headers": {
                    "client-request-id": it.client_request_id,
                    "x-ms-throttle-priority": it.priority.header_value(),
                },
            });
            let write = matches!(r.method, Method::POST | Method::PATCH | Method::PUT);
            let body = r.wire_body().or_else(|| write.then(|| json!({})));
            if let Some(body) = body {
                item["body"] = body;
                item["headers"]["Content-Type"] = json!("application/json");
            }
            item
        })
        .collect();
    json!({ "requests": items })
}

/// The answers of a `$batch` of `n` items, in the items' order ("individual
/// responses might appear in a different order than the requests"). An
/// item's error carries its own request-id in `innerError`; otherwise the
/// batch's. `Err` names the first item without an answer.
pub(crate) fn decode_batch(
    body: Option<&Value>,
    n: usize,
    batch_request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, String> {
    let mut by_id: HashMap<String, &Value> = body
        .and_then(|b| b.get("responses"))
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r)))
                .collect()
        })
        .unwrap_or_default();
    (1..=n)
        .map(|i| {
            let item = by_id
                .remove(&i.to_string())
                .ok_or_else(|| format!("$batch answer has no response for item {i}"))?;
            let status = item.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
            let headers = item
                .get("headers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let body = item.get("body").cloned();
            let request_id = body
                .as_ref()
                .and_then(|b| b.pointer("/error/innerError/request-id"))
                .and_then(Value::as_str)
                .or(batch_request_id)
                .map(str::to_string);
            let h = |name: &str| header_value(&headers, name);
            Ok(reply_from(status, h, body, request_id, now))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EntraObjectId;
    use crate::graph::request;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    #[test]
    fn batch_items_are_numbered_in_order_and_a_json_body_carries_its_content_type() {
        let id = EntraObjectId("0f0f0f0f-0000-4000-8000-000000000001".into());
        let (read, write) = (request::probe(), request::delete_user(&id));
        let body = encode_batch(&[
            BatchItem {
                request: &read,
                priority: Priority::Realtime,
                client_request_id: "a",
            },
            BatchItem {
                request: &write,
                priority: Priority::Bulk,
                client_request_id: "b",
            },
        ]);
        let items = body["requests"].as_array().unwrap();
        assert_eq!(items[0]["id"], "1");
        assert_eq!(items[0]["method"], "GET");
        assert!(items[0].get("body").is_none());
        assert_eq!(items[1]["id"], "2");
        assert_eq!(items[1]["method"], "DELETE");
        assert_eq!(items[1]["headers"]["client-request-id"], "b");
        assert!(items.iter().all(|i| i.get("dependsOn").is_none()));
    }

    #[test]
    fn a_bodyless_write_goes_with_an_empty_body_and_its_content_type() {
        let id = EntraObjectId("0f0f0f0f-0000-4000-8000-000000000001".into());
        let revoke = request::revoke_sessions(&id);
        let body = encode_batch(&[BatchItem {
            request: &revoke,
            priority: Priority::Realtime,
            client_request_id: "a",
        }]);
        let item = &body["requests"][0];
        assert_eq!(item["method"], "POST");
        assert_eq!(item["body"], json!({}));
        assert_eq!(item["headers"]["Content-Type"], "application/json");
    }

    #[test]
    fn batch_answers_come_back_in_the_items_order_with_their_own_request_ids() {
        let body = json!({"responses": [
            {"id": "2", "status": 429, "headers": {"Retry-After": "3"},
             "body": {"error": {"code": "TooManyRequests", "innerError": {"request-id": "item-2"}}}},
            {"id": "1", "status": 204, "headers": {}},
        ]});
        let replies = decode_batch(Some(&body), 2, Some("batch"), now()).unwrap();
        assert_eq!(replies[0].status, 204);
        assert_eq!(replies[0].request_id.as_deref(), Some("batch"));
        assert_eq!(replies[1].status, 429);
        assert_eq!(replies[1].request_id.as_deref(), Some("item-2"));
        assert!(replies[1].retry_after.is_some());
        let err = decode_batch(Some(&body), 3, None, now()).unwrap_err();
        assert!(err.contains("item 3"), "{err}");
    }
}
