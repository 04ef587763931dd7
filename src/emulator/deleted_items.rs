//! The recycle bin for users: `/directory/deletedItems`. A deleted user
//! stays there, restorable with its id, properties and groups, for 30 days
//! (Microsoft time), then it is gone for good
//! (https://learn.microsoft.com/graph/api/user-delete,
//! graph/api/directory-deleteditems-list, -get, -restore, -delete).

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::filter::{self, Kind, Schema};
use super::paging::{next_link, page_size, start_offset, Page};
use super::state::{Inner, Tenant, UserRecord};
use super::user_props::{self, DEFAULT_PROPS};
use super::users::{
    denied, method_not_allowed, not_found, q, segment_not_found, selection, view, Call, Env,
};

/// "You can use $filter ... startsWith ... on the displayName,
/// userPrincipalName and mail properties of deleted users", with `eq` on
/// them and on id (graph/api/directory-deleteditems-list, optional query
/// parameters).
const DELETED_USERS: Schema = Schema {
    resource: "User",
    props: &[
        ("id", Kind::Str, false, false),
        ("userPrincipalName", Kind::Str, true, false),
        ("mail", Kind::Str, true, false),
        ("displayName", Kind::Str, true, false),
    ],
};

const USER_CAST: &str = "microsoft.graph.user";
const LIST_PATH: &str = "directory/deletedItems/microsoft.graph.user";

/// Deleted users older than the retention are deleted for good. Only the
/// deleted items can tell (live users never see deleted ones), so it runs
/// when they are asked for rather than on every request: a benchmark
/// tenant holds a hundred thousand users.
pub(crate) fn purge_expired(tenant: &mut Tenant, retention: Duration) {
    let Ok(keep) = chrono::Duration::from_std(retention) else {
        return;
    };
    let Some(cutoff) = Utc::now().checked_sub_signed(keep) else {
        return;
    };
    tenant
        .users
        .retain(|u| u.deleted_at.is_none_or(|at| at > cutoff));
}

/// `/directory/...`; `retention` is already divided by the time scale.
pub(crate) fn dispatch(
    inner: &mut Inner,
    env: &Env,
    call: &Call,
    retention: Duration,
) -> GraphResp {
    let segs = call.segments;
    let Some(tenant) = inner.tenant_by_id_mut(env.tenant_id) else {
        return GraphResp::error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        );
    };
    purge_expired(tenant, retention);
    if !segs
        .get(1)
        .is_some_and(|s| s.eq_ignore_ascii_case("deletedItems"))
    {
        return segment_not_found(segs.get(1).map_or("directory", String::as_str));
    }
    let m = call.method.to_ascii_uppercase();
    let restore = |k: usize| {
        segs.get(k).is_some_and(|s| {
            s.eq_ignore_ascii_case("restore") || s.eq_ignore_ascii_case("microsoft.graph.restore")
        })
    };
    match (segs.len(), m.as_str()) {
        // "The OData cast type is a required part of the URI and calling the
        // API without a type is not supported" (directory-deleteditems-list).
        (2, "GET") => GraphResp::error(
            400,
            "Request_BadRequest",
            "The OData cast type is required: use /directory/deletedItems/microsoft.graph.user.",
        ),
        (3, "GET") if segs[2].eq_ignore_ascii_case(USER_CAST) => {
            list(tenant, env, call).unwrap_or_else(|refused| refused)
        }
        (3, "GET") => get_one(tenant, env, call, &segs[2]),
        (3, "DELETE") => purge(tenant, &segs[2]),
        (4, "POST") if restore(3) => restore_user(tenant, env, call, &segs[2]),
        (2..=4, _) => method_not_allowed(),
        _ => segment_not_found(&segs[segs.len() - 1]),
    }
}

fn deleted_index(tenant: &Tenant, id: &str) -> Option<usize> {
    tenant
        .users
        .iter()
        .position(|u| u.is_deleted() && u.id.eq_ignore_ascii_case(id))
}

