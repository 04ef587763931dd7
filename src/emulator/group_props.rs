//! The group resource's properties: projection, `$select`, and the checks
//! of a create or an update (https://learn.microsoft.com/graph/api/resources/group,
//! graph/api/group-post-groups, graph/api/group-update).

use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::filter::FVal;
use super::state::{GroupRecord, UserRecord};
use super::types::EmulatedGroup;
use super::users::{q, Call};
use super::validate;

/// Returned when no `$select` is given: the default properties of the group
/// resource, as in the sample responses of graph/api/group-post-groups.
pub(crate) const DEFAULT_PROPS: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "creationOptions",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
];

/// Properties Graph computes; a write naming one is refused.
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "deletedDateTime",
    "mail",
    "proxyAddresses",
    "renewedDateTime",
    "securityIdentifier",
    "assignedLicenses",
];

/// "The licenses that are assigned to the group. Returned only on $select.
/// Read-only." (graph/api/resources/group); set by group-assignlicense.
const SELECT_ONLY: &[&str] = &["assignedLicenses"];

/// Collections Graph answers with `[]` when the emulator has nothing in them.
const EMPTY_LISTS: &[&str] = &[
    "creationOptions",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "onPremisesProvisioningErrors",
];

/// The create and update body keys that are relationships, not properties:
/// the caller binds them.
pub(crate) const MEMBERS_BIND: &str = "members@odata.bind";
const OWNERS_BIND: &str = "owners@odata.bind";

fn canonical(name: &str) -> Option<&'static str> {
    DEFAULT_PROPS
        .iter()
        .chain(SELECT_ONLY)
        .find(|p| p.eq_ignore_ascii_case(name))
        .copied()
}

/// `$select`, validated against the group type.
pub(crate) fn selection(call: &Call) -> Result<Option<Vec<&'static str>>, GraphResp> {
    let Some(sel) = q(call, "$select") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for raw in sel.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = canonical(raw).ok_or_else(|| {
            GraphResp::error(
                400,
                "BadRequest",
                format!("Could not find a property named '{raw}' on type 'microsoft.graph.group'."),
            )
        })?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(Some(out))
}

