//! Graph requests as data. A request is a method, a path relative to the
//! version root, a query and a JSON body: exactly the shape of one `$batch`
//! item (learn.microsoft.com/graph/json-batching), so the same value can be
//! sent alone or inside a batch.
use std::fmt;

use http::Method;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use crate::domain::EntraObjectId;
use crate::mapping::DesiredUser;
use crate::pacing::limits::Cost;
use crate::plan::{props, Change};

/// Everything but RFC 3986 unreserved characters is escaped, so spaces in
/// `$filter` become %20 (never '+') and a '+' or '#' in an address survives.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Clone)]
pub struct GraphRequest {
    pub method: Method,
    /// Relative to the version root, starting with '/': "/users/{id}".
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// A query already encoded by Graph (the tail of an `@odata.nextLink`).
    raw_query: Option<String>,
    /// A new user's initial password, kept out of `body` (which may be
    /// cloned, compared or logged) and added only when the body is sent.
    password: Option<SecretString>,
}

/// Bodies can carry an initial password: Debug never prints them.
impl fmt::Debug for GraphRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphRequest")
            .field("method", &self.method)
            .field("url", &self.relative_url())
            .field("body", &self.body.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GraphRequest {
    fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body: None,
            raw_query: None,
            password: None,
        }
    }

    /// The JSON body as it goes on the wire (with the password, if any).
    pub fn wire_body(&self) -> Option<Value> {
        let mut body = self.body.clone()?;
        if let (Some(pw), Some(obj)) = (&self.password, body.as_object_mut()) {
            obj.insert(
                "passwordProfile".into(),
                json!({
                    "forceChangePasswordNextSignIn": true,
                    "password": pw.expose_secret(),
                }),
            );
        }
        Some(body)
    }

    /// A write consumes the tenant's write budget; reads only resource units.
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }

    /// A page of a listing (`$top`, or an `@odata.nextLink`): its caller
    /// asks for the next page only once this one is back, so nothing will
    /// share its round trip.
    pub fn is_listing_page(&self) -> bool {
        self.method == Method::GET
            && (self.raw_query.is_some() || self.query.iter().any(|(k, _)| *k == "$top"))
    }

    /// What Graph charges for this request (query options in a next link
    /// count as well).
    pub fn cost(&self) -> Cost {
        let mut query: Vec<(&str, String)> =
            self.query.iter().map(|(k, v)| (*k, v.clone())).collect();
        for pair in self.raw_query.iter().flat_map(|q| q.split('&')) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = match k.replace("%24", "$").as_str() {
                "$select" => "$select",
                "$expand" => "$expand",
                "$top" => "$top",
                _ => continue,
            };
            query.push((k, v.to_string()));
        }
        Cost::of(&self.method, &self.path, &query)
    }

    /// Path and query, percent-encoded: the `url` of a `$batch` item, and
    /// what is appended to the configured Graph base URL.
    pub fn relative_url(&self) -> String {
        let mut url = self.path.clone();
        if let Some(q) = &self.raw_query {
            url.push('?');
            url.push_str(q);
            return url;
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.extend(utf8_percent_encode(v, QUERY_VALUE));
        }
        url
    }
}

fn user_path(id: &EntraObjectId) -> String {
    format!("/users/{}", utf8_percent_encode(&id.0, QUERY_VALUE))
}

/// `POST /users` with every managed property in the one request, plus what
/// Graph requires of a new user (learn.microsoft.com/graph/api/user-post-users).
pub fn create_user(desired: &DesiredUser, password: SecretString) -> GraphRequest {
    let mut body = Map::new();
    for (k, v) in props(desired) {
        // Unset optional properties are simply not sent on create.
        if !v.is_null() {
            body.insert(k, v);
        }
    }
    let mut r = GraphRequest::new(Method::POST, "/users".into());
    r.body = Some(Value::Object(body));
    r.password = Some(password);
    r
}

/// `PATCH /users/{id}` with only the changed properties (204 on success).
pub fn update_user(id: &EntraObjectId, changes: &[Change]) -> GraphRequest {
    let body: Map<String, Value> = changes
        .iter()
        .map(|c| (c.property.clone(), c.new.clone()))
        .collect();
    let mut r = GraphRequest::new(Method::PATCH, user_path(id));
    r.body = Some(Value::Object(body));
    r
}

/// learn.microsoft.com/graph/api/user-revokesigninsessions
pub fn revoke_sessions(id: &EntraObjectId) -> GraphRequest {
    GraphRequest::new(
        Method::POST,
        format!("{}/revokeSignInSessions", user_path(id)),
    )
}

