//! The user resource's properties: projection, validation of writes and the
//! directory's uniqueness rules.

use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::filter::FVal;
use super::state::UserRecord;
use super::validate::{self, Invalid};

/// Returned when no `$select` is given:
/// https://learn.microsoft.com/graph/api/user-get#optional-query-parameters
pub(crate) const DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Plain string properties stored as they come (the emulator does not give
/// them meaning).
const OTHER_STRINGS: &[&str] = &[
    "city",
    "country",
    "companyName",
    "employeeType",
    "state",
    "streetAddress",
    "postalCode",
    "faxNumber",
];

const MODELLED: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "officeLocation",
    "usageLocation",
    "employeeId",
    "accountEnabled",
    "mailNickname",
    "mobilePhone",
    "businessPhones",
    "preferredLanguage",
    "otherMails",
    "proxyAddresses",
    "createdDateTime",
    "deletedDateTime",
    "passwordPolicies",
    "passwordProfile",
    "userType",
];

/// Edm.DateTimeOffset properties, returned only on `$select`
/// (https://learn.microsoft.com/graph/api/resources/user: employeeHireDate,
/// employeeLeaveDateTime); stored in UTC, as Graph answers them.
pub(crate) const DATES: &[&str] = &["employeeHireDate", "employeeLeaveDateTime"];

/// Licences, returned only on `$select` and read-only
/// (graph/api/resources/user: assignedLicenses, licenseAssignmentStates
/// "Returned only on $select. Read-only."); Entra computes them from the
/// groups' licences (see `licensing`).
pub(crate) const LICENCES: &[&str] = &["assignedLicenses", "licenseAssignmentStates"];

/// A write naming one is refused as Graph refuses `assignedLicenses`:
/// "Property 'assignedLicenses' is read-only and cannot be set."
/// (Request_BadRequest; msgraph-sdk-dotnet#189, microsoft-graph-docs#744).
const READ_ONLY: &[&str] = &[
    "id",
    "proxyAddresses",
    "createdDateTime",
    "deletedDateTime",
    "assignedLicenses",
    "licenseAssignmentStates",
];

/// Canonical name of a property, case-insensitively (for `$select`).
pub(crate) fn canonical(name: &str) -> Option<&'static str> {
    MODELLED
        .iter()
        .chain(OTHER_STRINGS)
        .chain(DATES)
        .chain(LICENCES)
        .find(|p| p.eq_ignore_ascii_case(name))
        .copied()
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

pub(crate) fn get(u: &UserRecord, p: &str) -> Value {
    match p {
        "id" => json!(u.id),
        "userPrincipalName" => json!(u.upn),
        "mail" => opt(&u.mail),
        "displayName" => opt(&u.display_name),
        "givenName" => opt(&u.given_name),
        "surname" => opt(&u.surname),
        "jobTitle" => opt(&u.job_title),
        "department" => opt(&u.department),
        "officeLocation" => opt(&u.office_location),
        "usageLocation" => opt(&u.usage_location),
        "employeeId" => opt(&u.employee_id),
        "accountEnabled" => json!(u.account_enabled),
        "mailNickname" => json!(u.mail_nickname),
        "mobilePhone" => opt(&u.mobile_phone),
        "businessPhones" => json!(u.business_phones),
        "preferredLanguage" => opt(&u.preferred_language),
        "otherMails" => json!(u.other_mails),
        "proxyAddresses" => json!(u.proxy_addresses()),
        "createdDateTime" => json!(u.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        "deletedDateTime" => json!(u
            .deleted_at
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())),
        "passwordPolicies" => opt(&u.password_policies),
        // Never readable through Graph.
        "passwordProfile" => Value::Null,
        "userType" => json!("Member"),
        "licenseAssignmentStates" => super::licensing::states(u),
        "assignedLicenses" => super::licensing::assigned(u),
        other => u.other.get(other).cloned().unwrap_or(Value::Null),
    }
}

pub(crate) fn project(u: &UserRecord, props: &[&str]) -> Map<String, Value> {
    props.iter().map(|p| (p.to_string(), get(u, p))).collect()
}

pub(crate) fn filter_value(u: &UserRecord, p: &str) -> FVal {
    match p {
        "accountEnabled" => FVal::Bool(u.account_enabled),
        "otherMails" => FVal::List(u.other_mails.clone()),
        "proxyAddresses" => FVal::List(u.proxy_addresses()),
        _ => match get(u, p) {
            Value::String(s) => FVal::Str(Some(s)),
            _ => FVal::Str(None),
        },
    }
}

pub(crate) fn invalid_value(prop: &str) -> GraphResp {
    GraphResp::error(
        400,
        "Request_BadRequest",
        format!("Invalid value specified for property '{prop}' of resource 'User'."),
    )
}

fn not_convertible(v: &Value, ty: &str) -> GraphResp {
    let lit = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    GraphResp::error(
        400,
        "BadRequest",
        format!("Cannot convert the literal '{lit}' to the expected type '{ty}'."),
    )
}

