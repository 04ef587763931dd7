//! /users handlers: create, get, update, delete, revokeSignInSessions (the
//! list, with its query options and paging, is in `user_list`).

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::errors::{Body, GraphResp};
use super::group_members::member_of;
use super::manager::{self, expansion};
use super::state::{Inner, Tenant, UserRecord};
use super::user_list::list;
use super::user_props::{self, DEFAULT_PROPS};
use super::util::new_guid;

pub(crate) struct Call<'a> {
    pub method: &'a str,
    /// Decoded path segments after `/v1.0`.
    pub segments: &'a [String],
    pub query: &'a [(String, String)],
    /// `ConsistencyLevel: eventual` was sent.
    pub eventual: bool,
    pub body: Option<&'a Value>,
}

pub(crate) struct Env<'a> {
    pub tenant_id: &'a str,
    pub graph_base: &'a str,
    pub now: Instant,
    /// Replication delay already divided by the time scale.
    pub replication: Duration,
    /// The token may read employeeLeaveDateTime (see `permissions`).
    pub read_lifecycle: bool,
    /// The token may read users' properties (see `permissions::reads_users`).
    pub read_users: bool,
}

pub(super) fn not_found(key: &str) -> GraphResp {
    // https://learn.microsoft.com/graph/api/user-get ("returns a 404 Not Found").
    GraphResp::error(
        404,
        "Request_ResourceNotFound",
        format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
    )
}

pub(super) fn method_not_allowed() -> GraphResp {
    // Body as in the batch sample of https://learn.microsoft.com/graph/json-batching
    GraphResp::error(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

pub(super) fn denied() -> GraphResp {
    // Admins need the app to hold a higher directory role:
    // https://learn.microsoft.com/graph/api/user-delete#permissions
    GraphResp::error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

pub(crate) fn segment_not_found(seg: &str) -> GraphResp {
    GraphResp::error(
        400,
        "BadRequest",
        format!("Resource not found for the segment '{seg}'."),
    )
}

pub(super) fn q<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(crate) fn dispatch(inner: &mut Inner, env: &Env, call: &Call) -> GraphResp {
    let segs = call.segments;
    let Some(first) = segs.first() else {
        return segment_not_found("");
    };
    if !first.eq_ignore_ascii_case("users") {
        return segment_not_found(first);
    }
    let Some(tenant) = inner.tenant_by_id_mut(env.tenant_id) else {
        return GraphResp::error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        );
    };
    let m = call.method.to_ascii_uppercase();
    match (segs.len(), m.as_str()) {
        (1, "GET") => list(tenant, env, call),
        (1, "POST") => create(inner, env, call),
        (1, _) => method_not_allowed(),
        (2, _) if segs[1] == "$count" => count(tenant, env, call),
        (2, "GET") => get_one(tenant, env, call, &segs[1]),
        (2, "PATCH") => update(tenant, env, call, &segs[1]),
        (2, "DELETE") => delete(tenant, env, &segs[1]),
        (2, _) => method_not_allowed(),
        (3, "GET") if segs[2].eq_ignore_ascii_case("memberOf") => {
            member_of(tenant, env, call, &segs[1])
        }
        (3 | 4, _) if segs[2].eq_ignore_ascii_case("manager") => {
            manager::dispatch(tenant, env, call)
        }
        (3, method)
            if segs[2].eq_ignore_ascii_case("revokeSignInSessions")
                || segs[2].eq_ignore_ascii_case("microsoft.graph.revokeSignInSessions") =>
        {
            if method == "POST" {
                revoke(tenant, env, &segs[1])
            } else {
                method_not_allowed()
            }
        }
        _ => segment_not_found(&segs[segs.len() - 1]),
    }
}

/// By id or userPrincipalName, among users readable right now.
pub(super) fn find<'a>(
    tenant: &'a mut Tenant,
    key: &str,
    now: Instant,
) -> Option<&'a mut UserRecord> {
    tenant.users.iter_mut().find(|u| {
        u.is_visible(now) && (u.id.eq_ignore_ascii_case(key) || u.upn.eq_ignore_ascii_case(key))
    })
}

/// `$select`, validated against the user type.
pub(super) fn selection(call: &Call) -> Result<Option<Vec<&'static str>>, GraphResp> {
    let Some(sel) = q(call, "$select") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for raw in sel.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = user_props::canonical(raw).ok_or_else(|| {
            GraphResp::error(
                400,
                "BadRequest",
                format!("Could not find a property named '{raw}' on type 'microsoft.graph.user'."),
            )
        })?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(Some(out))
}

pub(super) fn context(env: &Env, sel: &Option<Vec<&str>>, entity: bool) -> String {
    let mut s = format!("{}/$metadata#users", env.graph_base);
    if let Some(sel) = sel {
        s.push_str(&format!("({})", sel.join(",")));
    }
    if entity {
        s.push_str("/$entity");
    }
    s
}

