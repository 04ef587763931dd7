//! What the demo prints as the day goes: the actions each moment caused,
//! and the audit failures at the end.
use std::collections::BTreeMap;

use super::access::Names;
use crate::store::{AuditFilter, AuditRow, StateDb};

fn rows_after(state: &StateDb, seen: i64) -> anyhow::Result<Vec<AuditRow>> {
    Ok(state
        .audit(&AuditFilter::default())?
        .into_iter()
        .filter(|r| r.id > seen)
        .collect())
}

/// Prints the audit rows written since `seen` (a count per action when
/// `summary`), and returns the newest row id. `names` puts names on the
/// ids the audit gives (an existing group, a manager). Retries that were
/// put right are counted, not listed: each is followed by its outcome.
pub(super) fn print_actions(
    state: &StateDb,
    seen: i64,
    summary: bool,
    names: &Names,
) -> anyhow::Result<i64> {
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
            println!("   {action:<12} {outcome:<8} x{n}");
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
    let mut retries = 0;
    for r in rows.iter().filter(|r| r.plumm_user_id.is_some()) {
        if r.outcome == "retry" {
            retries += 1;
            continue;
        }
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
        let what = names.label(&r.action, what);
        let http = r
            .http_status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_default();
        println!(
            "   {:<12} {:<31} {:<8} {:<8} {}",
            r.action,
            r.email.as_deref().unwrap_or(""),
            r.outcome,
            http,
            what
        );
    }
    if retries > 0 {
        println!("   (and {retries} retries while Graph replicated the new objects, each followed by the outcome above)");
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

/// The failures `audit --failed` lists, but for the retries that were
/// put right (counted, not shown: each is followed by its success).
pub(super) fn print_failures(state: &StateDb) -> anyhow::Result<()> {
    let (retries, rows): (Vec<AuditRow>, Vec<AuditRow>) = state
        .audit(&AuditFilter {
            failed_only: true,
            ..AuditFilter::default()
        })?
        .into_iter()
        .partition(|r| r.outcome == "retry");
    println!("\n== Audit failures (entra-daemon audit --failed)");
    print!("{}", crate::status::audit::audit_table(&rows));
    println!(
        "   and {} retries, each followed by its success (Graph's replication lag, a batch \
         handed back); `audit --failed` lists them",
        retries.len()
    );
    Ok(())
}
