//! One person's managed access: the groups the daemon made them a member
//! of, the additions still on their way, and the licences Entra could not
//! assign them. `entra-daemon status --user`
//! and the admin API both read it from here.
use serde::Serialize;

use crate::domain::{CompanyId, LicenceError, PlummUserId};
use crate::store::licences::licence_source;
use crate::store::{StateDb, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonGroups {
    pub user: i64,
    pub company: i64,
    pub tenant: String,
    pub entra_id: String,
    pub groups: Vec<PersonGroup>,
    /// Licences Entra could not assign to them, as the last resync listed
    /// them (Entra's to resolve).
    pub licence_errors: Vec<PersonLicenceError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonLicenceError {
    pub sku_id: String,
    /// The group the licence comes from; `None` when assigned directly.
    pub group_id: Option<String>,
    /// The managed group's name (`None` for a group a rule names by id).
    pub group_name: Option<String>,
    /// `Error` or `ActiveWithError`.
    pub state: String,
    /// `CountViolation`, `MutuallyExclusiveViolation`, ...
    pub error: String,
    /// What an admin can do about it.
    pub advice: &'static str,
    /// Entra's `lastUpdatedDateTime`.
    pub entra_updated_at: Option<String>,
    /// When a resync first saw it.
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonGroup {
    pub group_id: String,
    /// The managed group's name; `None` for a group a rule names by id.
    pub name: Option<String>,
    /// `member` (Entra confirmed it), `queued` (waiting for its batch) or
    /// `adding` (handed to the person's own worker).
    pub state: &'static str,
    /// When the membership was made, or the addition queued.
    pub since: String,
}

/// The person's managed groups, or `None` when they have no linked Entra
/// account (in `company`, when given: a company only sees its own people).
pub fn person(
    state: &StateDb,
    company: Option<CompanyId>,
    user: PlummUserId,
) -> Result<Option<PersonGroups>, StoreError> {
    let link = state.link(user)?;
    let Some(link) = link.filter(|l| company.is_none_or(|c| c == l.company)) else {
        return Ok(None);
    };
    let mut groups: Vec<PersonGroup> = state
        .memberships_since(user, &link.tenant, &link.entra_id)?
        .into_iter()
        .map(|(m, since)| PersonGroup {
            group_id: m.group_id,
            name: m.group_name,
            state: "member",
            since,
        })
        .collect();
    for q in state.queued_memberships(user, &link.tenant, &link.entra_id)? {
        groups.push(PersonGroup {
            group_id: q.group_id,
            name: q.group_name,
            state: if q.direct { "adding" } else { "queued" },
            since: q.queued_at,
        });
    }
    let licence_errors = state
        .licence_errors(user)?
        .into_iter()
        .map(|r| PersonLicenceError {
            advice: LicenceError::advice(&r.error),
            sku_id: r.sku_id,
            group_id: r.group_id,
            group_name: r.group_name,
            state: r.state,
            error: r.error,
            entra_updated_at: r.entra_updated_at,
            since: r.since,
        })
        .collect();
    Ok(Some(PersonGroups {
        user: user.0,
        company: link.company.0,
        tenant: link.tenant.as_str().to_string(),
        entra_id: link.entra_id.0,
        groups,
        licence_errors,
    }))
}

/// One line per group.
pub fn text(p: &PersonGroups) -> String {
    let mut out = format!(
        "user {} (company {}, Entra {}): {} managed groups{}\n",
        p.user,
        p.company,
        p.entra_id,
        p.groups.len(),
        match p.licence_errors.len() {
            0 => String::new(),
            1 => ", 1 licence error in Entra".into(),
            n => format!(", {n} licence errors in Entra"),
        }
    );
    for g in &p.groups {
        out.push_str(&format!(
            "  {:<7} {}  since {}\n",
            g.state,
            crate::engine::membership_batch::group_label(g.name.as_deref(), &g.group_id),
            g.since
        ));
    }
    for e in &p.licence_errors {
        out.push_str(&format!(
            "  licence error {}: SKU {} {} ({} since {}): {}\n",
            e.error,
            e.sku_id,
            licence_source(e.group_id.as_deref(), e.group_name.as_deref()),
            e.state,
            e.since,
            e.advice
        ));
    }
    out
}
