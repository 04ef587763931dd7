//! What the demo prints: the actions each moment caused, the final
//! Plumm-vs-Entra table, and the audit failures.
use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::configuration::Settings;
use crate::domain::{CompanyId, PlummUser};
use crate::emulator::EmulatedUser;
use crate::mapping::{desired_user, UpnSource};
use crate::plan::{diff, props, Props};
use crate::store::{AuditFilter, AuditRow, StateDb};
use crate::tools::world::{Observer, World};

fn rows_after(state: &StateDb, seen: i64) -> anyhow::Result<Vec<AuditRow>> {
    Ok(state
        .audit(&AuditFilter::default())?
        .into_iter()
        .filter(|r| r.id > seen)
        .collect())
}

/// Prints the audit rows written since `seen` (a count per action when
/// `summary`), and returns the newest row id.
pub(super) fn print_actions(state: &StateDb, seen: i64, summary: bool) -> anyhow::Result<i64> {
    let rows = rows_after(state, seen)?;
    let last = rows.last().map(|r| r.id).unwrap_or(seen);
    if summary {
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.plumm_user_id.is_some()) {
            *counts
                .entry((r.action.clone(), r.outcome.clone()))
                .or_default() += 1;
        }
        for ((action, outcome), n) in counts {
            println!("   {action:<10} {outcome:<8} x{n}");
        }
        for r in rows.iter().filter(|r| r.action == "link") {
            println!(
                "   link: {} {}",
                r.email.as_deref().unwrap_or(""),
                r.detail.as_deref().unwrap_or("")
            );
        }
        return Ok(last);
    }
    for r in rows.iter().filter(|r| r.plumm_user_id.is_some()) {
        let what = match (&r.detail, &r.error_message) {
            (Some(d), _)
                if r.action == "update" || r.action == "reactivate" || r.action == "suspend" =>
            {
                changes(d)
            }
            (Some(d), _) => d.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => String::new(),
        };
        let http = r
            .http_status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_default();
        println!(
            "   {:<10} {:<32} {:<8} {:<8} {}",
            r.action,
            r.email.as_deref().unwrap_or(""),
            r.outcome,
            http,
            what
        );
    }
    Ok(last)
}

/// "jobTitle: 'Nurse' -> 'Clinical Lead'" from an update's change list.
fn changes(detail: &str) -> String {
    let Ok(list) = serde_json::from_str::<Vec<crate::plan::Change>>(detail) else {
        return detail.to_string();
    };
    list.iter()
        .map(|c| format!("{}: {} -> {}", c.property, c.old, c.new))
        .collect::<Vec<_>>()
        .join(", ")
}

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

/// Prints Plumm next to Entra for every user; true when every valid user
/// matches and only invalid ones are parked.
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
    println!("\n== Plumm vs Entra");
    println!(
        "   {:<8} {:<32} {:<9} {:<9} {:<26} result",
        "company", "Plumm email", "status", "Entra", "Entra jobTitle"
    );
    for (company, tenant) in tenants {
        let entra = world.control.users(tenant);
        let mut matched: HashSet<String> = HashSet::new();
        for user in obs.plumm.company_users(*company)? {
            let row = plumm_row(&world.settings, obs, &entra, &parked, &user)?;
            if let Some(id) = row.entra_id {
                matched.insert(id);
            }
            ok &= row.ok;
            println!(
                "   {:<8} {:<32} {:<9} {:<9} {:<26} {}",
                company.0, user.email, row.status, row.state, row.title, row.result
            );
        }
        print_unmatched(*company, &entra, &matched);
    }
    Ok(ok)
}

/// One Plumm user's line of the table.
struct Row {
    status: String,
    /// The linked Entra account's state and job title ("-" and "" without one).
    state: &'static str,
    title: String,
    result: String,
    /// The linked Entra account, when it exists.
    entra_id: Option<String>,
    ok: bool,
}

fn enabled(e: &EmulatedUser) -> &'static str {
    if e.account_enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// Compares one Plumm user with the Entra account linked to it.
fn plumm_row(
    settings: &Settings,
    obs: &Observer,
    entra: &[EmulatedUser],
    parked: &BTreeMap<i64, String>,
    user: &PlummUser,
) -> anyhow::Result<Row> {
    let link = obs.state.link(user.id)?;
    let upn = match (
        &settings.policy.upn_domain,
        link.as_ref().is_some_and(|l| l.upn_fallback),
    ) {
        (Some(d), true) => UpnSource::Fallback(d),
        _ => UpnSource::EmailDomain,
    };
    let found = link
        .as_ref()
        .and_then(|l| entra.iter().find(|e| e.id == l.entra_id.0 && !e.deleted));
    let (state, title) = match found {
        Some(e) => (enabled(e), e.job_title.clone().unwrap_or_default()),
        None => ("-", String::new()),
    };
    let (ok, result) = match (desired_user(user, &settings.policy.mapping, upn), found) {
        (Err(_), None) if parked.contains_key(&user.id.0) => {
            (true, format!("parked: {}", parked[&user.id.0]))
        }
        (Err(invalid), _) => (
            false,
            format!("MISMATCH: invalid ({invalid}) but not parked"),
        ),
        (Ok(_), None) => (false, "MISMATCH: not in Entra".into()),
        (Ok(d), Some(e)) => {
            let delta = diff(&entra_props(e), &props(&d));
            if delta.is_empty() {
                (true, "in sync".into())
            } else {
                let names: Vec<&str> = delta.iter().map(|c| c.property.as_str()).collect();
                (false, format!("MISMATCH: {}", names.join(", ")))
            }
        }
    };
    Ok(Row {
        status: format!("{:?}", user.status).to_lowercase(),
        state,
        title,
        result,
        entra_id: found.map(|e| e.id.clone()),
        ok,
    })
}

/// The tenant's accounts no Plumm user is linked to, and why each is there.
fn print_unmatched(company: CompanyId, entra: &[EmulatedUser], matched: &HashSet<String>) {
    for e in entra
        .iter()
        .filter(|e| !matched.contains(&e.id) && !e.deleted)
    {
        println!(
            "   {:<8} {:<32} {:<9} {:<9} {:<26} not in Plumm: {}",
            company.0,
            e.user_principal_name,
            "-",
            enabled(e),
            e.job_title.clone().unwrap_or_default(),
            if e.created_via_graph {
                "deleted in Plumm, kept and suspended"
            } else {
                "not managed by Plumm, untouched"
            }
        );
    }
}

pub(super) fn print_failures(state: &StateDb) -> anyhow::Result<()> {
    let rows = state.audit(&AuditFilter {
        failed_only: true,
        ..AuditFilter::default()
    })?;
    println!("\n== Audit failures (entra-daemon audit --failed)");
    print!("{}", crate::status::audit::audit_table(&rows));
    Ok(())
}