/// The default properties of a deleted user: those of a live one, and when
/// it was deleted.
fn props_of(sel: &Option<Vec<&'static str>>) -> Vec<&'static str> {
    sel.clone().unwrap_or_else(|| {
        let mut p = DEFAULT_PROPS.to_vec();
        p.push("deletedDateTime");
        p
    })
}

/// `GET /directory/deletedItems/{id}` (graph/api/directory-deleteditems-get).
fn get_one(tenant: &Tenant, env: &Env, call: &Call, id: &str) -> GraphResp {
    let sel = match selection(call) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(i) = deleted_index(tenant, id) else {
        return not_found(id);
    };
    let mut obj = Map::new();
    obj.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#directory/deletedItems/$entity",
            env.graph_base
        )),
    );
    obj.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    obj.extend(view(env, &tenant.users[i], &props_of(&sel)));
    GraphResp::json(200, Value::Object(obj))
}

fn check_query_options(call: &Call) -> Result<(), GraphResp> {
    let allowed = [
        "$select",
        "$filter",
        "$top",
        "$skiptoken",
        "$count",
        "$orderby",
    ];
    match call
        .query
        .iter()
        .find(|(k, _)| k.starts_with('$') && !allowed.iter().any(|o| o.eq_ignore_ascii_case(k)))
    {
        Some((k, _)) => Err(GraphResp::error(
            400,
            "BadRequest",
            format!("Query option '{k}' is not supported."),
        )),
        None => Ok(()),
    }
}

/// `$orderby` on deletedDateTime, displayName or userPrincipalName, which
/// needs the advanced query parameters (directory-deleteditems-list);
/// without it, the order of deletion.
fn sort(users: &mut [&UserRecord], call: &Call, advanced: bool) -> Result<(), GraphResp> {
    users.sort_by_key(|u| (u.deleted_at, u.seq));
    let Some(ob) = q(call, "$orderby") else {
        return Ok(());
    };
    let mut parts = ob.split_whitespace();
    let prop = parts.next().and_then(user_props::canonical);
    let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
    match prop {
        Some("deletedDateTime") if advanced => {}
        Some(p @ ("displayName" | "userPrincipalName")) if advanced => {
            users.sort_by_key(|u| user_props::get(u, p).as_str().map(str::to_lowercase));
        }
        _ => {
            return Err(GraphResp::error(
                400,
                "Request_UnsupportedQuery",
                "Unsupported Query.",
            ))
        }
    }
    if desc {
        users.reverse();
    }
    Ok(())
}

