//! What a person's start and leave dates mean now ([`crate::plan::lifecycle`]),
//! and the scheduled changes they leave in the state database.
use super::{Converged, Job};
use crate::mapping::dates::{person_dates, unreadable_date};
use crate::plan::lifecycle::{timing, Timing};
use crate::plan::Action;
use crate::store::StoreError;

impl Job<'_> {
    pub(super) fn timing(&self) -> Timing {
        let (start, end) = person_dates(self.user, &self.s.mapping);
        timing(&self.s.lifecycle, start, end, self.now)
    }

    /// Records what the dates make due later (replacing what was), and
    /// `Some` when the account is not to be created yet: audited as a
    /// skip naming the date, so the person's history says why.
    pub(super) fn schedule(&self, linked: bool) -> Result<Option<Converged>, StoreError> {
        // A date the lifecycle settings cannot read holds nothing back
        // silently: the person is parked, naming the column.
        let l = &self.s.lifecycle;
        if !l.prehire_lead.is_zero() || l.suspend_after_leave {
            if let Some(why) = unreadable_date(self.user, &self.s.mapping) {
                let reason = format!("user {} ({}): {why}", self.user.id, self.user.email);
                return self.park(Action::Validate, None, reason).map(Some);
            }
        }
        let t = self.timing();
        self.state()
            .set_schedule(self.ctx.user, self.ctx.company, &t.scheduled)?;
        if linked || !t.hold_create {
            return Ok(None);
        }
        let why = t.why.unwrap_or_default();
        Ok(Some(self.skipped(&format!("not created yet: {why}"))))
    }
}