fn required_missing(prop: &str) -> GraphResp {
    // Wording reported by the Graph PowerShell maintainers for a create
    // without mailNickname (msgraph-sdk-powershell#230).
    GraphResp::error(
        400,
        "Request_BadRequest",
        format!("Property {prop} value is required but is empty or missing."),
    )
}

fn string_or_null(v: &Value, prop: &str, nullable: bool) -> Result<Option<String>, GraphResp> {
    match v {
        Value::String(s) if s.is_empty() && !nullable => Err(invalid_value(prop)),
        Value::String(s) => {
            if validate::max_len(prop).is_some_and(|m| s.chars().count() > m) {
                return Err(invalid_value(prop));
            }
            Ok(Some(s.clone()))
        }
        Value::Null if nullable => Ok(None),
        Value::Null => Err(invalid_value(prop)),
        other => Err(not_convertible(other, "Edm.String")),
    }
}

fn string_list(v: &Value, prop: &str) -> Result<Vec<String>, GraphResp> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(not_convertible(other, "Edm.String")),
            })
            .collect(),
        _ => Err(invalid_value(prop)),
    }
}

/// Applies a create or update body to a copy of `base`.
/// Rules: required properties of https://learn.microsoft.com/graph/api/user-post-users,
/// updatable properties of https://learn.microsoft.com/graph/api/user-update.
pub(crate) fn apply(
    base: &UserRecord,
    body: &Map<String, Value>,
    domains: &[String],
    creating: bool,
) -> Result<UserRecord, GraphResp> {
    let mut u = base.clone();
    let mut new_password: Option<String> = None;
    for (k, v) in body {
        let key = k.as_str();
        if key.starts_with("@odata.") {
            continue;
        }
        if READ_ONLY.contains(&key) {
            return Err(GraphResp::error(
                400,
                "Request_BadRequest",
                format!("Property '{key}' is read-only and cannot be set."),
            ));
        }
        if key == "passwordProfile" {
            new_password = password_profile(v, key, creating)?;
        } else {
            set_property(&mut u, key, v, domains)?;
        }
    }
    if creating {
        check_required(body)?;
    }
    if let Some(p) = new_password {
        set_password(&mut u, p)?;
    }
    Ok(u)
}

/// One property of the body other than `passwordProfile`, checked and set.
fn set_property(
    u: &mut UserRecord,
    key: &str,
    v: &Value,
    domains: &[String],
) -> Result<(), GraphResp> {
    match key {
        "accountEnabled" => match v {
            Value::Bool(b) => u.account_enabled = *b,
            Value::Null => return Err(invalid_value(key)),
            other => return Err(not_convertible(other, "Edm.Boolean")),
        },
        // displayName "cannot be cleared during updates" (user-update).
        "displayName" => u.display_name = string_or_null(v, key, false)?,
        "givenName" => u.given_name = string_or_null(v, key, true)?,
        "surname" => u.surname = string_or_null(v, key, true)?,
        "jobTitle" => u.job_title = string_or_null(v, key, true)?,
        "department" => u.department = string_or_null(v, key, true)?,
        "officeLocation" => u.office_location = string_or_null(v, key, true)?,
        "employeeId" => u.employee_id = string_or_null(v, key, true)?,
        "mobilePhone" => u.mobile_phone = string_or_null(v, key, true)?,
        "preferredLanguage" => u.preferred_language = string_or_null(v, key, true)?,
        "passwordPolicies" => u.password_policies = string_or_null(v, key, true)?,
        "usageLocation" => u.usage_location = Some(usage_location(v, key)?),
        "mail" => u.mail = mail(v, key)?,
        "userPrincipalName" => u.upn = upn(v, key, domains)?,
        "mailNickname" => u.mail_nickname = mail_nickname(v, key)?,
        "businessPhones" => u.business_phones = business_phones(v, key)?,
        "otherMails" => u.other_mails = other_mails(v, key)?,
        "userType" => match v {
            Value::String(s) if s == "Member" || s == "Guest" => {}
            _ => return Err(invalid_value(key)),
        },
        k if DATES.contains(&k) => {
            let d = date_time(v)?;
            u.other
                .insert(k.to_string(), d.map_or(Value::Null, Value::String));
        }
        k if OTHER_STRINGS.contains(&k) => {
            let s = string_or_null(v, key, true)?;
            match s {
                Some(s) => u.other.insert(k.to_string(), Value::String(s)),
                None => u.other.insert(k.to_string(), Value::Null),
            };
        }
        _ => return Err(super::errors::unknown_property(key)),
    }
    Ok(())
}

/// An ISO 8601 date and time with its offset ("2022-09-30T23:59:59Z"),
/// kept in UTC; anything else is refused the way OData refuses a literal
/// of the wrong type (https://learn.microsoft.com/graph/api/resources/user,
/// employeeHireDate: "The Timestamp type represents date and time
/// information using ISO 8601 format and is always in UTC").
fn date_time(v: &Value) -> Result<Option<String>, GraphResp> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| {
                let utc = d.with_timezone(&chrono::Utc);
                Some(utc.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            })
            .map_err(|_| not_convertible(v, "Edm.DateTimeOffset")),
        other => Err(not_convertible(other, "Edm.DateTimeOffset")),
    }
}