/// `GET /directory/deletedItems/microsoft.graph.user`
/// (https://learn.microsoft.com/graph/api/directory-deleteditems-list):
/// `$filter`, `$select`, `$orderby`, `$count`, paged by `$top`.
fn list(tenant: &Tenant, env: &Env, call: &Call) -> Result<GraphResp, GraphResp> {
    check_query_options(call)?;
    let sel = selection(call)?;
    let size = page_size(call)?;
    let advanced =
        call.eventual && q(call, "$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let expr = q(call, "$filter")
        .map(|f| filter::parse(f, advanced, &DELETED_USERS))
        .transpose()?;
    let mut users: Vec<&UserRecord> = tenant
        .users
        .iter()
        .filter(|u| u.is_deleted())
        .filter(|u| match &expr {
            None => true,
            Some(e) => filter::eval(e, &|p| user_props::filter_value(u, p)),
        })
        .collect();
    sort(&mut users, call, advanced)?;
    let total = users.len();
    let start = start_offset(call, total)?;
    let end = (start + size).min(total);
    let props = props_of(&sel);
    let mut context = format!(
        "{}/$metadata#directory/deletedItems/{USER_CAST}",
        env.graph_base
    );
    if let Some(sel) = &sel {
        context.push_str(&format!("({})", sel.join(",")));
    }
    let value = users[start..end]
        .iter()
        .map(|u| Value::Object(view(env, u, &props)))
        .collect();
    let page = Page {
        context,
        count: advanced.then_some(total),
        next_link: (end < total).then(|| next_link(env, LIST_PATH, call, end)),
        value,
    };
    Ok(page.answer())
}

/// `DELETE /directory/deletedItems/{id}`: deleted for good, no longer
/// restorable (graph/api/directory-deleteditems-delete): 204.
fn purge(tenant: &mut Tenant, id: &str) -> GraphResp {
    let Some(i) = deleted_index(tenant, id) else {
        return not_found(id);
    };
    tenant.users.remove(i);
    GraphResp::empty(204)
}

/// The restore body's options: "newUserPrincipalName" (to restore under
/// another UPN when the old one was taken) and "autoReconcileProxyConflict"
/// ("remove any conflicting proxy addresses while restoring",
/// graph/api/directory-deleteditems-restore, request body).
fn restore_options(call: &Call) -> Result<(Option<Value>, bool), GraphResp> {
    let Some(body) = call.body else {
        return Ok((None, false));
    };
    let Value::Object(body) = body else {
        return Err(GraphResp::error(
            400,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        ));
    };
    let (mut upn, mut reconcile) = (None, false);
    for (k, v) in body {
        match (k.as_str(), v) {
            ("newUserPrincipalName", v) => upn = Some(v.clone()),
            ("autoReconcileProxyConflict", Value::Bool(b)) => reconcile = *b,
            ("autoReconcileProxyConflict", Value::Null) => {}
            _ => {
                return Err(GraphResp::error(
                    400,
                    "BadRequest",
                    format!("The parameter '{k}' in the request payload is not a valid parameter for the operation 'restore'."),
                ))
            }
        }
    }
    Ok((upn, reconcile))
}

/// `POST /directory/deletedItems/{id}/restore`: 200 with the user, back
/// with its id, properties and groups ("The user is also restored to any
/// groups they were a member of", graph/api/user-delete). A UPN or mail now
/// held by a live user fails the restore with the conflict, as a create
/// would. An administrator needs a higher role than User.ReadWrite.All
/// ("isn't enough privilege to restore deleted users with administrator
/// roles").
fn restore_user(tenant: &mut Tenant, env: &Env, call: &Call, id: &str) -> GraphResp {
    let Some(i) = deleted_index(tenant, id) else {
        return not_found(id);
    };
    if tenant.users[i].privileged {
        return denied();
    }
    let (new_upn, reconcile) = match restore_options(call) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut u = tenant.users[i].clone();
    if let Some(upn) = new_upn {
        let mut patch = Map::new();
        patch.insert("userPrincipalName".into(), upn);
        u = match user_props::apply(&u, &patch, &tenant.spec.domains, false) {
            Ok(u) => u,
            Err(e) => return e,
        };
    }
    u.deleted_at = None;
    if reconcile && tenant.check_unique(&u).is_err() {
        // The only proxy address the emulator models is the one from mail.
        let upn_only = UserRecord {
            mail: None,
            ..u.clone()
        };
        if tenant.check_unique(&upn_only).is_ok() {
            u.mail = None;
        }
    }
    if let Err(e) = tenant.check_unique(&u) {
        return e;
    }
    for gid in std::mem::take(&mut u.groups_at_deletion) {
        if let Some(g) = tenant
            .groups
            .iter_mut()
            .find(|g| g.deleted_at.is_none() && g.id == gid)
        {
            if !g.members.contains(&u.id) {
                g.members.push(u.id.clone());
            }
        }
    }
    let mut obj = Map::new();
    obj.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#directoryObjects/$entity",
            env.graph_base
        )),
    );
    obj.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    obj.extend(view(env, &u, DEFAULT_PROPS));
    tenant.users[i] = u;
    GraphResp::json(200, Value::Object(obj))
}
