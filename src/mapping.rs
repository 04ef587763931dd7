//! Plumm user -> the Entra user it should be. Pure: no I/O, no clock.
//!
//! The identity properties (userPrincipalName, mail, mailNickname,
//! accountEnabled) follow from the email and status; the profile properties
//! come from `[mapping]` templates over Plumm's columns.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{Email, Phone, PlummStatus, PlummUser};

pub mod dates;
pub mod groups;
mod identity;
pub mod manager;

use identity::{mail_nickname, principal_name};

/// Writable string properties of Graph's user resource that a template may
/// fill, with the longest value Graph accepts for each
/// (learn.microsoft.com/graph/api/resources/user, property table).
const PROFILE_PROPERTIES: &[(&str, usize)] = &[
    ("displayName", 256),
    ("givenName", 64),
    ("surname", 64),
    ("jobTitle", 128),
    ("department", 64),
    ("officeLocation", 128),
    ("usageLocation", 2),
    ("employeeId", 16),
    ("employeeType", 64),
    ("companyName", 64),
    ("city", 128),
    ("state", 128),
    ("country", 128),
    ("postalCode", 40),
    ("streetAddress", 1024),
    ("mobilePhone", 64),
    // A one-element string collection on the wire ("only one number can be
    // set", user-update); a template fills that one element.
    ("businessPhones", 64),
    // Dates, normalised to Graph's UTC form (mapping/dates.rs).
    ("employeeHireDate", 20),
    ("employeeLeaveDateTime", 20),
];

