//! `GET /users`: query options, `$filter`, sorting and paging.

use serde_json::Value;

use super::errors::GraphResp;
use super::filter;
use super::manager::{self, expansion};
use super::paging::{next_link, page_size, start_offset, Page};
use super::state::{Tenant, UserRecord};
use super::user_props::{self, DEFAULT_PROPS};
use super::users::{context, q, selection, view, Call, Env};

pub(super) fn list(tenant: &mut Tenant, env: &Env, call: &Call) -> GraphResp {
    list_page(tenant, env, call).unwrap_or_else(|refused| refused)
}

/// The checks keep their order (options, `$select`, `$top`, `$filter`,
/// `$orderby`, `$skiptoken`): which refusal a request with several faults
/// gets is part of the behaviour.
fn list_page(tenant: &Tenant, env: &Env, call: &Call) -> Result<GraphResp, GraphResp> {
    check_query_options(call)?;
    let sel = selection(call)?;
    let expand = expansion(call)?;
    let page = page_size(call)?;
    let count_requested = q(call, "$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let advanced = call.eventual && count_requested;
    let expr = q(call, "$filter")
        .map(|f| filter::parse(f, advanced, &filter::USERS))
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
        .map(|u| {
            let mut obj = view(env, u, &props);
            manager::expand_into(&mut obj, tenant, env, u, expand.as_ref());
            Value::Object(obj)
        })
        .collect();
    Ok(Page {
        context: context(env, &sel, false),
        count: advanced.then_some(total),
        next_link: (end < total).then(|| next_link(env, "users", call, end)),
        value,
    }
    .answer())
}

fn check_query_options(call: &Call) -> Result<(), GraphResp> {
    // Query options per https://learn.microsoft.com/graph/api/user-list
    for (k, _) in call.query {
        let k = k.to_ascii_lowercase();
        match k.as_str() {
            "$select" | "$filter" | "$top" | "$skiptoken" | "$count" | "$orderby" | "$expand" => {}
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
            "$search" => {
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