fn date(d: chrono::DateTime<chrono::Utc>) -> Value {
    json!(d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The group's security identifier: Entra derives `S-1-12-1-…` from the
/// object id's four 32-bit words (group-post-groups, example 2).
fn security_identifier(id: &str) -> Value {
    let Ok(u) = uuid::Uuid::parse_str(id) else {
        return Value::Null;
    };
    let b = u.to_bytes_le();
    let words: Vec<String> = b
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    json!(format!("S-1-12-1-{}", words.join("-")))
}

pub(crate) fn get(g: &GroupRecord, p: &str) -> Value {
    match p {
        "id" => json!(g.id),
        "displayName" => json!(g.display_name),
        "description" => json!(g.description),
        "mailNickname" => json!(g.mail_nickname),
        "mail" => json!(g.mail),
        "mailEnabled" => json!(g.mail_enabled),
        "securityEnabled" => json!(g.security_enabled),
        "groupTypes" => json!(g.group_types),
        "visibility" => json!(g.visibility),
        "createdDateTime" | "renewedDateTime" => date(g.created_at),
        "deletedDateTime" => g.deleted_at.map_or(Value::Null, date),
        "proxyAddresses" => json!(proxy_addresses(g)),
        "securityIdentifier" => security_identifier(&g.id),
        "assignedLicenses" => super::licensing::group_licences(g),
        p if EMPTY_LISTS.contains(&p) => json!([]),
        _ => Value::Null,
    }
}

fn proxy_addresses(g: &GroupRecord) -> Vec<String> {
    g.mail.iter().map(|m| format!("SMTP:{m}")).collect()
}

pub(crate) fn project(g: &GroupRecord, props: &[&str]) -> Map<String, Value> {
    props
        .iter()
        .map(|p| ((*p).to_string(), get(g, p)))
        .collect()
}

pub(crate) fn filter_value(g: &GroupRecord, p: &str) -> FVal {
    match p {
        "mailEnabled" => FVal::Bool(g.mail_enabled),
        "securityEnabled" => FVal::Bool(g.security_enabled),
        "groupTypes" => FVal::List(g.group_types.clone()),
        "proxyAddresses" => FVal::List(proxy_addresses(g)),
        _ => FVal::Str(get(g, p).as_str().map(str::to_string)),
    }
}

pub(crate) fn to_public(g: &GroupRecord) -> EmulatedGroup {
    EmulatedGroup {
        id: g.id.clone(),
        display_name: g.display_name.clone(),
        description: g.description.clone(),
        mail_nickname: g.mail_nickname.clone(),
        mail: g.mail.clone(),
        mail_enabled: g.mail_enabled,
        security_enabled: g.security_enabled,
        group_types: g.group_types.clone(),
        members: g.members.clone(),
        deleted: g.deleted_at.is_some(),
        created_at: g.created_at,
        visible_at: g.visible_at_utc,
        created_via_graph: g.created_via_graph,
    }
}

pub(crate) fn invalid_value(prop: &str) -> GraphResp {
    GraphResp::error(
        400,
        "Request_BadRequest",
        format!("Invalid value specified for property '{prop}' of resource 'Group'."),
    )
}

fn required_missing(prop: &str) -> GraphResp {
    // The wording Graph uses for users (see user_props), for the four
    // properties group-post-groups marks "Required".
    GraphResp::error(
        400,
        "Request_BadRequest",
        format!("Property {prop} value is required but is empty or missing."),
    )
}

fn text(v: &Value, key: &str, max: usize, nullable: bool) -> Result<Option<String>, GraphResp> {
    match v {
        Value::String(s) if !s.is_empty() && s.chars().count() <= max => Ok(Some(s.clone())),
        Value::String(s) if s.is_empty() && nullable => Ok(None),
        Value::Null if nullable => Ok(None),
        _ => Err(invalid_value(key)),
    }
}

fn boolean(v: &Value, key: &str) -> Result<bool, GraphResp> {
    v.as_bool().ok_or_else(|| invalid_value(key))
}

/// One property of a create or update body, checked and set.
fn set_property(g: &mut GroupRecord, key: &str, v: &Value) -> Result<(), GraphResp> {
    match key {
        // "Maximum length: 256 characters" (group-post-groups); not nullable.
        "displayName" => g.display_name = text(v, key, 256, false)?.unwrap_or_default(),
        "description" => g.description = text(v, key, 1024, true)?,
        // "Maximum length is 64 characters ... ASCII ... except @ () \ [] " ; : <> , SPACE".
        "mailNickname" => {
            let s = text(v, key, 64, false)?.unwrap_or_default();
            validate::mail_nickname(&s).map_err(|_| invalid_value(key))?;
            g.mail_nickname = s;
        }
        "mailEnabled" => g.mail_enabled = boolean(v, key)?,
        "securityEnabled" => g.security_enabled = boolean(v, key)?,
        "groupTypes" => {
            let types: Option<Vec<String>> = match v {
                Value::Null => Some(Vec::new()),
                Value::Array(a) => a.iter().map(|t| t.as_str().map(str::to_string)).collect(),
                _ => None,
            };
            // Dynamic membership needs a membership rule, which is not modelled.
            match types {
                Some(t) if t.iter().all(|x| x.eq_ignore_ascii_case("Unified")) => g.group_types = t,
                _ => return Err(invalid_value(key)),
            }
        }
        "visibility" => match v {
            Value::Null => g.visibility = None,
            Value::String(s) if ["Public", "Private", "HiddenMembership"].contains(&s.as_str()) => {
                g.visibility = Some(s.clone())
            }
            _ => return Err(invalid_value(key)),
        },
        _ if READ_ONLY.contains(&key) => {
            return Err(GraphResp::error(
                400,
                "Request_BadRequest",
                format!("Property '{key}' is read-only and cannot be set."),
            ))
        }
        _ => return Err(super::errors::unknown_property(key)),
    }
    Ok(())
}

/// Applies a create or update body (its relationships left to the caller)
/// to a copy of `base`. Graph creates Microsoft 365 groups (`groupTypes`
/// `["Unified"]`, mail-enabled) and security groups (mail-disabled,
/// security-enabled); it does not write mail-enabled security or
/// distribution groups (group-post-groups, "You can create the following
/// types of groups").
pub(crate) fn apply(
    base: &GroupRecord,
    body: &Map<String, Value>,
    domain: &str,
    creating: bool,
) -> Result<GroupRecord, GraphResp> {
    let mut g = base.clone();
    for (k, v) in body {
        if k.starts_with("@odata.") || k == MEMBERS_BIND || k == OWNERS_BIND {
            continue;
        }
        set_property(&mut g, k, v)?;
    }
    // A group's kind is chosen at creation: an update neither turns a
    // security group into a Microsoft 365 group nor back, and
    // "HiddenMembership can be set only for Microsoft 365 groups when the
    // groups are created" (resources/group, visibility).
    if !creating
        && (g.is_unified() != base.is_unified()
            || (g.visibility != base.visibility
                && g.visibility.as_deref() == Some("HiddenMembership")))
    {
        return Err(GraphResp::error(
            400,
            "Request_BadRequest",
            "Updates to groupTypes or to a HiddenMembership visibility are not supported after the group is created.",
        ));
    }
    if creating && g.visibility.as_deref() == Some("HiddenMembership") && !g.is_unified() {
        return Err(invalid_value("visibility"));
    }
    if creating {
        for p in [
            "displayName",
            "mailEnabled",
            "mailNickname",
            "securityEnabled",
        ] {
            if body.get(p).is_none_or(Value::is_null) {
                return Err(required_missing(p));
            }
        }
    }
    let unified = g.is_unified();
    if g.mail_enabled && !unified {
        return Err(GraphResp::error(
            400,
            "Request_BadRequest",
            "The service does not currently support writes of mail-enabled groups. Please ensure that the mail-enablement property is unset or is set to false.",
        ));
    }
    if unified && !g.mail_enabled {
        return Err(invalid_value("mailEnabled"));
    }
    if !unified && !g.security_enabled {
        return Err(invalid_value("securityEnabled"));
    }
    // A Microsoft 365 group's address comes from its alias.
    g.mail = unified.then(|| format!("{}@{domain}", g.mail_nickname));
    Ok(g)
}

/// A Microsoft 365 group's alias is "unique for Microsoft 365 groups in the
/// organization" (group-post-groups), through its address, which no other
/// live object may hold; a security group's mailNickname, like any
/// group's displayName, need not be unique.
pub(crate) fn check_unique(
    candidate: &GroupRecord,
    groups: &[GroupRecord],
    users: &[UserRecord],
) -> Result<(), GraphResp> {
    let Some(mail) = &candidate.mail else {
        return Ok(());
    };
    let same = |m: &Option<String>| m.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(mail));
    let taken = groups
        .iter()
        .any(|o| o.id != candidate.id && o.deleted_at.is_none() && same(&o.mail))
        || users.iter().any(|u| !u.is_deleted() && same(&u.mail));
    if taken {
        let msg = "Another object with the same value for property proxyAddresses already exists.";
        return Err(
            GraphResp::error(400, "Request_BadRequest", msg).with_details(json!([
                { "code": "ObjectConflict", "message": msg, "target": "proxyAddresses" }
            ])),
        );
    }
    Ok(())
}
