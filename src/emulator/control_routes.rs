//! The control API over HTTP (`/_emulator/...`): the same operations as
//! [`EmulatorControl`], for tests and demos driving the emulator from
//! outside the process.
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::config::{AppRegistration, TenantSpec};
use super::control::EmulatorControl;
use super::types::{Fault, SeedGroup, SeedSku, SeedUser};
use super::EmulatorError;

fn err(e: EmulatorError) -> Response {
    let status = match e {
        EmulatorError::UnknownTenant(_)
        | EmulatorError::UnknownUser(_)
        | EmulatorError::UnknownGroup(_)
        | EmulatorError::UnknownSku(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

fn done(r: Result<(), EmulatorError>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => err(e),
    }
}

type Ctl = State<EmulatorControl>;

async fn list_tenants(State(c): Ctl) -> Response {
    Json(c.tenants()).into_response()
}

async fn add_tenant(State(c): Ctl, Json(spec): Json<TenantSpec>) -> Response {
    match c.add_tenant(spec) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => err(e),
    }
}

#[derive(Deserialize)]
struct ConsentBody {
    consented: bool,
}

async fn consent(State(c): Ctl, Path(t): Path<String>, Json(b): Json<ConsentBody>) -> Response {
    done(c.set_consent(&t, b.consented))
}

#[derive(Deserialize)]
struct PermissionsBody {
    permissions: Vec<String>,
}

async fn permissions(
    State(c): Ctl,
    Path(t): Path<String>,
    Json(b): Json<PermissionsBody>,
) -> Response {
    done(c.set_permissions(&t, b.permissions))
}

async fn expire_tokens(State(c): Ctl, Path(t): Path<String>) -> Response {
    c.expire_tokens(&t);
    StatusCode::NO_CONTENT.into_response()
}

async fn add_app(State(c): Ctl, Json(app): Json<AppRegistration>) -> Response {
    c.add_app(app);
    StatusCode::CREATED.into_response()
}

async fn list_users(State(c): Ctl, Path(t): Path<String>) -> Response {
    Json(c.users(&t)).into_response()
}

async fn seed(State(c): Ctl, Path(t): Path<String>, Json(u): Json<SeedUser>) -> Response {
    match c.seed_user(&t, u) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => err(e),
    }
}

async fn edit(
    State(c): Ctl,
    Path((t, id)): Path<(String, String)>,
    Json(v): Json<Value>,
) -> Response {
    done(c.edit_user(&t, &id, v))
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    hard: bool,
}