/// `GET /users/{id}?$select=...`: what Entra holds now, read before a
/// decision when a write's outcome is unknown (a read costs no write budget).
pub fn get_user(id: &EntraObjectId, select: &[&str]) -> GraphRequest {
    let mut r = GraphRequest::new(Method::GET, user_path(id));
    r.query.push(("$select", select.join(",")));
    r
}

/// Soft delete: restorable for 30 days (learn.microsoft.com/graph/api/user-delete).
pub fn delete_user(id: &EntraObjectId) -> GraphRequest {
    GraphRequest::new(Method::DELETE, user_path(id))
}

/// `GET /users?$filter=<property> eq '<value>'&$select=...`. `eq` on mail and
/// userPrincipalName needs no ConsistencyLevel header
/// (learn.microsoft.com/graph/aad-advanced-queries).
pub fn find_users_by(property: &str, value: &str, select: &[&str]) -> GraphRequest {
    let mut r = GraphRequest::new(Method::GET, "/users".into());
    r.query.push((
        "$filter",
        format!("{property} eq '{}'", odata_string(value)),
    ));
    r.query.push(("$select", select.join(",")));
    r
}

/// `GET /users?$select=...&$top=999`: the largest page Graph serves
/// (learn.microsoft.com/graph/paging, user-list `$top` 1 to 999).
pub fn list_users(select: &[&str]) -> GraphRequest {
    let mut r = GraphRequest::new(Method::GET, "/users".into());
    r.query.push(("$select", select.join(",")));
    r.query.push(("$top", "999".into()));
    r
}

/// [`list_users`] with each user's manager's id
/// (`$expand=manager($select=id)`, graph/api/user-list-manager): one more
/// resource unit a page (Graph's cost table: `$expand` +1), so a resync
/// sees manager drift without a read per user.
pub fn list_users_and_managers(select: &[&str]) -> GraphRequest {
    let mut r = list_users(select);
    r.query.push(("$expand", "manager($select=id)".into()));
    r
}

/// The request for an `@odata.nextLink`, which Graph returns absolute and
/// fully encoded: used as it is, relative to the version root.
pub fn next_page(next_link: &str, graph_base: &str) -> Option<GraphRequest> {
    let rest = next_link.strip_prefix(graph_base.trim_end_matches('/'))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut r = GraphRequest::new(Method::GET, path.to_string());
    r.raw_query = (!query.is_empty()).then(|| query.to_string());
    Some(r)
}

/// `GET /users?$top=1&$select=id`: the cheapest read that proves a tenant's
/// token works.
pub fn probe() -> GraphRequest {
    let mut r = GraphRequest::new(Method::GET, "/users".into());
    r.query.push(("$top", "1".into()));
    r.query.push(("$select", "id".into()));
    r
}

/// `PATCH /users/{id}` with an empty object: a write that changes nothing,
/// to learn whether the app may still write in the tenant (204) or not (403).
pub fn write_check(id: &EntraObjectId) -> GraphRequest {
    let mut r = GraphRequest::new(Method::PATCH, user_path(id));
    r.body = Some(Value::Object(Map::new()));
    r
}

fn group_path(id: &str) -> String {
    format!("/groups/{}", utf8_percent_encode(id, QUERY_VALUE))
}

/// `POST /groups/{id}/members/$ref` (learn.microsoft.com/graph/api/group-post-members):
/// 204, or 400 "One or more added object references already exist" for a member.
pub fn add_group_member(group: &str, member: &EntraObjectId) -> GraphRequest {
    let mut r = GraphRequest::new(Method::POST, format!("{}/members/$ref", group_path(group)));
    // The reference is always spelled on Graph's public host, whichever
    // endpoint the request goes to (the documented form).
    r.body = Some(json!({
        "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", member.0)
    }));
    r
}

