//! What a resync did (or, dry, would do): per company, the counts, then
//! every action with the fields that change; a table for people, JSON for
//! machines.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{Item, Verdict};
use crate::plan::lifecycle::ScheduledChange;

/// Why a resync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// SIGUSR1 to the daemon.
    Signal,
    /// `entra-daemon resync`.
    Cli,
    /// `[sync] reconcile_schedule`.
    Schedule,
    /// The daemon found its state database behind (or ahead of) Plumm's
    /// hand-over watermark at start: changes may have been missed.
    Handover,
    /// A reload changed the `[[groups]]` rules (or `on_suspend_groups`).
    Rules,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Cli => "cli",
            Trigger::Schedule => "schedule",
            Trigger::Handover => "handover",
            Trigger::Rules => "rules",
        }
    }
}

/// The mass-deprovision brake's part in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrakeNote {
    /// Suspensions and deletions not applied.
    pub held: u64,
    pub reason: String,
}

/// One company's resync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyReport {
    pub company: i64,
    pub tenant: String,
    pub trigger: String,
    pub dry_run: bool,
    /// "ok", "held" (the brake held deprovisions), "failed".
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub plumm_users: u64,
    pub entra_users: u64,
    /// Users per verdict (every verdict, zeros included).
    pub counts: BTreeMap<String, u64>,
    /// Changes handed to the engine (none in a dry run).
    pub queued: u64,
    /// Group memberships the rules give and Entra lacks, and the reverse
    /// (drift in managed groups; planned in a dry run).
    #[serde(default)]
    pub membership_adds: u64,
    #[serde(default)]
    pub membership_removals: u64,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brake: Option<BrakeNote>,
    /// Every line of the plan but "nothing".
    pub items: Vec<ItemOut>,
    /// The company's time-based changes still to come (`[sync]
    /// prehire_lead`, `suspend_after_leave`), soonest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<ScheduledChange>,
}

/// A plan line as reported (serialisable both ways for the daemon -> CLI trip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemOut {
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<i64>,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entra_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Held by the brake rather than applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOut {
    pub property: String,
    pub old: Value,
    pub new: Value,
}

impl ItemOut {
    pub fn from_item(i: &Item, held: bool) -> Self {
        Self {
            action: i.verdict.as_str().to_string(),
            user: i.user,
            email: i.email.clone(),
            entra_id: i.entra_id.clone(),
            changes: i
                .changes
                .iter()
                .map(|c| ChangeOut {
                    property: c.property.clone(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                })
                .collect(),
            note: i.note.clone(),
            held,
        }
    }
}

impl CompanyReport {
    pub fn new(company: i64, tenant: &str, trigger: Trigger, dry_run: bool) -> Self {
        Self {
            company,
            tenant: tenant.to_string(),
            trigger: trigger.as_str().to_string(),
            dry_run,
            outcome: "ok".into(),
            counts: Verdict::ALL
                .iter()
                .map(|v| (v.as_str().to_string(), 0))
                .collect(),
            ..Self::default()
        }
    }

    pub fn count(&mut self, v: Verdict) {
        *self.counts.entry(v.as_str().to_string()).or_default() += 1;
    }

    /// Takes back one count: a line planned again (manager drift turns
    /// "nothing" into "update").
    pub fn uncount(&mut self, v: Verdict) {
        if let Some(n) = self.counts.get_mut(v.as_str()) {
            *n = n.saturating_sub(1);
        }
    }

    pub fn counted(&self, v: Verdict) -> u64 {
        self.counts.get(v.as_str()).copied().unwrap_or(0)
    }

    /// The counts that are not zero, in plan order: "create 2, update 1".
    pub fn counts_text(&self) -> String {
        let parts: Vec<String> = Verdict::ALL
            .iter()
            .filter_map(|v| {
                let n = self.counted(*v);
                (n > 0).then(|| format!("{} {n}", v.as_str()))
            })
            .collect();
        if parts.is_empty() {
            "no users".into()
        } else {
            parts.join(", ")
        }
    }

    /// The audit row's detail: trigger, counts, queue, brake, outcome.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "trigger {}{}; {} Plumm users, {} Entra users listed; {}; {} changes queued",
            self.trigger,
            if self.dry_run { " (dry run)" } else { "" },
            self.plumm_users,
            self.entra_users,
            self.counts_text(),
            self.queued
        );
        if self.membership_adds + self.membership_removals > 0 {
            let _ = write!(
                s,
                "; group memberships: {} to add, {} to remove",
                self.membership_adds, self.membership_removals
            );
        }
        if let Some(b) = &self.brake {
            let _ = write!(s, "; brake held {}: {}", b.held, b.reason);
        }
        if let Some(e) = &self.error {
            let _ = write!(s, "; failed: {e}");
        }
        s
    }
}

/// The readable table: per company, the counts, then each action.
pub fn table(reports: &[CompanyReport]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("no connected company to resync\n");
    }
    for r in reports {
        let _ = writeln!(
            out,
            "company {} (tenant {}){}: {}",
            r.company,
            r.tenant,
            if r.dry_run {
                " DRY RUN, nothing changed"
            } else {
                ""
            },
            r.outcome
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "  error: {e}");
        }
        let _ = writeln!(
            out,
            "  {} Plumm users, {} Entra users; {}; {} changes queued; {} ms",
            r.plumm_users,
            r.entra_users,
            r.counts_text(),
            r.queued,
            r.duration_ms
        );
        if r.membership_adds + r.membership_removals > 0 {
            let _ = writeln!(
                out,
                "  group memberships: {} to add, {} to remove",
                r.membership_adds, r.membership_removals
            );
        }
        if let Some(b) = &r.brake {
            let _ = writeln!(out, "  BRAKE: {} held back. {}", b.held, b.reason);
        }
        for i in &r.items {
            let who = match i.user {
                Some(u) => format!("{} (user {u})", i.email),
                None => i.email.clone(),
            };
            let _ = writeln!(
                out,
                "  {:<10} {who}{}",
                i.action,
                if i.held { "  [held by the brake]" } else { "" }
            );
            for c in &i.changes {
                let _ = writeln!(out, "      {}: {} -> {}", c.property, c.old, c.new);
            }
            if let Some(n) = &i.note {
                let _ = writeln!(out, "      {n}");
            }
        }
        for c in &r.scheduled {
            let _ = writeln!(
                out,
                "  scheduled  {:<8} user {} at {}",
                c.kind, c.user, c.due_at
            );
        }
    }
    out
}
