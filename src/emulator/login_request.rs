//! The shape of a token request, checked in the order the endpoint refuses:
//! the tenant segment and grant, the client's one authentication method,
//! and the scope (v2-oauth2-client-creds-grant-flow).
use std::collections::HashMap;

use axum::http::HeaderMap;

use super::graph::header;
use super::login::{fail, Failure};
use super::util::{base64_decode, percent_decode};

const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

pub(super) fn missing(name: &str) -> Failure {
    fail(
        400,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// HTTP Basic client authentication (RFC 6749 section 2.3.1), which the
/// client credentials page says is also supported.
pub(super) fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = header(h, "authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(rest)?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Both parts are form-urlencoded before being joined (RFC 6749 2.3.1).
    let dec = |s: &str| percent_decode(&s.replace('+', " "));
    Some((dec(id), dec(secret)))
}

/// A form parameter, when present and not empty.
pub(super) fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

pub(super) fn one_method_only() -> Failure {
    fail(
        400,
        "invalid_request",
        90023,
        "The request must use only one client authentication method.",
    )
}

/// The tenant segment must name one tenant, and the grant must be client credentials.
pub(super) fn check_endpoint(tenant_seg: &str, grant: &str) -> Result<(), Failure> {
    let t = tenant_seg.to_ascii_lowercase();
    if t == "common" || t == "consumers" {
        return Err(fail(
            400,
            "invalid_request",
            9001023,
            "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    }
    if t == "organizations" {
        // Client credentials need a tenant: "The directory tenant the
        // application plans to operate against, in GUID or domain-name format."
        return Err(fail(
            400,
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        ));
    }
    if grant != "client_credentials" {
        return Err(fail(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    Ok(())
}

/// The client id, and the secret if one was sent, from HTTP Basic or the body.
pub(super) fn client_id_and_secret(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(String, Option<String>), Failure> {
    let basic = basic_credentials(headers);
    if basic.is_some() && param(params, "client_secret").is_some() {
        // RFC 6749 2.3: no more than one authentication method per request.
        return Err(one_method_only());
    }
    match basic {
        Some((id, secret)) => {
            if param(params, "client_id").is_some_and(|b| !b.eq_ignore_ascii_case(&id)) {
                return Err(fail(
                    400,
                    "invalid_request",
                    90023,
                    "The client_id in the request body does not match the client credentials.",
                ));
            }
            Ok((id, Some(secret)))
        }
        None => {
            let id = param(params, "client_id")
                .ok_or_else(|| missing("client_id"))?
                .to_string();
            Ok((id, param(params, "client_secret").map(str::to_string)))
        }
    }
}

/// Client credentials take the resource's `/.default` scope and nothing else.
pub(super) fn check_scope(scope: &str) -> Result<(), Failure> {
    let valid_scope = [GRAPH_RESOURCE, GRAPH_APP_ID].iter().any(|r| {
        scope.eq_ignore_ascii_case(&format!("{r}/.default"))
            || scope.eq_ignore_ascii_case(&format!("{r}//.default"))
    });
    if valid_scope {
        return Ok(());
    }
    if !scope.contains("/.default") && !scope.contains(' ') {
        return Err(fail(
            400,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        ));
    }
    Err(fail(
        400,
        "invalid_scope",
        70011,
        format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
    ))
}
