//! One person's managed access: the groups the daemon made them a member
//! of, and the additions still on their way. `entra-daemon status --user`
//! and the admin API both read it from here.
use serde::Serialize;

use crate::domain::{CompanyId, PlummUserId};
use crate::store::{StateDb, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonGroups {
    pub user: i64,
    pub company: i64,
    pub tenant: String,
    pub entra_id: String,
    pub groups: Vec<PersonGroup>,
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
    Ok(Some(PersonGroups {
        user: user.0,
        company: link.company.0,
        tenant: link.tenant.as_str().to_string(),
        entra_id: link.entra_id.0,
        groups,
    }))
}

/// One line per group.
pub fn text(p: &PersonGroups) -> String {
    let mut out = format!(
        "user {} (company {}, Entra {}): {} managed groups\n",
        p.user,
        p.company,
        p.entra_id,
        p.groups.len()
    );
    for g in &p.groups {
        out.push_str(&format!(
            "  {:<7} {}  since {}\n",
            g.state,
            crate::engine::membership_batch::group_label(g.name.as_deref(), &g.group_id),
            g.since
        ));
    }
    out
}