/// Properties the daemon derives itself; mapping them would fight the engine.
const DERIVED_PROPERTIES: &[&str] = &[
    "userPrincipalName",
    "mail",
    "mailNickname",
    "accountEnabled",
    "passwordProfile",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("'{0}' is not a Graph user property this daemon can write; use one of: {1}")]
    UnknownProperty(String, String),
    #[error("'{0}' is derived from the email and status and cannot be mapped")]
    DerivedProperty(String),
    #[error("template for {property} uses '{{{column}}}', which Plumm's users table does not have; its columns: {columns}")]
    UnknownColumn {
        property: String,
        column: String,
        columns: String,
    },
    #[error("template for {property} has an unclosed '{{'")]
    Unclosed { property: String },
    #[error("template for {property} has '{{}}' without a column name; write '{{column}}' or '{{column|fallback}}'")]
    NoColumn { property: String },
    #[error("displayName must be mapped: Graph requires it on every user")]
    NoDisplayName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`, or `{name|fallback}`: the literal stands in when the column
    /// is NULL or blank.
    Column {
        name: String,
        fallback: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    segments: Vec<Segment>,
}

impl Template {
    fn parse(property: &str, raw: &str) -> Result<Self, MappingError> {
        let mut segments = Vec::new();
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or(MappingError::Unclosed {
                property: property.to_string(),
            })?;
            let inside = &rest[open + 1..open + close];
            let (name, fallback) = match inside.split_once('|') {
                Some((name, fallback)) => (name.trim(), Some(fallback.to_string())),
                None => (inside.trim(), None),
            };
            if name.is_empty() {
                return Err(MappingError::NoColumn {
                    property: property.to_string(),
                });
            }
            segments.push(Segment::Column {
                name: name.to_string(),
                fallback,
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Self { segments })
    }

    /// The Plumm columns the template reads.
    pub(crate) fn columns(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Column { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Renders the template; empty results (all columns NULL or blank) mean
    /// "no value", which Graph stores as null.
    fn render(&self, user: &PlummUser) -> Option<String> {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Column { name, fallback } => {
                    let value = user.column(name).unwrap_or_default();
                    match (value.trim(), fallback) {
                        ("", Some(f)) => out.push_str(f.trim()),
                        (v, _) => out.push_str(v),
                    }
                }
            }
        }
        // Collapse the double spaces a missing middle column leaves behind.
        let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
        (!collapsed.is_empty()).then_some(collapsed)
    }
}

/// Graph property -> template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    entries: Vec<(String, Template)>,
    /// `manager`: the Plumm id of the person's manager (see [`manager`]).
    /// Not a property: Graph sets it through a reference, never a PATCH.
    manager: Option<Template>,
    /// `[sync] time_zone`: how a bare date in Plumm is read.
    time_zone: chrono_tz::Tz,
}

impl Default for Mapping {
    fn default() -> Self {
        let table: BTreeMap<String, String> = [
            ("displayName", "{first_name} {last_name}"),
            ("givenName", "{first_name}"),
            ("surname", "{last_name}"),
            ("jobTitle", "{role}"),
            ("department", "{department}"),
            ("officeLocation", "{location}"),
            ("usageLocation", "{country}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // The defaults are constants that parse; a failure is a programming error.
        Self::from_table(&table).unwrap_or(Self {
            entries: Vec::new(),
            manager: None,
            time_zone: chrono_tz::Tz::UTC,
        })
    }
}

impl Mapping {
    /// A `[mapping]` table replaces the defaults whole, so an operator can
    /// stop managing a property by leaving it out.
    pub fn from_table(table: &BTreeMap<String, String>) -> Result<Self, MappingError> {
        let (mut entries, mut manager) = (Vec::new(), None);
        for (property, raw) in table {
            if property == manager::MANAGER {
                manager = Some(Template::parse(property, raw)?);
                continue;
            }
            if DERIVED_PROPERTIES.contains(&property.as_str()) {
                return Err(MappingError::DerivedProperty(property.clone()));
            }
            if max_len(property).is_none() {
                let known: Vec<&str> = PROFILE_PROPERTIES.iter().map(|(p, _)| *p).collect();
                return Err(MappingError::UnknownProperty(
                    property.clone(),
                    known.join(", "),
                ));
            }
            entries.push((property.clone(), Template::parse(property, raw)?));
        }
        if !entries.iter().any(|(p, _)| p == "displayName") {
            return Err(MappingError::NoDisplayName);
        }
        Ok(Self {
            entries,
            manager,
            time_zone: chrono_tz::Tz::UTC,
        })
    }

    /// The mapping reading bare dates as local midnight in `tz`.
    pub fn with_time_zone(mut self, tz: chrono_tz::Tz) -> Self {
        self.time_zone = tz;
        self
    }

    /// The Plumm field an Entra property comes from, for a message that
    /// names the property: "role (Entra jobTitle)", "email" for the
    /// identity properties.
    pub fn field_for(&self, property: &str) -> String {
        let manager = self
            .manager
            .as_ref()
            .filter(|_| property == manager::MANAGER);
        match self.entries.iter().find(|(p, _)| p == property) {
            Some((_, template)) => source_field(template, property),
            None if manager.is_some() => manager
                .map(|t| source_field(t, property))
                .unwrap_or_default(),
            None if ["userPrincipalName", "mail", "mailNickname"].contains(&property) => {
                format!("email (Entra {property})")
            }
            None if property == "accountEnabled" => "status (Entra accountEnabled)".into(),
            None => format!("Entra {property}"),
        }
    }

    /// Refuses a template over a column Plumm's table does not have
    /// (`columns`, as discovered at start or reload), listing those it has:
    /// Plumm's table is the deployment's, so only it can say what exists.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), MappingError> {
        let manager = self.manager.iter().map(|t| (manager::MANAGER, t));
        let entries = self.entries.iter().map(|(p, t)| (p.as_str(), t));
        for (property, template) in entries.chain(manager) {
            for s in &template.segments {
                if let Segment::Column { name, .. } = s {
                    if !columns.iter().any(|c| c == name) {
                        return Err(MappingError::UnknownColumn {
                            property: property.to_string(),
                            column: name.clone(),
                            columns: columns.join(", "),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    pub fn properties(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(p, _)| p.as_str())
    }
}

fn max_len(property: &str) -> Option<usize> {
    PROFILE_PROPERTIES
        .iter()
        .find(|(p, _)| *p == property)
        .map(|(_, n)| *n)
}

/// The Entra user a Plumm user should be. Also what a link remembers as
/// "last pushed", so a later change PATCHes only what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub user_principal_name: String,
    pub mail: String,
    pub mail_nickname: String,
    pub account_enabled: bool,
    /// Mapped profile properties; `None` is an explicit "no value".
    pub profile: BTreeMap<String, Option<String>>,
}

/// One reason a Plumm user cannot become an Entra user: the field, the
/// value, and what the admin should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUser(pub Vec<FieldProblem>);

impl fmt::Display for InvalidUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{} '{}' {}", p.field, p.value, p.reason))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// How the UPN is built: from the email's own domain, or (after the tenant
/// refused that domain as unverified) from `[sync] upn_domain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpnSource<'a> {
    #[default]
    EmailDomain,
    Fallback(&'a str),
}