async fn remove(
    State(c): Ctl,
    Path((t, id)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> Response {
    done(if q.hard {
        c.hard_delete_user(&t, &id)
    } else {
        c.soft_delete_user(&t, &id)
    })
}

async fn list_groups(State(c): Ctl, Path(t): Path<String>) -> Response {
    Json(c.groups(&t)).into_response()
}

async fn seed_group(State(c): Ctl, Path(t): Path<String>, Json(g): Json<SeedGroup>) -> Response {
    match c.seed_group(&t, g) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => err(e),
    }
}

async fn delete_group(State(c): Ctl, Path((t, g)): Path<(String, String)>) -> Response {
    done(c.delete_group(&t, &g))
}

async fn group_members(State(c): Ctl, Path((t, g)): Path<(String, String)>) -> Response {
    match c.group_members(&t, &g) {
        Ok(ids) => Json(ids).into_response(),
        Err(e) => err(e),
    }
}

#[derive(Deserialize)]
struct MemberBody {
    id: String,
}

async fn add_member(
    State(c): Ctl,
    Path((t, g)): Path<(String, String)>,
    Json(b): Json<MemberBody>,
) -> Response {
    done(c.add_group_member(&t, &g, &b.id))
}

async fn remove_member(State(c): Ctl, Path((t, g, u)): Path<(String, String, String)>) -> Response {
    done(c.remove_group_member(&t, &g, &u))
}

async fn get_manager(State(c): Ctl, Path((t, u)): Path<(String, String)>) -> Response {
    match c.manager_of(&t, &u) {
        Ok(m) => Json(json!({ "id": m })).into_response(),
        Err(e) => err(e),
    }
}

async fn put_manager(
    State(c): Ctl,
    Path((t, u)): Path<(String, String)>,
    Json(b): Json<MemberBody>,
) -> Response {
    done(c.set_manager(&t, &u, &b.id))
}

async fn delete_manager(State(c): Ctl, Path((t, u)): Path<(String, String)>) -> Response {
    done(c.clear_manager(&t, &u))
}

async fn deleted_users(State(c): Ctl, Path(t): Path<String>) -> Response {
    match c.deleted_users(&t) {
        Ok(users) => Json(users).into_response(),
        Err(e) => err(e),
    }
}

async fn purge_deleted(State(c): Ctl, Path((t, u)): Path<(String, String)>) -> Response {
    done(c.purge_deleted_user(&t, &u))
}

async fn put_sku(
    State(c): Ctl,
    Path((t, sku)): Path<(String, String)>,
    Json(b): Json<SkuBody>,
) -> Response {
    done(c.set_sku(
        &t,
        SeedSku {
            sku_id: sku,
            sku_part_number: b.sku_part_number.unwrap_or_default(),
            units: b.units,
        },
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkuBody {
    units: u32,
    sku_part_number: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LicenceBody {
    sku_id: String,
}

async fn assign_licence(
    State(c): Ctl,
    Path((t, g)): Path<(String, String)>,
    Json(b): Json<LicenceBody>,
) -> Response {
    done(c.assign_group_licence(&t, &g, &b.sku_id))
}

async fn licence_states(State(c): Ctl, Path((t, u)): Path<(String, String)>) -> Response {
    match c.licence_states(&t, &u) {
        Ok(s) => Json(s).into_response(),
        Err(e) => err(e),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    tenant: Option<String>,
}

async fn requests(State(c): Ctl, Query(q): Query<LogQuery>) -> Response {
    match q.tenant {
        Some(t) => Json(c.requests_for(&t)).into_response(),
        None => Json(c.requests()).into_response(),
    }
}

async fn clear_requests(State(c): Ctl) -> Response {
    c.clear_requests();
    StatusCode::NO_CONTENT.into_response()
}

async fn list_faults(State(c): Ctl) -> Response {
    Json(c.faults()).into_response()
}

async fn inject(State(c): Ctl, Json(f): Json<Fault>) -> Response {
    c.inject(f);
    StatusCode::CREATED.into_response()
}

async fn clear_faults(State(c): Ctl) -> Response {
    c.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct DelayBody {
    ms: u64,
}

async fn replicate_now(State(c): Ctl) -> Response {
    c.replicate_now();
    StatusCode::NO_CONTENT.into_response()
}

async fn replication(State(c): Ctl, Json(b): Json<DelayBody>) -> Response {
    c.set_replication_delay(Duration::from_millis(b.ms));
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ThrottlingBody {
    enabled: bool,
}

async fn throttling(State(c): Ctl, Json(b): Json<ThrottlingBody>) -> Response {
    c.set_throttling_enabled(b.enabled);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ForeignLoadBody {
    writes_per_sec: f64,
    #[serde(default)]
    burst: f64,
}

async fn foreign_load(
    State(c): Ctl,
    Path(tenant): Path<String>,
    Json(b): Json<ForeignLoadBody>,
) -> Response {
    c.set_foreign_load(&tenant, b.writes_per_sec, b.burst);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) fn router(control: EmulatorControl) -> Router {
    Router::new()
        .route("/_emulator/tenants", get(list_tenants).post(add_tenant))
        .route("/_emulator/tenants/{tenant}/consent", put(consent))
        .route("/_emulator/tenants/{tenant}/permissions", put(permissions))
        .route(
            "/_emulator/tenants/{tenant}/tokens/expire",
            post(expire_tokens),
        )
        .route("/_emulator/apps", post(add_app))
        .route(
            "/_emulator/tenants/{tenant}/users",
            get(list_users).post(seed),
        )
        .route(
            "/_emulator/tenants/{tenant}/users/{id}",
            patch(edit).delete(remove),
        )
        .route(
            "/_emulator/tenants/{tenant}/users/{id}/manager",
            get(get_manager).put(put_manager).delete(delete_manager),
        )
        .route(
            "/_emulator/tenants/{tenant}/deleted-users",
            get(deleted_users),
        )
        .route(
            "/_emulator/tenants/{tenant}/deleted-users/{id}",
            delete(purge_deleted),
        )
        .route(
            "/_emulator/tenants/{tenant}/groups",
            get(list_groups).post(seed_group),
        )
        .route(
            "/_emulator/tenants/{tenant}/groups/{group}",
            delete(delete_group),
        )
        .route(
            "/_emulator/tenants/{tenant}/groups/{group}/members",
            get(group_members).post(add_member),
        )
        .route(
            "/_emulator/tenants/{tenant}/groups/{group}/members/{user}",
            delete(remove_member),
        )
        .route("/_emulator/tenants/{tenant}/skus/{sku}", put(put_sku))
        .route(
            "/_emulator/tenants/{tenant}/groups/{group}/licences",
            post(assign_licence),
        )
        .route(
            "/_emulator/tenants/{tenant}/users/{id}/licences",
            get(licence_states),
        )
        .route("/_emulator/requests", get(requests).delete(clear_requests))
        .route(
            "/_emulator/faults",
            get(list_faults).post(inject).delete(clear_faults),
        )
        .route("/_emulator/replication-delay", put(replication))
        .route("/_emulator/replicate-now", post(replicate_now))
        .route("/_emulator/throttling", put(throttling))
        .route(
            "/_emulator/tenants/{tenant}/foreign-load",
            put(foreign_load),
        )
        .with_state(control)
}