fn get_one(tenant: &mut Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let sel = match selection(call) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let expand = match expansion(call) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let Some(u) = find(tenant, key, env.now) else {
        return not_found(key);
    };
    let props: Vec<&str> = sel.clone().unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    let mut obj = Map::new();
    obj.insert("@odata.context".into(), json!(context(env, &sel, true)));
    let u = u.clone();
    obj.extend(view(env, &u, &props));
    manager::expand_into(&mut obj, tenant, env, &u, expand.as_ref());
    GraphResp::json(200, Value::Object(obj))
}

fn count(tenant: &mut Tenant, env: &Env, call: &Call) -> GraphResp {
    // https://learn.microsoft.com/graph/aad-advanced-queries#error-handling-for-advanced-queries-on-directory-objects
    if !call.eventual {
        return GraphResp::error(
            400,
            "Request_BadRequest",
            "$count is not currently supported.",
        );
    }
    let n = tenant
        .users
        .iter()
        .filter(|u| u.is_visible(env.now))
        .count();
    GraphResp {
        status: 200,
        headers: Vec::new(),
        body: Body::Text(n.to_string()),
    }
}

/// The properties of a user as this token may read them: without a
/// User-LifeCycleInfo role employeeLeaveDateTime comes back null (see
/// `permissions::reads_lifecycle`).
pub(super) fn view(env: &Env, u: &UserRecord, props: &[&str]) -> Map<String, Value> {
    let mut m = user_props::project(u, props);
    if !env.read_lifecycle {
        if let Some(v) = m.get_mut("employeeLeaveDateTime") {
            *v = Value::Null;
        }
    }
    m
}

pub(super) fn body_object<'a>(call: &'a Call) -> Result<&'a Map<String, Value>, GraphResp> {
    match call.body {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(GraphResp::error(
            400,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        )),
    }
}

fn create(inner: &mut Inner, env: &Env, call: &Call) -> GraphResp {
    let body = match body_object(call) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let seq = inner.next_user_seq();
    let Some(tenant) = inner.tenant_by_id_mut(env.tenant_id) else {
        return GraphResp::error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        );
    };
    let blank = UserRecord::blank(seq, new_guid(), String::new(), String::new());
    let mut u = match user_props::apply(&blank, body, &tenant.spec.domains, true) {
        Ok(u) => u,
        Err(e) => return e,
    };
    // Uniqueness is enforced against every live object at once, even those
    // not replicated yet.
    if let Err(e) = tenant.check_unique(&u) {
        return e;
    }
    // Eventual consistency: the new object may answer 404 for a while
    // (https://devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra).
    u.visible_at = env.now + env.replication;
    u.visible_at_utc = Utc::now()
        + chrono::Duration::from_std(env.replication).unwrap_or_else(|_| chrono::Duration::zero());
    u.created_via_graph = true;
    let mut obj = Map::new();
    obj.insert(
        "@odata.context".into(),
        json!(format!("{}/$metadata#users/$entity", env.graph_base)),
    );
    obj.extend(view(env, &u, DEFAULT_PROPS));
    tenant.users.push(u);
    GraphResp::json(201, Value::Object(obj))
}

fn update(tenant: &mut Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let body = match body_object(call) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let domains = tenant.spec.domains.clone();
    let Some(current) = find(tenant, key, env.now).map(|u| u.clone()) else {
        return not_found(key);
    };
    if current.privileged {
        return denied();
    }
    let updated = match user_props::apply(&current, body, &domains, false) {
        Ok(u) => u,
        Err(e) => return e,
    };
    if let Err(e) = tenant.check_unique(&updated) {
        return e;
    }
    if let Some(slot) = tenant.users.iter_mut().find(|u| u.id == updated.id) {
        *slot = updated;
    }
    // https://learn.microsoft.com/graph/api/user-update: 204 No Content.
    GraphResp::empty(204)
}

fn delete(tenant: &mut Tenant, env: &Env, key: &str) -> GraphResp {
    let Some(u) = find(tenant, key, env.now) else {
        return not_found(key);
    };
    if u.privileged {
        return denied();
    }
    // Soft delete, restorable for 30 days:
    // https://learn.microsoft.com/graph/api/user-delete
    u.deleted_at = Some(Utc::now());
    let id = u.id.clone();
    let left = tenant.unlink_user(&id);
    if let Some(u) = tenant.users.iter_mut().find(|u| u.id == id) {
        u.groups_at_deletion = left;
    }
    GraphResp::empty(204)
}

fn revoke(tenant: &mut Tenant, env: &Env, key: &str) -> GraphResp {
    let Some(u) = find(tenant, key, env.now) else {
        return not_found(key);
    };
    if u.privileged {
        return denied();
    }
    u.revoke_count += 1;
    // https://learn.microsoft.com/graph/api/user-revokesigninsessions
    GraphResp::json(
        200,
        json!({
            "@odata.context": format!("{}/$metadata#Edm.Boolean", env.graph_base),
            "value": true
        }),
    )
}