pub fn desired_user(
    user: &PlummUser,
    mapping: &Mapping,
    upn: UpnSource<'_>,
) -> Result<DesiredUser, InvalidUser> {
    let mut problems = Vec::new();
    let email = match Email::parse(&user.email) {
        Ok(e) => Some(e),
        Err(e) => {
            problems.push(FieldProblem {
                field: "email".into(),
                value: printable(&user.email),
                reason: format!("{e}; correct the email in Plumm"),
            });
            None
        }
    };
    let profile = mapping
        .entries
        .iter()
        .map(|(property, template)| {
            let value = profile_value(user, property, template, mapping.time_zone, &mut problems);
            (property.clone(), value)
        })
        .collect();
    let Some(email) = email else {
        return Err(InvalidUser(problems));
    };
    let user_principal_name = match principal_name(&email, upn) {
        Ok(u) => u,
        Err(reason) => {
            problems.push(FieldProblem {
                field: "email".into(),
                value: email.to_string(),
                reason,
            });
            String::new()
        }
    };
    if !problems.is_empty() {
        return Err(InvalidUser(problems));
    }
    Ok(DesiredUser {
        user_principal_name,
        mail: email.to_string(),
        mail_nickname: mail_nickname(&email, user.id.0),
        account_enabled: user.status == PlummStatus::Active,
        profile,
    })
}

/// One mapped property's value; a value Entra would refuse adds a problem
/// naming the Plumm field, and is `None`.
fn profile_value(
    user: &PlummUser,
    property: &str,
    template: &Template,
    tz: chrono_tz::Tz,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    let mut refuse = |value: &str, reason: String| {
        problems.push(FieldProblem {
            field: source_field(template, property),
            value: printable(value),
            reason,
        });
        None
    };
    let max = max_len(property).unwrap_or(usize::MAX);
    match (property, template.render(user)) {
        ("usageLocation", Some(v)) => match crate::domain::country_code(&v) {
            Ok(code) => Some(code),
            Err(reason) => refuse(&v, reason),
        },
        (p, Some(v)) if dates::DATE_PROPERTIES.contains(&p) => match dates::instant(&v, tz) {
            Ok(t) => Some(dates::graph_text(t)),
            Err(reason) => refuse(&v, reason),
        },
        ("mobilePhone" | "businessPhones", Some(v))
            if v.chars().count() <= max && !v.chars().any(char::is_control) =>
        {
            match Phone::parse(&v) {
                Ok(p) => Some(p.as_str().to_string()),
                Err(e) => refuse(&v, format!("{e}; correct the phone number in Plumm")),
            }
        }
        (_, Some(v)) => match v.chars().find(|c| c.is_control()) {
            Some(c) => refuse(
                &v,
                format!(
                    "contains the control character U+{:04X}, which has no place in Entra's \
                     {property}; remove it in Plumm",
                    c as u32
                ),
            ),
            None if v.chars().count() > max => refuse(
                &v,
                format!("is longer than the {max} characters Entra allows for {property}; shorten it in Plumm"),
            ),
            None => Some(v),
        },
        ("displayName", None) => refuse(
            "",
            "is empty, and Entra requires a displayName; fill in the name in Plumm".into(),
        ),
        (_, None) => None,
    }
}

/// A value as a problem quotes it: control characters escaped (an audit
/// row or a log line must not carry a NUL), at most 40 characters.
fn printable(v: &str) -> String {
    let mut out: String = v
        .chars()
        .take(40)
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect();
    if v.chars().count() > 40 {
        out.push_str("...");
    }
    out
}

/// The Plumm column a problem should be fixed in, for the admin's message.
fn source_field(template: &Template, property: &str) -> String {
    let columns: Vec<&str> = template
        .segments
        .iter()
        .filter_map(|s| match s {
            Segment::Column { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();
    if columns.is_empty() {
        format!("[mapping] {property}")
    } else {
        format!("{} (Entra {property})", columns.join("+"))
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
