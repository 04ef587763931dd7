//! `GET /users`: query options, `$filter`, sorting and paging.

use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::filter;
use super::state::{Tenant, UserRecord};
use super::user_props::{self, DEFAULT_PROPS};
use super::users::{context, q, selection, Call, Env};
use super::util::new_guid;

/// Graph's default page size for users.
const DEFAULT_PAGE: usize = 100;

pub(super) fn list(tenant: &mut Tenant, env: &Env, call: &Call) -> GraphResp {
    list_page(tenant, env, call).unwrap_or_else(|refused| refused)
}

/// The checks keep their order (options, `$select`, `$top`, `$filter`,
/// `$orderby`, `$skiptoken`): which refusal a request with several faults
/// gets is part of the behaviour.
fn list_page(tenant: &Tenant, env: &Env, call: &Call) -> Result<GraphResp, GraphResp> {
    check_query_options(call)?;
    let sel = selection(call)?;
    let page = page_size(call)?;
    let count_requested = q(call, "$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let advanced = call.eventual && count_requested;
    let expr = q(call, "$filter")
        .map(|f| filter::parse(f, advanced))
        .transpose()?;
    let mut users: Vec<&UserRecord> = tenant
        .users
        .iter()
        .filter(|u| u.is_visible(env.now))
        .filter(|u| match &expr {
            None => true,
            Some(e) => filter::eval(e, &|p| user_props::filter_value(u, p)),
        })
        .collect();
    sort(&mut users, call, expr.is_some(), advanced)?;
    let total = users.len();
    let start = start_offset(call, total)?;
    let end = (start + page).min(total);
    let props: Vec<&str> = sel.clone().unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    let value: Vec<Value> = users[start..end]
        .iter()
        .map(|u| Value::Object(user_props::project(u, &props)))
        .collect();
    let mut obj = Map::new();
    obj.insert("@odata.context".into(), json!(context(env, &sel, false)));
    if advanced {
        obj.insert("@odata.count".into(), json!(total));
    }
    if end < total {
        obj.insert("@odata.nextLink".into(), json!(next_link(env, call, end)));
    }
    obj.insert("value".into(), Value::Array(value));
    Ok(GraphResp::json(200, Value::Object(obj)))
}

fn check_query_options(call: &Call) -> Result<(), GraphResp> {
    // Query options per https://learn.microsoft.com/graph/api/user-list
    for (k, _) in call.query {
        let k = k.to_ascii_lowercase();
        match k.as_str() {
            "$select" | "$filter" | "$top" | "$skiptoken" | "$count" | "$orderby" => {}
            "$skip" => {
                return Err(GraphResp::error(
                    400,
                    "Request_BadRequest",
                    "'$skip' is not supported by the service.",
                ))
            }
            "$search" if !call.eventual => {
                return Err(GraphResp::error(
                    400,
                    "Request_UnsupportedQuery",
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                ))
            }
            "$search" | "$expand" => {
                return Err(GraphResp::error(
                    400,
                    "Request_UnsupportedQuery",
                    "Unsupported Query.",
                ))
            }
            k if k.starts_with('$') => {
                return Err(GraphResp::error(
                    400,
                    "BadRequest",
                    format!("Query option '{k}' is not supported."),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn page_size(call: &Call) -> Result<usize, GraphResp> {
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

/// `$orderby`, or creation order when none is asked for.
fn sort(
    users: &mut [&UserRecord],
    call: &Call,
    filtered: bool,
    advanced: bool,
) -> Result<(), GraphResp> {
    let Some(ob) = q(call, "$orderby") else {
        users.sort_by_key(|u| u.seq);
        return Ok(());
    };
    // displayName and userPrincipalName sort by default; with $filter
    // only in advanced queries (aad-advanced-queries, sorting table).
    let mut parts = ob.split_whitespace();
    let prop = parts.next().and_then(user_props::canonical);
    let desc = matches!(parts.next(), Some(d) if d.eq_ignore_ascii_case("desc"));
    match prop {
        Some(p @ ("displayName" | "userPrincipalName")) if !filtered || advanced => {
            users.sort_by_key(|u| user_props::get(u, p).as_str().map(str::to_lowercase));
            if desc {
                users.reverse();
            }
            Ok(())
        }
        _ => Err(GraphResp::error(
            400,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )),
    }
}

/// Where a `$skiptoken` resumes; one that points past the result has expired.
fn start_offset(call: &Call, total: usize) -> Result<usize, GraphResp> {
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

fn next_link(env: &Env, call: &Call, offset: usize) -> String {
    let mut parts: Vec<String> = call
        .query
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(k, v)| format!("{}={}", k, encode_component(v)))
        .collect();
    parts.push(format!("$skiptoken={}", encode_skiptoken(offset)));
    format!("{}/users?{}", env.graph_base, parts.join("&"))
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
