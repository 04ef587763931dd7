//! Whether Entra equals Plumm after a campaign: read from Plumm's `users`
//! table, the daemon's links and the emulator's tenants, as an auditor would.
use std::collections::{HashMap, HashSet};

use crate::domain::PlummUserId;
use crate::tools::world::World;

/// What is wrong at the end of a campaign; all empty when Entra equals Plumm.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// People with no account, or linked to one the tenant lacks.
    pub lost: Vec<String>,
    /// Enabled accounts that no current, active Plumm person holds: a
    /// second account made for someone, or a leaver left enabled.
    pub duplicates: Vec<String>,
    /// People whose account differs from Plumm (enabled, job title, UPN).
    pub wrong: Vec<String>,
    /// People parked where none should be.
    pub parked: Vec<String>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }

    /// A one-line summary: counts, and the first few of each kind.
    pub fn summary(&self) -> String {
        let kinds = [
            ("lost", &self.lost),
            ("duplicates", &self.duplicates),
            ("wrong", &self.wrong),
            ("parked", &self.parked),
        ];
        let parts: Vec<String> = kinds
            .iter()
            .map(|(name, v)| match v.first() {
                None => format!("{name} 0"),
                Some(first) => format!("{name} {} (e.g. {first})", v.len()),
            })
            .collect();
        parts.join(", ")
    }
}

/// One Plumm person as the verdict reads them.
struct Person {
    id: i64,
    company: i64,
    email: String,
    role: Option<String>,
    active: bool,
}

fn people(world: &World) -> anyhow::Result<Vec<Person>> {
    let conn = rusqlite::Connection::open(&world.settings.plumm.database)?;
    let mut stmt = conn.prepare("SELECT id, company_id, email, role, status FROM users")?;
    let rows = stmt.query_map([], |r| {
        Ok(Person {
            id: r.get(0)?,
            company: r.get(1)?,
            email: r.get(2)?,
            role: r.get(3)?,
            active: r.get::<_, String>(4)? == "active",
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Compares every Plumm person of the `companies` (company id, tenant id)
/// with their linked account, and every enabled account of those tenants
/// with Plumm's active people. People in `skip` (expected to be parked) are
/// left out of both checks.
pub(super) fn check(
    world: &World,
    companies: &[(i64, String)],
    skip: &HashSet<i64>,
) -> anyhow::Result<Verdict> {
    let mut v = Verdict::default();
    let state = world.state()?;
    let tenant_of: HashMap<i64, &str> = companies.iter().map(|(c, t)| (*c, t.as_str())).collect();
    let accounts: HashMap<&str, Vec<_>> = companies
        .iter()
        .map(|(_, t)| (t.as_str(), world.control.users(t)))
        .collect();
    let mut held = HashSet::new();
    for p in people(world)?.into_iter().filter(|p| !skip.contains(&p.id)) {
        let Some(tenant) = tenant_of.get(&p.company) else {
            continue;
        };
        let who = format!("{} {}", p.id, p.email);
        let Some(link) = state.link(PlummUserId(p.id))? else {
            v.lost.push(format!("{who}: no link"));
            continue;
        };
        let found = accounts[tenant]
            .iter()
            .find(|u| u.id == link.entra_id.0 && !u.deleted);
        let Some(account) = found else {
            v.lost
                .push(format!("{who}: linked to {} which is gone", link.entra_id));
            continue;
        };
        if p.active {
            held.insert(account.id.clone());
        }
        if account.account_enabled != p.active
            || account.job_title != p.role
            || !account.user_principal_name.eq_ignore_ascii_case(&p.email)
        {
            v.wrong.push(format!(
                "{who}: Entra has {} enabled={} title={:?}",
                account.user_principal_name, account.account_enabled, account.job_title
            ));
        }
    }
    for list in accounts.values() {
        for u in list.iter().filter(|u| u.account_enabled && !u.deleted) {
            if u.created_via_graph && !held.contains(&u.id) {
                v.duplicates.push(u.user_principal_name.clone());
            }
        }
    }
    v.parked = state
        .parked(None)?
        .into_iter()
        .filter(|p| !skip.contains(&p.user.0))
        .map(|p| format!("{} {}: {}", p.user, p.email, p.reason))
        .collect();
    Ok(v)
}
