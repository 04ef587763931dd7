//! The demo's verdict: Plumm next to Entra, person by person, for every
//! property the daemon writes, the manager, and the groups.
use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::configuration::Settings;
use crate::domain::{CompanyId, PlummStatus, PlummUser, TenantId};
use crate::emulator::{EmulatedGroup, EmulatedUser};
use crate::mapping::groups::{person_groups, GroupTarget};
use crate::mapping::{desired_user, UpnSource};
use crate::plan::{diff, props, Props};
use crate::tools::world::{Observer, World};

/// What Entra holds for every property the daemon may write.
fn entra_props(u: &EmulatedUser) -> Props {
    let s = |v: &Option<String>| v.clone().map(Value::from).unwrap_or(Value::Null);
    let mut props: Props = u
        .other_properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    props.extend([
        ("givenName".into(), s(&u.given_name)),
        ("surname".into(), s(&u.surname)),
        ("employeeId".into(), s(&u.employee_id)),
        ("mobilePhone".into(), s(&u.mobile_phone)),
        (
            "businessPhones".into(),
            Value::from(u.business_phones.clone()),
        ),
    ]);
    props.extend([
        (
            "userPrincipalName".into(),
            Value::from(u.user_principal_name.clone()),
        ),
        ("mail".into(), s(&u.mail)),
        ("mailNickname".into(), Value::from(u.mail_nickname.clone())),
        ("accountEnabled".into(), Value::Bool(u.account_enabled)),
        ("displayName".into(), s(&u.display_name)),
        ("jobTitle".into(), s(&u.job_title)),
        ("department".into(), s(&u.department)),
        ("officeLocation".into(), s(&u.office_location)),
        ("usageLocation".into(), s(&u.usage_location)),
    ]);
    props
}

/// One tenant as the table reads it.
struct Tenant<'a> {
    company: CompanyId,
    id: TenantId,
    users: Vec<EmulatedUser>,
    groups: Vec<EmulatedGroup>,
    /// The groups the daemon manages there (by id): the rules' existing
    /// groups and those it created or filled.
    managed: HashSet<String>,
    settings: &'a Settings,
    obs: &'a Observer,
    parked: &'a BTreeMap<i64, String>,
}

/// One Plumm user's lines of the tables.
struct Row {
    status: &'static str,
    /// The linked Entra account's state, manager and job title.
    state: &'static str,
    manager: String,
    title: String,
    result: String,
    plumm_groups: Vec<String>,
    entra_groups: Vec<String>,
    groups_result: String,
    /// The linked Entra account, when it exists.
    entra_id: Option<String>,
    ok: bool,
}

/// Prints Plumm next to Entra for every user, then each person's groups;
/// true when every valid user matches and only invalid ones are parked.
pub(super) fn final_table(
    world: &World,
    obs: &Observer,
    tenants: &[(CompanyId, &str)],
) -> anyhow::Result<bool> {
    let parked: BTreeMap<i64, String> = obs
        .state
        .parked(None)?
        .into_iter()
        .map(|p| (p.user.0, p.reason))
        .collect();
    let mut ok = true;
    let mut access_lines = Vec::new();
    println!("\n== Plumm vs Entra: every property the daemon writes, and the manager");
    println!(
        "   {:<7} {:<31} {:<8} {:<8} {:<18} {:<24} result",
        "company", "Plumm email", "status", "Entra", "Entra manager", "Entra jobTitle"
    );
    for (company, tenant) in tenants {
        let id = TenantId::parse(tenant)?;
        let mut managed: HashSet<String> = obs
            .state
            .tenant_groups(&id)?
            .into_iter()
            .map(|(g, _)| g.to_lowercase())
            .collect();
        managed.extend(world.settings.policy.groups.group_ids(*company));
        let t = Tenant {
            company: *company,
            id,
            users: world.control.users(tenant),
            groups: world.control.groups(tenant),
            managed,
            settings: &world.settings,
            obs,
            parked: &parked,
        };
        let mut matched: HashSet<String> = HashSet::new();
        for user in obs.plumm.company_users(*company)? {
            let row = t.row(&user)?;
            matched.extend(row.entra_id.clone());
            ok &= row.ok;
            println!(
                "   {:<7} {:<31} {:<8} {:<8} {:<18} {:<24} {}",
                company.0, user.email, row.status, row.state, row.manager, row.title, row.result
            );
            access_lines.push((company.0, user.email, row));
        }
        t.print_unmatched(&matched);
    }
    print_access(&access_lines);
    Ok(ok)
}