/// `PATCH /groups/{id}` with `members@odata.bind`: up to
/// [`MEMBERS_PER_WRITE`] members in one write, all or none ("If an error
/// condition exists in the request body, no members are added",
/// learn.microsoft.com/graph/api/group-post-members, example 2). 204.
pub fn add_group_members(group: &str, members: &[EntraObjectId]) -> GraphRequest {
    let mut r = GraphRequest::new(Method::PATCH, group_path(group));
    let refs: Vec<String> = members
        .iter()
        .map(|m| format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", m.0))
        .collect();
    r.body = Some(json!({ "members@odata.bind": refs }));
    r
}

/// Graph's limit on members one write may add (group-post-members:
/// "up to 20 members can be added in a single request").
pub const MEMBERS_PER_WRITE: usize = 20;

/// `GET /groups/{id}/members?$select=id&$top=999`: a group's members, ids
/// only, in the largest pages Graph gives (graph/api/group-list-members).
pub fn list_group_members(group: &str) -> GraphRequest {
    let mut r = GraphRequest::new(Method::GET, format!("{}/members", group_path(group)));
    r.query.push(("$select", "id".into()));
    r.query.push(("$top", "999".into()));
    r
}

/// `DELETE /groups/{id}/members/{userId}/$ref` (graph/api/group-delete-members):
/// 204, or 404 for a user who is not a member.
pub fn remove_group_member(group: &str, member: &EntraObjectId) -> GraphRequest {
    GraphRequest::new(
        Method::DELETE,
        format!(
            "{}/members/{}/$ref",
            group_path(group),
            utf8_percent_encode(&member.0, QUERY_VALUE)
        ),
    )
}

/// `GET /groups?$filter=mailNickname eq '..'&$select=id,displayName`: the
/// group the daemon manages under a name, found by its derived nickname.
pub fn find_group_by_nickname(nickname: &str) -> GraphRequest {
    let mut r = GraphRequest::new(Method::GET, "/groups".into());
    r.query.push((
        "$filter",
        format!("mailNickname eq '{}'", odata_string(nickname)),
    ));
    r.query.push(("$select", "id,displayName".into()));
    r
}

/// `POST /groups`: a security group (graph/api/group-post-groups,
/// `mailEnabled` false, `securityEnabled` true), 201 with its id.
pub fn create_security_group(display_name: &str, nickname: &str) -> GraphRequest {
    let mut r = GraphRequest::new(Method::POST, "/groups".into());
    r.body = Some(json!({
        "displayName": display_name,
        "mailEnabled": false,
        "mailNickname": nickname,
        "securityEnabled": true,
    }));
    r
}

/// `PUT /users/{id}/manager/$ref` (learn.microsoft.com/graph/api/user-post-manager):
/// 204. The reference is spelled on Graph's public host, as documented.
pub fn set_manager(id: &EntraObjectId, manager: &EntraObjectId) -> GraphRequest {
    let mut r = GraphRequest::new(Method::PUT, format!("{}/manager/$ref", user_path(id)));
    r.body = Some(json!({
        "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", manager.0)
    }));
    r
}

/// `DELETE /users/{id}/manager/$ref` (graph/api/user-delete-manager): 204.
pub fn remove_manager(id: &EntraObjectId) -> GraphRequest {
    GraphRequest::new(Method::DELETE, format!("{}/manager/$ref", user_path(id)))
}

/// `GET /directory/deletedItems/{id}` (graph/api/directory-deleteditems-get):
/// a soft-deleted user by its object id, 404 when it is not (or no longer)
/// in the deleted items.
pub fn get_deleted_user(id: &EntraObjectId, select: &[&str]) -> GraphRequest {
    let path = format!(
        "/directory/deletedItems/{}",
        utf8_percent_encode(&id.0, QUERY_VALUE)
    );
    let mut r = GraphRequest::new(Method::GET, path);
    r.query.push(("$select", select.join(",")));
    r
}

/// `GET /directory/deletedItems/microsoft.graph.user?$filter=<property> eq '..'`
/// (graph/api/directory-deleteditems-list: the cast is required; `eq` on
/// mail and userPrincipalName needs no advanced query).
pub fn find_deleted_users_by(property: &str, value: &str, select: &[&str]) -> GraphRequest {
    let mut r = GraphRequest::new(
        Method::GET,
        "/directory/deletedItems/microsoft.graph.user".into(),
    );
    r.query.push((
        "$filter",
        format!("{property} eq '{}'", odata_string(value)),
    ));
    r.query.push(("$select", select.join(",")));
    r
}

/// `POST /directory/deletedItems/{id}/restore` (graph/api/directory-deleteditems-restore):
/// 200 with the user, back with its id, properties and groups.
pub fn restore_deleted_user(id: &EntraObjectId) -> GraphRequest {
    GraphRequest::new(
        Method::POST,
        format!(
            "/directory/deletedItems/{}/restore",
            utf8_percent_encode(&id.0, QUERY_VALUE)
        ),
    )
}

