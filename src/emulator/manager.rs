//! A user's manager: `PUT` and `DELETE /users/{id}/manager/$ref`,
//! `GET /users/{id}/manager`, and `$expand=manager` on user reads. The
//! manager is a user readable now: one not replicated yet cannot be
//! referenced, exactly as it cannot be read (as for group members).

use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::group_members::{reference_url, referenced_id};
use super::state::{Tenant, UserRecord};
use super::user_props::{self, DEFAULT_PROPS};
use super::users::{denied, find, method_not_allowed, not_found, q, selection, view, Call, Env};

/// What `$expand=manager` asks of the manager: its `$select`, or the
/// default properties.
pub(crate) type Expansion = Vec<&'static str>;

fn unsupported() -> GraphResp {
    GraphResp::error(400, "Request_UnsupportedQuery", "Unsupported Query.")
}

/// `$expand` on a user read: only `manager` is modelled, one level, with
/// `$select` as its only option (`manager($select=id,displayName)`,
/// https://learn.microsoft.com/graph/query-parameters#expand-parameter and
/// the examples of graph/api/user-list-manager). `$levels` needs advanced
/// queries and is refused, as is any other navigation property.
pub(crate) fn expansion(call: &Call) -> Result<Option<Expansion>, GraphResp> {
    let Some(raw) = q(call, "$expand") else {
        return Ok(None);
    };
    let raw = raw.trim();
    let (name, options) = match raw.split_once('(') {
        Some((n, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(unsupported)?;
            (n.trim(), Some(inner))
        }
        None => (raw, None),
    };
    if !name.eq_ignore_ascii_case("manager") {
        return Err(unsupported());
    }
    let Some(options) = options else {
        return Ok(Some(DEFAULT_PROPS.to_vec()));
    };
    let mut props = DEFAULT_PROPS.to_vec();
    for opt in options.split(';').map(str::trim).filter(|o| !o.is_empty()) {
        let (k, v) = opt.split_once('=').ok_or_else(unsupported)?;
        if !k.trim().eq_ignore_ascii_case("$select") {
            return Err(unsupported());
        }
        props = select_list(v)?;
    }
    Ok(Some(props))
}

fn select_list(v: &str) -> Result<Vec<&'static str>, GraphResp> {
    let mut out = Vec::new();
    for raw in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
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
    Ok(out)
}

/// The manager a user has that is readable now.
fn manager_of<'a>(tenant: &'a Tenant, env: &Env, u: &UserRecord) -> Option<&'a UserRecord> {
    let id = u.manager.as_deref()?;
    tenant
        .users
        .iter()
        .find(|m| m.is_visible(env.now) && m.id.eq_ignore_ascii_case(id))
}

fn typed_user(env: &Env, m: &UserRecord, props: &[&str]) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    obj.extend(view(env, m, props));
    obj
}

/// Adds the expanded `manager` to a user's answer; a user without one has
/// no `manager` property at all.
pub(crate) fn expand_into(
    obj: &mut Map<String, Value>,
    tenant: &Tenant,
    env: &Env,
    u: &UserRecord,
    expand: Option<&Expansion>,
) {
    let Some(props) = expand else {
        return;
    };
    if let Some(m) = manager_of(tenant, env, u) {
        obj.insert("manager".into(), Value::Object(typed_user(env, m, props)));
    }
}

pub(crate) fn dispatch(tenant: &mut Tenant, env: &Env, call: &Call) -> GraphResp {
    let segs = call.segments;
    let m = call.method.to_ascii_uppercase();
    let is_ref = segs.get(3).is_some_and(|s| s == "$ref");
    match (segs.len(), m.as_str()) {
        (3, "GET") => get(tenant, env, call, &segs[1]),
        (4, "PUT") if is_ref => set(tenant, env, call, &segs[1]),
        (4, "DELETE") if is_ref => remove(tenant, env, &segs[1]),
        (4, _) if !is_ref => super::users::segment_not_found(&segs[3]),
        _ => method_not_allowed(),
    }
}

/// `GET /users/{id}/manager` (https://learn.microsoft.com/graph/api/user-list-manager):
/// the manager as a directory object, or 404 when there is none.
fn get(tenant: &mut Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let sel = match selection(call) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(u) = find(tenant, key, env.now).map(|u| u.clone()) else {
        return not_found(key);
    };
    let Some(m) = manager_of(tenant, env, &u) else {
        return not_found("manager");
    };
    let props: Vec<&str> = sel.unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    let mut obj = Map::new();
    obj.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#directoryObjects/$entity",
            env.graph_base
        )),
    );
    obj.extend(typed_user(env, m, &props));
    GraphResp::json(200, Value::Object(obj))
}

/// `PUT /users/{id}/manager/$ref` with `{"@odata.id": ".../users/{managerId}"}`
/// (https://learn.microsoft.com/graph/api/user-post-manager): 204. An
/// unknown (or not yet replicated) user or manager is 404. Graph does not
/// document making a user its own manager; the emulator refuses it as an
/// invalid value of the `manager` property, the wording Graph uses for a
/// property it will not take.
fn set(tenant: &mut Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let url = match reference_url(call) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let Some(manager_id) = referenced_id(url) else {
        return GraphResp::error(
            400,
            "Request_BadRequest",
            format!("Invalid object identifier '{url}'."),
        );
    };
    let Some(u) = find(tenant, key, env.now).map(|u| u.clone()) else {
        return not_found(key);
    };
    if u.privileged {
        return denied();
    }
    let Some(m) = tenant
        .users
        .iter()
        .find(|m| m.is_visible(env.now) && m.id.eq_ignore_ascii_case(&manager_id))
        .map(|m| m.id.clone())
    else {
        return not_found(&manager_id);
    };
    if m == u.id {
        return GraphResp::error(
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'manager' of resource 'User'.",
        );
    }
    if let Some(slot) = tenant.users.iter_mut().find(|x| x.id == u.id) {
        slot.manager = Some(m);
    }
    GraphResp::empty(204)
}

/// `DELETE /users/{id}/manager/$ref`
/// (https://learn.microsoft.com/graph/api/user-delete-manager): 204, and
/// 404 when the user has no manager.
fn remove(tenant: &mut Tenant, env: &Env, key: &str) -> GraphResp {
    let Some(u) = find(tenant, key, env.now) else {
        return not_found(key);
    };
    if u.privileged {
        return denied();
    }
    if u.manager.take().is_none() {
        return not_found("manager");
    }
    GraphResp::empty(204)
}
