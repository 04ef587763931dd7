//! Creates whose outcome is unknown (the answer was lost, or the daemon
//! died with the request in flight): before any create or removal decision
//! for the person, the identifiers each one carried are looked up.
use super::lookup::Found;
use super::{age, Converged, Job};
use crate::engine::UserCtx;
use crate::plan::Action;
use crate::store::{Intent, IntentOutcome, Link, Outcome, Parked, StoreError};

impl Job<'_> {
    /// Settles the person's open create intents, in any tenant. `Some` ends
    /// the job: an account made by one of them is not visible yet (it is
    /// looked for again later), or it needs a person.
    ///
    /// `upsert`: the UPN and mail the upsert is about to use. An intent in
    /// this tenant with the same UPN or mail needs no lookup here: the
    /// upsert's own lookup finds that account, and Graph refuses a second
    /// create with the same UPN (uniqueness is immediate, visibility is not).
    pub(super) async fn settle_intents(
        &self,
        upsert: Option<(&str, &str)>,
    ) -> Result<Option<Converged>, StoreError> {
        for intent in self.state().open_intents(self.ctx.user)? {
            let same = |(upn, mail): (&str, &str)| {
                intent.upn.eq_ignore_ascii_case(upn) || intent.mail.eq_ignore_ascii_case(mail)
            };
            if intent.tenant == self.ctx.tenant && upsert.is_some_and(same) {
                continue;
            }
            let connected = self
                .state()
                .connection(intent.company)?
                .is_some_and(|c| c.tenant == intent.tenant);
            if !connected {
                // Disconnected: nothing in that tenant is touched; the
                // intent stays open for a reconnect.
                continue;
            }
            let ctx = UserCtx {
                company: intent.company,
                tenant: intent.tenant.clone(),
                user: self.ctx.user,
                email: intent.mail.clone(),
                priority: self.ctx.priority,
                state: self.ctx.state,
            };
            let job = Job { ctx: &ctx, ..*self };
            if let Some(c) = job.settle_one(&intent).await? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    async fn settle_one(&self, intent: &Intent) -> Result<Option<Converged>, StoreError> {
        match self.lookup(&intent.upn, &intent.mail).await? {
            Err(c) => Ok(Some(c)),
            Ok(Some(found)) => self.adopt_intended(found, intent),
            Ok(None) if age(&intent.created_at) < self.s.replication_timeout => {
                let mut r = self.ctx.record(Action::Lookup, Outcome::Retry);
                r.detail = Some(format!(
                    "a create sent at {} as {} got no answer and Entra shows no such user yet \
                     (replication can take up to [sync] replication_timeout); looking again later",
                    intent.created_at, intent.upn
                ));
                self.ctx.audit(&r);
                Ok(Some(Converged::Deferred(
                    "an earlier create's outcome is not known yet".into(),
                )))
            }
            Ok(None) => {
                self.state()
                    .settle_intent(intent.id, IntentOutcome::Absent)?;
                let mut r = self.ctx.record(Action::Lookup, Outcome::Ok);
                r.detail = Some(format!(
                    "a create sent at {} as {} got no answer, and no Entra user has those \
                     identifiers after [sync] replication_timeout: it did not happen",
                    intent.created_at, intent.upn
                ));
                self.ctx.audit(&r);
                Ok(None)
            }
        }
    }

    /// The account a create made although its answer never arrived: link
    /// it as created by us; the caller then converges it (rename, suspend,
    /// delete) as Plumm says now.
    fn adopt_intended(
        &self,
        found: Found,
        intent: &Intent,
    ) -> Result<Option<Converged>, StoreError> {
        let holder = self.state().linked_user(&self.ctx.tenant, &found.id)?;
        let mine = self.state().link(self.ctx.user)?;
        if mine
            .as_ref()
            .is_some_and(|l| l.entra_id == found.id && l.tenant == intent.tenant)
        {
            // Linked meanwhile (a resync, or the create path found it).
            self.state()
                .settle_intent(intent.id, IntentOutcome::Linked)?;
            return Ok(None);
        }
        if holder.is_some_and(|u| u != self.ctx.user) || mine.is_some() {
            let reason = format!(
                "Entra user {} ({}) was made by a create this daemon sent at {} whose answer \
                 was lost, but Plumm user {} is already linked to another Entra account: two \
                 accounts exist for one person. Delete the one that should not exist in Entra",
                found.id, intent.upn, intent.created_at, self.ctx.user
            );
            let mut r = self.ctx.record(Action::Link, Outcome::Parked);
            r.detail = Some(reason.clone());
            self.ctx.audit(&r);
            self.state().park(&Parked {
                user: self.ctx.user,
                company: self.ctx.company,
                email: intent.mail.clone(),
                reason: reason.clone(),
                parked_at: crate::store::now_text(),
            })?;
            return Ok(Some(Converged::Parked(reason)));
        }
        let link = Link {
            user: self.ctx.user,
            company: intent.company,
            tenant: intent.tenant.clone(),
            entra_id: found.id.clone(),
            pushed: found.props,
            upn_fallback: !intent.upn.eq_ignore_ascii_case(&intent.mail),
            created_by_us: true,
            // Its age is the create's: a 404 soon after is replication lag.
            linked_at: intent.created_at.clone(),
            verify_first: false,
            revoke_owed: false,
        };
        let mut r = self.ctx.record(Action::Link, Outcome::Ok);
        r.detail = Some(format!(
            "found Entra user {} that a create sent at {} made (its answer never arrived); \
             linked it (matched by {})",
            found.id, intent.created_at, found.matched_by
        ));
        self.state().save_created_link(&link, &r)?;
        Ok(None)
    }
}
