//! The mass-deprovision brake: an HR export gone wrong must not lock a
//! whole company out. When the suspensions and deletions pending for one
//! company reach both `max_deprovision_count` and `max_deprovision_percent`
//! of its linked users, none is applied until an admin releases them
//! (`entra-daemon resync --company ID --allow-mass-deprovision`). The burst
//! is counted before any of it is applied, so it is held whole.
use std::time::Duration;

use crate::domain::{CompanyId, PlummUserId};
use crate::store::{time_text, AuditRecord, Outcome, StateDb, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrakeSettings {
    pub max_count: u64,
    pub max_percent: u64,
    /// How far back deprovisions already applied count (real-time loop).
    pub window: Duration,
}

impl Default for BrakeSettings {
    fn default() -> Self {
        Self {
            max_count: 10,
            max_percent: 20,
            window: Duration::from_secs(600),
        }
    }
}

/// Pure: whether `count` deprovisions among `linked` users trip the brake.
/// Both thresholds must be reached: one offboarding in a five-person
/// company is 20 % but one person; ten in a ten-thousand-person company is
/// ten people but a rounding error.
pub fn trips(s: &BrakeSettings, count: u64, linked: u64) -> bool {
    count >= s.max_count && count.saturating_mul(100) >= s.max_percent.saturating_mul(linked)
}

/// Why a burst was held, in words for the audit log and `status`.
pub fn reason(s: &BrakeSettings, count: u64, linked: u64, source: &str) -> String {
    format!(
        "{count} suspensions/deletions ({source}) for {linked} linked users reach both \
         [sync] max_deprovision_count = {} and max_deprovision_percent = {}: none is applied; \
         check Plumm, then release with `entra-daemon resync --company ID --allow-mass-deprovision`",
        s.max_count, s.max_percent
    )
}

/// Holds the company's deprovisions and says so (once) in the audit log.
pub fn hold(
    state: &StateDb,
    s: &BrakeSettings,
    company: CompanyId,
    count: u64,
    linked: u64,
    source: &str,
) -> Result<String, StoreError> {
    hold_because(
        state,
        company,
        (count, linked),
        source,
        reason(s, count, linked, source),
    )
}

/// Holds the company's deprovisions for `why` (and says so once).
pub fn hold_because(
    state: &StateDb,
    company: CompanyId,
    (count, linked): (u64, u64),
    source: &str,
    why: String,
) -> Result<String, StoreError> {
    if state.hold_brake(company, count as i64, linked as i64, source, &why)? {
        let mut r = AuditRecord::new("brake", Outcome::Skipped);
        r.company = Some(company);
        r.tenant = state.connection(company)?.map(|c| c.tenant);
        r.detail = Some(format!("held: {why}"));
        state.append_audit(&r)?;
        tracing::warn!(company = %company, count, linked, "mass-deprovision brake held: {why}");
    }
    Ok(why)
}

/// Releases a company's brake (audited); returns how many held changes resume.
pub fn release(state: &StateDb, company: CompanyId, by: &str) -> Result<usize, StoreError> {
    let n = state.release_brake(company, by)?;
    let mut r = AuditRecord::new("brake", Outcome::Ok);
    r.company = Some(company);
    r.tenant = state.connection(company)?.map(|c| c.tenant);
    r.detail = Some(format!(
        "released by {by} (--allow-mass-deprovision): suspensions and deletions queued until now are applied; {n} held changes resume"
    ));
    state.append_audit(&r)?;
    tracing::info!(company = %company, resumed = n, "mass-deprovision brake released by {by}");
    Ok(n)
}

/// The engine's check before it suspends or deletes one user of `company`
/// (whose change was queued at `queued_at`): `Some(reason)` holds it.
/// Counts the company's backlog of deprovisions (this one included) plus
/// those let through in the last `window`.
pub fn admit(
    state: &StateDb,
    s: &BrakeSettings,
    removes_deprovision: bool,
    company: CompanyId,
    user: PlummUserId,
    queued_at: &str,
) -> Result<Option<String>, StoreError> {
    let brake = state.brake(company)?;
    if let Some(b) = brake.as_ref().filter(|b| b.is_held()) {
        return Ok(Some(b.reason.clone().unwrap_or_default()));
    }
    let now = chrono::Utc::now();
    let forget = time_text(now - chrono::Duration::days(2));
    let released = brake.and_then(|b| b.released_at);
    // An admin released everything queued until the release.
    if released.as_deref().is_some_and(|r| queued_at <= r) {
        state.record_deprovision(company, user, true, &forget)?;
        return Ok(None);
    }
    let window = chrono::Duration::from_std(s.window).unwrap_or(chrono::Duration::days(1));
    let since = time_text(now - window);
    let count = state.deprovision_backlog(company, released.as_deref(), removes_deprovision)?
        + state.deprovisions_since(company, &since)?;
    let linked = state.links_count(company)?;
    let (count, linked) = (count.max(0) as u64, linked.max(0) as u64);
    if trips(s, count, linked) {
        return hold(state, s, company, count, linked, "real-time").map(Some);
    }
    state.record_deprovision(company, user, false, &forget)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_offboarding_in_a_five_person_company_never_trips() {
        let s = BrakeSettings::default();
        assert!(!trips(&s, 1, 5));
        assert!(
            !trips(&s, 5, 5),
            "every one of five is still under 10 people"
        );
    }

    #[test]
    fn half_of_a_hundred_person_company_always_trips() {
        let s = BrakeSettings::default();
        assert!(trips(&s, 50, 100));
        assert!(trips(&s, 20, 100), "both thresholds reached exactly");
    }

    #[test]
    fn both_thresholds_must_be_reached() {
        let s = BrakeSettings::default();
        assert!(!trips(&s, 19, 100), "ten people but under 20 %");
        assert!(!trips(&s, 10, 10_000));
        assert!(!trips(&s, 9, 9), "100 % but under ten people");
        assert!(trips(&s, 10, 0), "nothing linked yet: the count decides");
    }
}
