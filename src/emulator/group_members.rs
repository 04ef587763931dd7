//! Group membership: `members/$ref` (add, remove), `members@odata.bind`,
//! the member list and a user's `memberOf`. Members are users; a user not
//! replicated yet cannot be added, exactly as it cannot be read.

use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::group_props::{self, MEMBERS_BIND};
use super::groups::find_index;
use super::paging::{next_link, page_size, start_offset, Page};
use super::state::{GroupRecord, Tenant, UserRecord};
use super::user_props::DEFAULT_PROPS;
use super::users::{
    body_object, method_not_allowed, not_found, segment_not_found, selection, view, Call, Env,
};

/// "Up to 20 members can be added in a single request" (group-post-members,
/// example 2); at creation "a maximum of 20 relationships, such as owners
/// and members" (group-post-groups, example 2). Graph's refusal is quoted
/// in microsoft-graph-docs#6016.
const MAX_LINKS: usize = 20;

fn already_member() -> GraphResp {
    // group-post-members: "400 Bad Request ... when the object is already a
    // member of the group".
    GraphResp::error(
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
}

fn bad_reference(value: &str) -> GraphResp {
    GraphResp::error(
        400,
        "Request_BadRequest",
        format!("Invalid object identifier '{value}'."),
    )
}

pub(crate) fn dispatch(tenant: &mut Tenant, env: &Env, call: &Call) -> GraphResp {
    let segs = call.segments;
    let m = call.method.to_ascii_uppercase();
    let Some(i) = find_index(tenant, &segs[1], env.now) else {
        return not_found(&segs[1]);
    };
    let is_ref = |k: usize| segs.get(k).is_some_and(|s| s == "$ref");
    match (segs.len(), m.as_str()) {
        (3, "GET") => list(tenant, env, call, i).unwrap_or_else(|refused| refused),
        (4, "POST") if is_ref(3) => add(tenant, env, call, i),
        // PATCH .../members/$ref: refused as in microsoft-graph-docs-contrib#3152.
        (4, _) if is_ref(3) => GraphResp::error(
            400,
            "BadRequest",
            "The request is currently not supported on the targeted entity set",
        ),
        (5, "DELETE") if is_ref(4) => remove(tenant, i, &segs[3]),
        (3 | 5, _) => method_not_allowed(),
        _ => segment_not_found(&segs[segs.len() - 1]),
    }
}

/// The object id an `@odata.id` or bind URL names:
/// `https://graph.microsoft.com/v1.0/directoryObjects/{id}` (or `users/{id}`),
/// with any host, or relative.
/// The `@odata.id` of a `$ref` body (members/$ref, manager/$ref).
pub(crate) fn reference_url<'a>(call: &'a Call) -> Result<&'a str, GraphResp> {
    body_object(call)?
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GraphResp::error(
                400,
                "BadRequest",
                "The request body must contain an '@odata.id' reference.",
            )
        })
}

pub(crate) fn referenced_id(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut parts = path.rsplit('/');
    let id = parts.next()?;
    let set = parts.next()?;
    let known = set.eq_ignore_ascii_case("directoryObjects") || set.eq_ignore_ascii_case("users");
    (known && uuid::Uuid::parse_str(id).is_ok()).then(|| id.to_ascii_lowercase())
}

/// The member, a user readable now: one not replicated yet is 404, as its
/// read would be ("the object being added doesn't exist", group-post-members).
fn member_user<'a>(tenant: &'a Tenant, env: &Env, id: &str) -> Result<&'a UserRecord, GraphResp> {
    tenant
        .users
        .iter()
        .find(|u| u.is_visible(env.now) && u.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| not_found(id))
}

fn is_member(g: &GroupRecord, id: &str) -> bool {
    g.members.iter().any(|m| m.eq_ignore_ascii_case(id))
}

/// `POST /groups/{id}/members/$ref` (https://learn.microsoft.com/graph/api/group-post-members): 204.
fn add(tenant: &mut Tenant, env: &Env, call: &Call, i: usize) -> GraphResp {
    let url = match reference_url(call) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let Some(id) = referenced_id(url) else {
        return bad_reference(url);
    };
    let user_id = match member_user(tenant, env, &id) {
        Ok(u) => u.id.clone(),
        Err(e) => return e,
    };
    if is_member(&tenant.groups[i], &user_id) {
        return already_member();
    }
    tenant.groups[i].members.push(user_id);
    GraphResp::empty(204)
}

