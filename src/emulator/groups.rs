//! /groups handlers: create, list, get, update, delete (membership is in
//! `group_members`).

use std::time::Instant;

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::filter;
use super::group_members::{self, bound_members};
use super::group_props::{self, DEFAULT_PROPS, MEMBERS_BIND};
use super::licensing;
use super::paging::{next_link, page_size, start_offset, Page};
use super::state::{GroupRecord, Inner, Tenant};
use super::users::{body_object, method_not_allowed, not_found, q, segment_not_found, Call, Env};
use super::util::new_guid;

fn no_tenant() -> GraphResp {
    GraphResp::error(
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure.",
    )
}

pub(crate) fn dispatch(inner: &mut Inner, env: &Env, call: &Call) -> GraphResp {
    let segs = call.segments;
    let m = call.method.to_ascii_uppercase();
    if (segs.len(), m.as_str()) == (1, "POST") {
        return create(inner, env, call);
    }
    let Some(tenant) = inner.tenant_by_id_mut(env.tenant_id) else {
        return no_tenant();
    };
    match (segs.len(), m.as_str()) {
        (1, "GET") => list(tenant, env, call).unwrap_or_else(|refused| refused),
        (1, _) => method_not_allowed(),
        (2, "GET") => get_one(tenant, env, call, &segs[1]),
        (2, "PATCH") => update(tenant, env, call, &segs[1]),
        (2, "DELETE") => delete(tenant, env, &segs[1]),
        (2, _) => method_not_allowed(),
        (3.., _) if segs[2].eq_ignore_ascii_case("members") => {
            group_members::dispatch(tenant, env, call)
        }
        (3, m) if is_assign_license(&segs[2]) => match (m, find_index(tenant, &segs[1], env.now)) {
            ("POST", Some(i)) => licensing::assign_license(tenant, env, call, i),
            ("POST", None) => not_found(&segs[1]),
            _ => method_not_allowed(),
        },
        _ => segment_not_found(&segs[segs.len() - 1]),
    }
}

/// The group by id among those readable now: a group not replicated yet
/// answers 404 to everything, a POST of members to it included.
pub(super) fn find_index(tenant: &Tenant, key: &str, now: Instant) -> Option<usize> {
    tenant
        .groups
        .iter()
        .position(|g| g.is_visible(now) && g.id.eq_ignore_ascii_case(key))
}

fn context(env: &Env, sel: &Option<Vec<&str>>, entity: bool) -> String {
    let mut s = format!("{}/$metadata#groups", env.graph_base);
    if let Some(sel) = sel {
        s.push_str(&format!("({})", sel.join(",")));
    }
    if entity {
        s.push_str("/$entity");
    }
    s
}

fn entity(env: &Env, g: &GroupRecord, sel: &Option<Vec<&'static str>>) -> Value {
    let props: Vec<&str> = sel.clone().unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    let mut obj = Map::new();
    obj.insert("@odata.context".into(), json!(context(env, sel, true)));
    obj.extend(group_props::project(g, &props));
    Value::Object(obj)
}

/// A new group, with its members if the body binds some
/// (https://learn.microsoft.com/graph/api/group-post-groups): 201 with the
/// default properties, readable only once replicated.
fn create(inner: &mut Inner, env: &Env, call: &Call) -> GraphResp {
    let body = match body_object(call) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let seq = inner.next_user_seq();
    let Some(tenant) = inner.tenant_by_id_mut(env.tenant_id) else {
        return no_tenant();
    };
    let domain = tenant.spec.domains.first().cloned().unwrap_or_default();
    let blank = blank(seq, new_guid());
    let checked = group_props::apply(&blank, body, &domain, true)
        .and_then(|g| group_props::check_unique(&g, &tenant.groups, &tenant.users).map(|()| g))
        .and_then(|g| bound_members(tenant, env, &g, body, true).map(|m| (g, m)));
    let (mut g, members) = match checked {
        Ok(done) => done,
        Err(e) => return e,
    };
    g.members = members;
    // Eventual consistency, as for users: "Add a delay ... for replication"
    // (concepts/best-practices#handling-expected-errors).
    g.visible_at = env.now + env.replication;
    g.visible_at_utc = Utc::now()
        + chrono::Duration::from_std(env.replication).unwrap_or_else(|_| chrono::Duration::zero());
    g.created_via_graph = true;
    let answer = entity(env, &g, &None);
    tenant.groups.push(g);
    GraphResp::json(201, answer)
}

pub(crate) fn blank(seq: u64, id: String) -> GroupRecord {
    let now = Utc::now();
    GroupRecord {
        seq,
        id,
        display_name: String::new(),
        description: None,
        mail_nickname: String::new(),
        mail_enabled: false,
        security_enabled: false,
        group_types: Vec::new(),
        mail: None,
        visibility: None,
        created_at: now,
        deleted_at: None,
        visible_at: Instant::now(),
        visible_at_utc: now,
        members: Vec::new(),
        created_via_graph: false,
        licences: Vec::new(),
    }
}