fn usage_location(v: &Value, key: &str) -> Result<String, GraphResp> {
    // "Not nullable" (user-update); ISO 3166 alpha-2.
    let s = string_or_null(v, key, false)?.unwrap_or_default();
    validate::usage_location(&s).map_err(|_| invalid_value(key))?;
    Ok(s)
}

fn mail(v: &Value, key: &str) -> Result<Option<String>, GraphResp> {
    let m = string_or_null(v, key, true)?;
    if let Some(m) = &m {
        validate::mail(m).map_err(|_| invalid_value(key))?;
    }
    Ok(m)
}

fn upn(v: &Value, key: &str, domains: &[String]) -> Result<String, GraphResp> {
    let s = string_or_null(v, key, false)?.unwrap_or_default();
    validate::upn(&s, domains).map_err(upn_error)?;
    Ok(s)
}

fn mail_nickname(v: &Value, key: &str) -> Result<String, GraphResp> {
    let s = string_or_null(v, key, false)?.unwrap_or_default();
    validate::mail_nickname(&s).map_err(|_| invalid_value(key))?;
    Ok(s)
}

fn business_phones(v: &Value, key: &str) -> Result<Vec<String>, GraphResp> {
    // "only one number can be set for this property" (user-update).
    let l = string_list(v, key)?;
    if l.len() > 1 {
        return Err(invalid_value(key));
    }
    Ok(l)
}

fn other_mails(v: &Value, key: &str) -> Result<Vec<String>, GraphResp> {
    let l = string_list(v, key)?;
    if l.iter().any(|m| validate::mail(m).is_err()) {
        return Err(invalid_value(key));
    }
    Ok(l)
}

/// The new password, if any; it is checked once the whole body has been
/// read, since `passwordPolicies` decides how strong it must be.
fn password_profile(v: &Value, key: &str, creating: bool) -> Result<Option<String>, GraphResp> {
    let Value::Object(pp) = v else {
        return Err(invalid_value(key));
    };
    let mut new_password = None;
    for (pk, pv) in pp {
        match (pk.as_str(), pv) {
            ("password", Value::String(p)) => new_password = Some(p.clone()),
            ("password", Value::Null) => {}
            ("forceChangePasswordNextSignIn", Value::Bool(_))
            | ("forceChangePasswordNextSignInWithMfa", Value::Bool(_)) => {}
            ("@odata.type", _) => {}
            _ => return Err(invalid_value(key)),
        }
    }
    if new_password.is_none() && creating {
        return Err(required_missing("passwordProfile.password"));
    }
    Ok(new_password)
}

fn check_required(body: &Map<String, Value>) -> Result<(), GraphResp> {
    for p in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
        "userPrincipalName",
    ] {
        let missing = match body.get(p) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if missing {
            return Err(required_missing(p));
        }
    }
    Ok(())
}

fn set_password(u: &mut UserRecord, p: String) -> Result<(), GraphResp> {
    let strong = !u
        .password_policies
        .as_deref()
        .is_some_and(|pp| pp.contains("DisableStrongPassword"));
    validate::password(&p, strong).map_err(|_| {
        GraphResp::error(
            400,
            "Request_BadRequest",
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        )
    })?;
    u.password_set_count += 1;
    u.last_password = Some(p);
    Ok(())
}

fn upn_error(e: Invalid) -> GraphResp {
    match e {
        Invalid::UnverifiedDomain => GraphResp::error(
            400,
            "Request_BadRequest",
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ),
        _ => GraphResp::error(400, "Request_BadRequest", "Property userPrincipalName is invalid."),
    }
}

fn conflict(prop: &str) -> GraphResp {
    let msg = format!("Another object with the same value for property {prop} already exists.");
    GraphResp::error(400, "Request_BadRequest", msg.clone()).with_details(json!([
        { "code": "ObjectConflict", "message": msg, "target": prop }
    ]))
}

/// userPrincipalName and proxyAddresses (filled from mail) are unique across
/// the directory's live objects, whether or not they are replicated yet
/// (https://learn.microsoft.com/graph/api/resources/user#mail-and-proxyaddresses;
/// error bodies from microsoft-graph-docs#1508 and microsoft-graph-docs-contrib#8421).
/// Soft-deleted users do not block: restoring one whose UPN was reused fails
/// instead (https://learn.microsoft.com/graph/api/directory-deleteditems-restore).
pub(crate) fn check_unique(candidate: &UserRecord, users: &[UserRecord]) -> Result<(), GraphResp> {
    let live = || {
        users
            .iter()
            .filter(|o| !o.is_deleted() && o.id != candidate.id)
    };
    if live().any(|o| same_caseless(&o.upn, &candidate.upn)) {
        return Err(conflict("userPrincipalName"));
    }
    if let Some(m) = &candidate.mail {
        if live().any(|o| o.mail.as_deref().is_some_and(|om| same_caseless(om, m))) {
            return Err(conflict("proxyAddresses"));
        }
    }
    Ok(())
}

/// Case-insensitive equality without allocating: every create compares
/// against every live user, and benchmarks create a hundred thousand.
fn same_caseless(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}
