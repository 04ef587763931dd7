//! Server-driven paging shared by the directory collections: `$top`,
//! `$skiptoken` and `@odata.nextLink`
//! (https://learn.microsoft.com/graph/paging).

use super::errors::GraphResp;
use super::users::{q, Call, Env};
use super::util::new_guid;

/// Graph's default page size for directory objects.
const DEFAULT_PAGE: usize = 100;

/// `$top` (1 to 999), or Graph's default page.
pub(super) fn page_size(call: &Call) -> Result<usize, GraphResp> {
    let Some(t) = q(call, "$top") else {
        return Ok(DEFAULT_PAGE);
    };
    match t.trim().parse::<usize>() {
        Ok(n) if (1..=999).contains(&n) => Ok(n),
        _ => Err(GraphResp::error(
            400,
            "Request_BadRequest",
            format!("Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."),
        )),
    }
}

/// Where a `$skiptoken` resumes; one that points past the result has expired.
pub(super) fn start_offset(call: &Call, total: usize) -> Result<usize, GraphResp> {
    let Some(tok) = q(call, "$skiptoken") else {
        return Ok(0);
    };
    match decode_skiptoken(tok) {
        Some(n) if n <= total => Ok(n),
        _ => Err(GraphResp::error(
            400,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        )),
    }
}

/// Opaque to clients; carries the offset into the (stable) result order.
fn encode_skiptoken(offset: usize) -> String {
    let raw = format!("emu1:{offset}:{}", &new_guid()[..8]);
    raw.bytes().map(|b| format!("{b:02X}")).collect()
}

fn decode_skiptoken(tok: &str) -> Option<usize> {
    if tok.len() & 1 == 1 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..tok.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(tok.get(i..i + 2)?, 16).ok())
        .collect();
    let s = String::from_utf8(bytes?).ok()?;
    let mut parts = s.split(':');
    if parts.next()? != "emu1" {
        return None;
    }
    parts.next()?.parse().ok()
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The link to the page at `offset` of `{graph_base}/{path}`, keeping the query.
pub(super) fn next_link(env: &Env, path: &str, call: &Call, offset: usize) -> String {
    let mut parts: Vec<String> = call
        .query
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(k, v)| format!("{}={}", k, encode_component(v)))
        .collect();
    parts.push(format!("$skiptoken={}", encode_skiptoken(offset)));
    format!("{}/{path}?{}", env.graph_base, parts.join("&"))
}

/// One page of a collection as Graph answers it: `@odata.context`, the
/// `@odata.count` an advanced query asked for, `@odata.nextLink` while
/// more remain, then `value` (concepts/paging).
pub(crate) struct Page {
    pub context: String,
    pub count: Option<usize>,
    pub next_link: Option<String>,
    pub value: Vec<serde_json::Value>,
}

impl Page {
    pub(crate) fn answer(self) -> GraphResp {
        use serde_json::{json, Map, Value};
        let mut obj = Map::new();
        obj.insert("@odata.context".into(), json!(self.context));
        if let Some(n) = self.count {
            obj.insert("@odata.count".into(), json!(n));
        }
        if let Some(link) = self.next_link {
            obj.insert("@odata.nextLink".into(), json!(link));
        }
        obj.insert("value".into(), Value::Array(self.value));
        GraphResp::json(200, Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptoken_roundtrip() {
        let t = encode_skiptoken(250);
        assert_eq!(decode_skiptoken(&t), Some(250));
        assert_eq!(decode_skiptoken("zz"), None);
        assert_eq!(decode_skiptoken("41"), None);
    }
}
