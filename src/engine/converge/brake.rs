//! The engine's hook for the mass-deprovision brake (`resync::brake`):
//! asked before every suspension and deletion.
use super::{Converged, Job};
use crate::engine::brake::admit;
use crate::plan::Action;
use crate::store::resync::HELD_MARK;
use crate::store::{Outcome, StoreError};

impl Job<'_> {
    /// `Some` when the brake holds this suspension or deletion.
    pub(super) fn brake(&self, action: Action) -> Result<Option<Converged>, StoreError> {
        let removes = self.s.on_delete != crate::plan::OnDelete::Ignore;
        let Some(why) = admit(
            self.state(),
            &self.s.brake,
            removes,
            self.ctx.company,
            self.ctx.user,
            self.queued_at,
        )?
        else {
            return Ok(None);
        };
        let reason = format!("{HELD_MARK}: {why}");
        let mut r = self.ctx.record(action, Outcome::Skipped);
        r.detail = Some(reason.clone());
        self.ctx.audit(&r);
        Ok(Some(Converged::Held(reason)))
    }
}
