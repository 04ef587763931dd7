//! Time-based changes from a person's start and leave dates: a pre-hire
//! created disabled `prehire_lead` ahead and enabled on the start date, a
//! leaver suspended on the leave date. Pure: the time is a parameter, so
//! what to do at any instant can be tested without waiting for it.
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// `[sync] prehire_lead` and `suspend_after_leave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifecycle {
    /// How far ahead of the start date the account is created (disabled);
    /// zero: off, a person is created when Plumm has them, as before.
    pub prehire_lead: Duration,
    /// Suspend on the leave date even while Plumm still says active.
    pub suspend_after_leave: bool,
}

/// What a scheduled change will do when it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheduled {
    /// Create the pre-hire's account (disabled).
    Create,
    /// Enable the account: the start date has come.
    Enable,
    /// Suspend the account: the leave date has come.
    Suspend,
}

impl Scheduled {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduled::Create => "create",
            Scheduled::Enable => "enable",
            Scheduled::Suspend => "suspend",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Scheduled::Create, Scheduled::Enable, Scheduled::Suspend]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Scheduled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scheduled change as `status` and the dry run show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduledChange {
    pub user: i64,
    pub kind: String,
    pub due_at: String,
}

/// What a person's dates mean at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timing {
    /// Too early to create the account: the start date is further ahead
    /// than the lead. An existing account is left as it is.
    pub hold_create: bool,
    /// The account must not be enabled now (before the start date, or
    /// after the leave date), whatever Plumm's status says.
    pub disabled: bool,
    /// The leave date has passed (`suspend_after_leave`): a suspension,
    /// for the groups too. A pre-hire is disabled but has not left.
    pub left: bool,
    /// Why it is held or disabled, for the audit row.
    pub why: Option<String>,
    /// What falls due later, and when.
    pub scheduled: Vec<(Scheduled, DateTime<Utc>)>,
}

/// The decision for a person starting at `start` and leaving at `end`
/// (either unknown: `None`), at `now`. Fail closed: the dates can only
/// hold back or disable an account, never enable one Plumm says is
/// inactive; enabling waits for the start date to have come.
pub fn timing(
    rules: &Lifecycle,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Timing {
    let mut t = Timing::default();
    let lead = chrono::Duration::from_std(rules.prehire_lead).unwrap_or(chrono::Duration::MAX);
    if let Some(start) = start.filter(|s| !rules.prehire_lead.is_zero() && *s > now) {
        let create_at = start
            .checked_sub_signed(lead)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if create_at > now {
            t.hold_create = true;
            t.why = Some(format!(
                "starts at {}: the account is created at {} ([sync] prehire_lead)",
                text(start),
                text(create_at)
            ));
            t.scheduled.push((Scheduled::Create, create_at));
        } else {
            t.why = Some(format!(
                "starts at {}: created disabled, enabled then ([sync] prehire_lead)",
                text(start)
            ));
        }
        t.disabled = true;
        t.scheduled.push((Scheduled::Enable, start));
    }
    if let Some(end) = end.filter(|_| rules.suspend_after_leave) {
        if end <= now {
            t.disabled = true;
            t.left = true;
            t.why = Some(format!(
                "left at {} ([sync] suspend_after_leave)",
                text(end)
            ));
            // No account to make, nor to enable later, for someone who
            // has already left.
            t.hold_create = true;
            t.scheduled.clear();
        } else {
            t.scheduled.push((Scheduled::Suspend, end));
        }
    }
    t
}

fn text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap()
    }

    fn rules(lead_days: u64, suspend: bool) -> Lifecycle {
        Lifecycle {
            prehire_lead: Duration::from_secs(lead_days * 86_400),
            suspend_after_leave: suspend,
        }
    }

    #[test]
    fn off_by_default_the_dates_change_nothing() {
        let t = timing(
            &Lifecycle::default(),
            Some(at(20, 0)),
            Some(at(2, 0)),
            at(1, 0),
        );
        assert_eq!(t, Timing::default());
    }

    #[test]
    fn beyond_the_lead_nothing_is_created_and_the_create_is_scheduled() {
        let t = timing(&rules(14, false), Some(at(20, 0)), None, at(1, 0));
        assert!(t.hold_create && t.disabled);
        assert_eq!(
            t.scheduled,
            vec![
                (Scheduled::Create, at(6, 0)),
                (Scheduled::Enable, at(20, 0))
            ]
        );
    }

    #[test]
    fn within_the_lead_created_disabled_and_enabled_on_the_start_date() {
        let t = timing(&rules(14, false), Some(at(10, 0)), None, at(1, 0));
        assert!(!t.hold_create && t.disabled);
        assert_eq!(t.scheduled, vec![(Scheduled::Enable, at(10, 0))]);
    }

    #[test]
    fn on_the_start_date_nothing_holds_the_account_back() {
        for now in [at(10, 0), at(10, 1)] {
            let t = timing(&rules(14, false), Some(at(10, 0)), None, now);
            assert_eq!(t, Timing::default(), "{now}");
        }
    }

    #[test]
    fn a_leave_date_to_come_is_a_scheduled_suspension_and_a_past_one_disables() {
        let t = timing(&rules(0, true), None, Some(at(5, 12)), at(1, 0));
        assert!(!t.disabled);
        assert_eq!(t.scheduled, vec![(Scheduled::Suspend, at(5, 12))]);
        let t = timing(&rules(0, true), None, Some(at(5, 12)), at(5, 12));
        assert!(t.disabled && t.scheduled.is_empty());
        // Without suspend_after_leave the leave date is only a property.
        assert_eq!(
            timing(&rules(0, false), None, Some(at(5, 12)), at(6, 0)),
            Timing::default()
        );
    }

    #[test]
    fn a_leaver_whose_leave_date_passed_is_never_created_nor_enabled_later() {
        let t = timing(&rules(14, true), Some(at(10, 0)), Some(at(3, 0)), at(4, 0));
        assert!(t.disabled && t.hold_create);
        assert!(t.scheduled.is_empty(), "{:?}", t.scheduled);
    }

    #[test]
    fn kinds_read_back_from_their_names() {
        for k in [Scheduled::Create, Scheduled::Enable, Scheduled::Suspend] {
            assert_eq!(Scheduled::parse(k.as_str()), Some(k));
        }
        assert_eq!(Scheduled::parse("later"), None);
    }
}