fn print_access(lines: &[(i64, String, Row)]) {
    println!("\n== Access: each person's groups in Plumm's terms (what the rules give) and in Entra's (its members)");
    println!(
        "   {:<7} {:<31} {:<40} {:<44} result",
        "company", "Plumm email", "Plumm: the rules give", "Entra: member of"
    );
    for (company, email, row) in lines {
        println!(
            "   {:<7} {:<31} {:<40} {:<44} {}",
            company,
            email,
            row.plumm_groups.join(", "),
            row.entra_groups.join(", "),
            row.groups_result
        );
    }
    println!("   (* a group the daemon does not manage: left as it is)");
}

fn enabled(e: &EmulatedUser) -> &'static str {
    if e.account_enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// The part of a user name before the '@', short enough for a column.
fn short(upn: &str) -> String {
    upn.split('@').next().unwrap_or(upn).to_string()
}

impl Tenant<'_> {
    fn user_named(&self, id: &str) -> Option<&EmulatedUser> {
        self.users
            .iter()
            .find(|e| e.id.eq_ignore_ascii_case(id) && !e.deleted)
    }

    /// Compares one Plumm user with the Entra account linked to it.
    fn row(&self, user: &PlummUser) -> anyhow::Result<Row> {
        let link = self.obs.state.link(user.id)?;
        let upn = match (
            &self.settings.policy.upn_domain,
            link.as_ref().is_some_and(|l| l.upn_fallback),
        ) {
            (Some(d), true) => UpnSource::Fallback(d),
            _ => UpnSource::EmailDomain,
        };
        let found = link.as_ref().and_then(|l| self.user_named(&l.entra_id.0));
        let parked = self.parked.get(&user.id.0);
        let (ok, result) = match (
            desired_user(user, &self.settings.policy.mapping, upn),
            found,
        ) {
            (Err(_), None) if parked.is_some() => (
                true,
                format!("parked: {}", parked.cloned().unwrap_or_default()),
            ),
            (Err(invalid), _) => (
                false,
                format!("MISMATCH: invalid ({invalid}) but not parked"),
            ),
            (Ok(_), None) => (false, "MISMATCH: not in Entra".into()),
            (Ok(d), Some(e)) => {
                // A pre-hire is disabled until the enable scheduled for
                // their start date ([sync] prehire_lead).
                let enable_at = self.scheduled_enable(user)?;
                let mut want = props(&d);
                if enable_at.is_some() {
                    want.insert("accountEnabled".into(), Value::Bool(false));
                }
                let delta = diff(&entra_props(e), &want);
                let mut problems: Vec<String> = delta.iter().map(|c| c.property.clone()).collect();
                problems.extend(self.manager_mismatch(user, e)?);
                match (problems.is_empty(), enable_at) {
                    (true, Some(at)) => (true, format!("in sync (pre-hire: enabled at {at})")),
                    (true, None) => (true, "in sync".into()),
                    (false, _) => (false, format!("MISMATCH: {}", problems.join(", "))),
                }
            }
        };
        let (plumm_groups, entra_groups, groups_result) = self.groups_of(user, found, parked);
        let ok = ok && !groups_result.starts_with("MISMATCH");
        Ok(Row {
            status: match user.status {
                PlummStatus::Active => "active",
                PlummStatus::Inactive => "inactive",
            },
            state: found.map_or("-", enabled),
            manager: found
                .and_then(|e| e.manager.as_deref())
                .and_then(|m| self.user_named(m))
                .map(|m| short(&m.user_principal_name))
                .unwrap_or_else(|| "-".into()),
            title: found.and_then(|e| e.job_title.clone()).unwrap_or_default(),
            result,
            plumm_groups,
            entra_groups,
            groups_result,
            entra_id: found.map(|e| e.id.clone()),
            ok,
        })
    }

    /// When the enable scheduled for a pre-hire is due, if one is.
    fn scheduled_enable(&self, user: &PlummUser) -> anyhow::Result<Option<String>> {
        let scheduled = self.obs.state.scheduled_for(user.company_id)?;
        Ok(scheduled
            .into_iter()
            .find(|c| c.user == user.id.0 && c.kind == "enable")
            .map(|c| c.due_at))
    }

    /// Why the account's manager is not the one Plumm names (through the
    /// manager's own link), if it is not.
    fn manager_mismatch(
        &self,
        user: &PlummUser,
        e: &EmulatedUser,
    ) -> anyhow::Result<Option<String>> {
        let mapping = &self.settings.policy.mapping;
        if !mapping.manages_manager() {
            return Ok(None);
        }
        let want = match mapping.manager_id(user) {
            Ok(Some(manager)) => match self.obs.state.link(manager)? {
                Some(l) => Some(l.entra_id.0.to_lowercase()),
                None => return Ok(Some(format!("manager (Plumm {manager} has no account)"))),
            },
            Ok(None) => None,
            // A manager Entra cannot be given is parked with its reason; the
            // account keeps the one it had.
            Err(_) => return Ok(None),
        };
        let have = e.manager.as_deref().map(str::to_lowercase);
        Ok((want != have).then(|| "manager".to_string()))
    }

    /// The person's groups by Plumm's rules and by Entra's members, and
    /// whether the managed ones agree.
    fn groups_of(
        &self,
        user: &PlummUser,
        found: Option<&EmulatedUser>,
        parked: Option<&String>,
    ) -> (Vec<String>, Vec<String>, String) {
        let policy = &self.settings.policy;
        let suspended = user.status == PlummStatus::Inactive;
        let mut plumm: Vec<String> =
            person_groups(user, &policy.groups, policy.on_suspend_groups, suspended)
                .into_iter()
                .map(|t| match t {
                    GroupTarget::Name(n) => n,
                    GroupTarget::Id(id) => self
                        .groups
                        .iter()
                        .find(|g| g.id.eq_ignore_ascii_case(&id))
                        .map_or(id, |g| g.display_name.clone()),
                })
                .collect();
        plumm.sort_by_key(|n| n.to_lowercase());
        let Some(e) = found else {
            let result = match parked {
                Some(_) => "parked: no account, no groups",
                None => "MISMATCH: no account",
            };
            return (plumm, vec!["-".into()], result.into());
        };
        let member_of = self
            .groups
            .iter()
            .filter(|g| !g.deleted && g.members.iter().any(|m| m.eq_ignore_ascii_case(&e.id)));
        let (mut managed, mut entra) = (Vec::new(), Vec::new());
        for g in member_of {
            if self.managed.contains(&g.id.to_lowercase()) {
                managed.push(g.display_name.clone());
                entra.push(g.display_name.clone());
            } else {
                entra.push(format!("{}*", g.display_name));
            }
        }
        managed.sort_by_key(|n| n.to_lowercase());
        entra.sort_by_key(|n| n.to_lowercase());
        let result = if managed == plumm {
            "in sync".to_string()
        } else {
            "MISMATCH".to_string()
        };
        if plumm.is_empty() {
            plumm.push("(none)".into());
        }
        if entra.is_empty() {
            entra.push("(none)".into());
        }
        (plumm, entra, result)
    }

    /// The tenant's accounts no Plumm user is linked to, and why each is there.
    fn print_unmatched(&self, matched: &HashSet<String>) {
        for e in self
            .users
            .iter()
            .filter(|e| !matched.contains(&e.id) && !e.deleted)
        {
            println!(
                "   {:<7} {:<31} {:<8} {:<8} {:<18} {:<24} not in Plumm: {}",
                self.company.0,
                e.user_principal_name,
                "-",
                enabled(e),
                "-",
                e.job_title.clone().unwrap_or_default(),
                if e.created_via_graph {
                    "left Plumm, kept per on_delete"
                } else {
                    "not managed by Plumm, untouched"
                }
            );
        }
        let deleted = self.users.iter().filter(|e| e.deleted).count();
        if deleted > 0 {
            println!(
                "   {:<7} ({deleted} in Entra's deleted items, restorable for 30 days; tenant {})",
                self.company.0,
                self.id.as_str()
            );
        }
    }
}