/// https://learn.microsoft.com/graph/api/group-get
fn get_one(tenant: &Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let sel = match group_props::selection(call) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match find_index(tenant, key, env.now) {
        Some(i) => GraphResp::json(200, entity(env, &tenant.groups[i], &sel)),
        None => not_found(key),
    }
}

/// Query options of https://learn.microsoft.com/graph/api/group-list.
fn check_query_options(call: &Call) -> Result<(), GraphResp> {
    for (k, _) in call.query {
        let k = k.to_ascii_lowercase();
        match k.as_str() {
            "$select" | "$filter" | "$top" | "$skiptoken" | "$count" | "$orderby" => {}
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

/// `GET /groups`: `$filter`, `$select`, `$orderby=displayName`, paged by
/// `$top` (https://learn.microsoft.com/graph/api/group-list).
fn list(tenant: &Tenant, env: &Env, call: &Call) -> Result<GraphResp, GraphResp> {
    check_query_options(call)?;
    let sel = group_props::selection(call)?;
    let page = page_size(call)?;
    let advanced =
        call.eventual && q(call, "$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let expr = q(call, "$filter")
        .map(|f| filter::parse(f, advanced, &filter::GROUPS))
        .transpose()?;
    let mut groups: Vec<&GroupRecord> = tenant
        .groups
        .iter()
        .filter(|g| g.is_visible(env.now))
        .filter(|g| match &expr {
            None => true,
            Some(e) => filter::eval(e, &|p| group_props::filter_value(g, p)),
        })
        .collect();
    groups.sort_by_key(|g| g.seq);
    if let Some(ob) = q(call, "$orderby") {
        // Sorting by displayName is supported, with $filter only in
        // advanced queries (concepts/aad-advanced-queries).
        let mut parts = ob.split_whitespace();
        let by_name = parts
            .next()
            .is_some_and(|p| p.eq_ignore_ascii_case("displayName"));
        if !by_name || (expr.is_some() && !advanced) {
            return Err(GraphResp::error(
                400,
                "Request_UnsupportedQuery",
                "Unsupported Query.",
            ));
        }
        groups.sort_by_key(|g| g.display_name.to_lowercase());
        if parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc")) {
            groups.reverse();
        }
    }
    let total = groups.len();
    let start = start_offset(call, total)?;
    let end = (start + page).min(total);
    let props: Vec<&str> = sel.clone().unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    let value: Vec<Value> = groups[start..end]
        .iter()
        .map(|g| Value::Object(group_props::project(g, &props)))
        .collect();
    Ok(Page {
        context: context(env, &sel, false),
        count: advanced.then_some(total),
        next_link: (end < total).then(|| next_link(env, "groups", call, end)),
        value,
    }
    .answer())
}

/// Properties and `members@odata.bind` in one PATCH; any error leaves the
/// group as it was (https://learn.microsoft.com/graph/api/group-update,
/// graph/api/group-post-members example 2): 204.
fn update(tenant: &mut Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let body = match body_object(call) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(i) = find_index(tenant, key, env.now) else {
        return not_found(key);
    };
    let domain = tenant.spec.domains.first().cloned().unwrap_or_default();
    let current = &tenant.groups[i];
    let checked = group_props::apply(current, body, &domain, false)
        .and_then(|g| group_props::check_unique(&g, &tenant.groups, &tenant.users).map(|()| g))
        .and_then(|g| bound_members(tenant, env, current, body, false).map(|m| (g, m)));
    let (mut updated, added) = match checked {
        Ok(done) => done,
        Err(e) => return e,
    };
    updated.members.extend(added);
    tenant.groups[i] = updated;
    GraphResp::empty(204)
}

/// "Microsoft 365 groups are moved to a temporary container and can be
/// restored within 30 days ... This isn't applicable to Security groups and
/// Distribution groups which are permanently deleted immediately"
/// (https://learn.microsoft.com/graph/api/group-delete): 204.
fn delete(tenant: &mut Tenant, env: &Env, key: &str) -> GraphResp {
    let Some(i) = find_index(tenant, key, env.now) else {
        return not_found(key);
    };
    if tenant.groups[i].is_unified() {
        tenant.groups[i].deleted_at = Some(Utc::now());
    } else {
        tenant.groups.remove(i);
    }
    GraphResp::empty(204)
}

/// Whether a PATCH body only binds members (a membership write, which
/// needs no permission to change the group itself).
pub(crate) fn only_binds_members(body: Option<&Value>) -> bool {
    body.and_then(Value::as_object)
        .is_some_and(|b| !b.is_empty() && b.keys().all(|k| k == MEMBERS_BIND))
}

/// `assignLicense`, or its namespace-qualified form.
pub(crate) fn is_assign_license(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("assignLicense")
        || segment.eq_ignore_ascii_case("microsoft.graph.assignLicense")
}