/// OData string literals double their single quotes.
fn odata_string(v: &str) -> String {
    v.replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ada() -> DesiredUser {
        DesiredUser {
            user_principal_name: "o'neil+x@contoso.com".into(),
            mail: "o'neil+x@contoso.com".into(),
            mail_nickname: "oneilx".into(),
            account_enabled: true,
            profile: BTreeMap::from([
                ("displayName".to_string(), Some("Ada".to_string())),
                ("jobTitle".to_string(), None),
            ]),
        }
    }

    #[test]
    fn listing_pages_are_told_apart_from_lookups_and_writes() {
        let base = "https://graph.example/v1.0";
        let next = next_page(&format!("{base}/users?%24skiptoken=abc"), base);
        assert!(next.is_some_and(|r| r.is_listing_page()));
        assert!(list_users(&["id"]).is_listing_page());
        assert!(list_group_members("g").is_listing_page());
        // A lookup by mail is one of many a busy tenant sends at once.
        assert!(!find_users_by("mail", "ada@contoso.com", &["id"]).is_listing_page());
        assert!(!write_check(&EntraObjectId("u".into())).is_listing_page());
    }

    #[test]
    fn filters_escape_quotes_and_percent_encode_the_literal() {
        let r = find_users_by("mail", "o'neil+x@contoso.com", &["id", "mail"]);
        assert_eq!(
            r.relative_url(),
            "/users?$filter=mail%20eq%20%27o%27%27neil%2Bx%40contoso.com%27&$select=id%2Cmail"
        );
    }

    #[test]
    fn create_sends_required_properties_and_omits_unset_ones() {
        let pw = SecretString::from("S3cret-Pass!word".to_string());
        let r = create_user(&ada(), pw);
        assert!(r.body.as_ref().unwrap().get("passwordProfile").is_none());
        let body = r.wire_body().unwrap();
        assert_eq!(body["passwordProfile"]["password"], "S3cret-Pass!word");
        for k in [
            "accountEnabled",
            "displayName",
            "mailNickname",
            "userPrincipalName",
            "passwordProfile",
        ] {
            assert!(body.get(k).is_some(), "{k} missing");
        }
        assert!(body.get("jobTitle").is_none());
        assert_eq!(
            body["passwordProfile"]["forceChangePasswordNextSignIn"],
            true
        );
        let debug = format!("{r:?}");
        assert!(!debug.contains("S3cret"), "{debug}");
    }

    #[test]
    fn manager_and_restore_requests_are_shaped_as_graph_documents_them() {
        let u = EntraObjectId("0a1b2c3d-0000-4000-8000-000000000001".into());
        let m = EntraObjectId("0a1b2c3d-0000-4000-8000-000000000002".into());
        let put = set_manager(&u, &m);
        assert_eq!(put.method, Method::PUT);
        assert_eq!(put.relative_url(), format!("/users/{}/manager/$ref", u.0));
        assert_eq!(
            put.body.unwrap()["@odata.id"],
            format!("https://graph.microsoft.com/v1.0/users/{}", m.0)
        );
        let del = remove_manager(&u);
        assert_eq!((del.method, del.body), (Method::DELETE, None));
        let find = find_deleted_users_by("mail", "ada@contoso.com", &["id", "mail"]);
        assert_eq!(
            find.relative_url(),
            "/directory/deletedItems/microsoft.graph.user?$filter=mail%20eq%20%27ada%40contoso.com%27&$select=id%2Cmail"
        );
        let restore = restore_deleted_user(&u);
        assert_eq!(restore.method, Method::POST);
        assert_eq!(
            restore.relative_url(),
            format!("/directory/deletedItems/{}/restore", u.0)
        );
    }

    #[test]
    fn membership_requests_are_shaped_as_graph_documents_them() {
        let g = "b5b1f3c0-1d2e-4f30-8a41-5b6c7d8e9f01";
        let u = EntraObjectId("0a1b2c3d-0000-4000-8000-000000000001".into());
        let add = add_group_member(g, &u);
        assert_eq!(add.method, Method::POST);
        assert_eq!(add.relative_url(), format!("/groups/{g}/members/$ref"));
        assert_eq!(
            add.body.unwrap()["@odata.id"],
            format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", u.0)
        );
        let remove = remove_group_member(g, &u);
        assert_eq!(remove.method, Method::DELETE);
        assert_eq!(
            remove.relative_url(),
            format!("/groups/{g}/members/{}/$ref", u.0)
        );
        let find = find_group_by_nickname("plumm-allstaff-0badf00d");
        assert_eq!(
            find.relative_url(),
            "/groups?$filter=mailNickname%20eq%20%27plumm-allstaff-0badf00d%27&$select=id%2CdisplayName"
        );
        let create = create_security_group("All staff", "plumm-allstaff-0badf00d")
            .body
            .unwrap();
        assert_eq!(create["mailEnabled"], false);
        assert_eq!(create["securityEnabled"], true);
        assert_eq!(create["displayName"], "All staff");
    }
}
