//! The OpenID Connect discovery document,
//! `GET /{tenant}/v2.0/.well-known/openid-configuration`, which MSAL-based
//! clients (azure-identity, msal) read before their first token request
//! (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc,
//! "Find your app's OpenID configuration document URI"). `common`,
//! `organizations` and `consumers` answer with a `{tenantid}` placeholder
//! in the issuer, as Microsoft's do; an unknown tenant is AADSTS90002.
use axum::body::Body as HttpBody;
use axum::http::Response;
use serde_json::{json, Value};

use super::errors::login_error;
use super::state::Shared;

fn reply(status: u16, body: &Value) -> Response<HttpBody> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(HttpBody::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(HttpBody::empty()))
}

/// The document for the tenant segment as sent (GUID, domain or alias).
pub(crate) fn openid_configuration(shared: &Shared, tenant_seg: &str) -> Response<HttpBody> {
    let alias = ["common", "organizations", "consumers"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(tenant_seg));
    let tenant_id = if alias {
        "{tenantid}".to_string()
    } else {
        let inner = shared.lock();
        match inner.tenant_index(tenant_seg) {
            Some(i) => inner.tenants[i].spec.id.clone(),
            None => {
                let why = format!("Tenant '{tenant_seg}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.");
                return reply(400, &login_error("invalid_tenant", 90002, &why));
            }
        }
    };
    let base = &shared.base_url;
    let v2 = format!("{base}/{tenant_seg}/oauth2/v2.0");
    reply(
        200,
        &json!({
            "token_endpoint": format!("{v2}/token"),
            "token_endpoint_auth_methods_supported":
                ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant_seg}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tenant_id}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{v2}/authorize"),
            "device_authorization_endpoint": format!("{v2}/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{v2}/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }),
    )
}