/// The users a create or update body binds as members, all checked before
/// any is added: "If an error condition exists in the request body, no
/// members are added" (group-post-members, example 2). One already a member,
/// or named twice, fails the request.
pub(crate) fn bound_members(
    tenant: &Tenant,
    env: &Env,
    group: &GroupRecord,
    body: &Map<String, Value>,
    creating: bool,
) -> Result<Vec<String>, GraphResp> {
    let Some(bind) = body.get(MEMBERS_BIND) else {
        return Ok(Vec::new());
    };
    let invalid = || {
        GraphResp::error(
            400,
            "Request_BadRequest",
            "Invalid URL format specified in @odata.bind for members",
        )
    };
    let urls: Vec<&str> = match bind {
        Value::Array(a) => a
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    let owners = body
        .get("owners@odata.bind")
        .and_then(Value::as_array)
        .filter(|_| creating)
        .map_or(0, Vec::len);
    if urls.len() + owners > MAX_LINKS {
        return Err(GraphResp::error(
            400,
            "Request_BadRequest",
            format!("A resource cannot contain more than {MAX_LINKS} link changes"),
        ));
    }
    let mut added: Vec<String> = Vec::with_capacity(urls.len());
    for url in urls {
        let id = referenced_id(url).ok_or_else(invalid)?;
        let user_id = member_user(tenant, env, &id)?.id.clone();
        if is_member(group, &user_id) || added.contains(&user_id) {
            return Err(already_member());
        }
        added.push(user_id);
    }
    Ok(added)
}

/// `DELETE /groups/{id}/members/{id}/$ref`
/// (https://learn.microsoft.com/graph/api/group-delete-members): 204, and
/// 404 for an object that is not a member.
fn remove(tenant: &mut Tenant, i: usize, member: &str) -> GraphResp {
    let g = &mut tenant.groups[i];
    let Some(at) = g
        .members
        .iter()
        .position(|m| m.eq_ignore_ascii_case(member))
    else {
        return not_found(member);
    };
    g.members.remove(at);
    GraphResp::empty(204)
}

fn check_query_options(call: &Call) -> Result<(), GraphResp> {
    match call.query.iter().find(|(k, _)| {
        k.starts_with('$')
            && !["$select", "$top", "$skiptoken"]
                .iter()
                .any(|o| o.eq_ignore_ascii_case(k))
    }) {
        Some((k, _)) => Err(GraphResp::error(
            400,
            "BadRequest",
            format!("Query option '{k}' is not supported."),
        )),
        None => Ok(()),
    }
}

/// A page of directory objects, each with its `@odata.type`.
fn page(
    env: &Env,
    call: &Call,
    path: &str,
    sel: &Option<Vec<&str>>,
    items: Vec<Map<String, Value>>,
) -> Result<GraphResp, GraphResp> {
    let size = page_size(call)?;
    let total = items.len();
    let start = start_offset(call, total)?;
    let end = (start + size).min(total);
    let mut context = format!("{}/$metadata#directoryObjects", env.graph_base);
    if let Some(sel) = sel {
        context.push_str(&format!("({})", sel.join(",")));
    }
    let value = items
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(Value::Object)
        .collect();
    Ok(Page {
        context,
        count: None,
        next_link: (end < total).then(|| next_link(env, path, call, end)),
        value,
    }
    .answer())
}

fn typed(kind: &str, mut props: Map<String, Value>) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert(
        "@odata.type".into(),
        json!(format!("#microsoft.graph.{kind}")),
    );
    obj.append(&mut props);
    obj
}

/// `GET /groups/{id}/members`: the members in the order they were added,
/// 100 a page unless `$top` (up to 999) says otherwise
/// (https://learn.microsoft.com/graph/api/group-list-members).
fn list(tenant: &Tenant, env: &Env, call: &Call, i: usize) -> Result<GraphResp, GraphResp> {
    check_query_options(call)?;
    let sel = selection(call)?;
    let mut props: Vec<&str> = sel.clone().unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    if !env.read_users {
        props = vec!["id"];
    }
    let g = &tenant.groups[i];
    let items = g
        .members
        .iter()
        .filter_map(|id| tenant.users.iter().find(|u| !u.is_deleted() && &u.id == id))
        .map(|u| typed("user", view(env, u, &props)))
        .collect();
    page(env, call, &format!("groups/{}/members", g.id), &sel, items)
}

/// `GET /users/{id}/memberOf`: the groups the user is a direct member of
/// (https://learn.microsoft.com/graph/api/user-list-memberof).
pub(crate) fn member_of(tenant: &Tenant, env: &Env, call: &Call, key: &str) -> GraphResp {
    let Some(u) = tenant.users.iter().find(|u| {
        u.is_visible(env.now) && (u.id.eq_ignore_ascii_case(key) || u.upn.eq_ignore_ascii_case(key))
    }) else {
        return not_found(key);
    };
    let listed = check_query_options(call).and_then(|()| group_props::selection(call));
    let sel = match listed {
        Ok(s) => s,
        Err(e) => return e,
    };
    let props: Vec<&str> = sel
        .clone()
        .unwrap_or_else(|| group_props::DEFAULT_PROPS.to_vec());
    let items = tenant
        .groups
        .iter()
        .filter(|g| g.is_visible(env.now) && is_member(g, &u.id))
        .map(|g| typed("group", group_props::project(g, &props)))
        .collect();
    page(env, call, &format!("users/{key}/memberOf"), &sel, items).unwrap_or_else(|refused| refused)
}
