//! Applying a resync's plan: each line that needs a write becomes a bulk
//! pending change for the engine, after the link is brought up to what the
//! listing read (or adopted, or dropped for a user deleted in Entra).
use super::plan::{Item, Verdict};
use super::run::{Action, Planned, Resync};
use crate::domain::{CompanyId, EntraObjectId, PlummStatus, PlummUser, PlummUserId};
use crate::pacing::Priority;
use crate::store::state::Enqueue;
use crate::store::{
    now_text, AuditRecord, Link, Outcome, PendingKind, StoreError, TenantConnection,
};

impl Resync {
    /// Queues the plan's writes; returns how many changes were queued.
    pub(super) fn apply(
        &self,
        conn: &TenantConnection,
        planned: &Planned,
        held: bool,
    ) -> Result<u64, StoreError> {
        let mut queue = Vec::new();
        let mut queued = 0;
        for a in &planned.actions {
            let i = &a.item;
            if !i.verdict.writes() || (held && i.deprovisions()) {
                continue;
            }
            let Some(user) = i.user.map(PlummUserId) else {
                continue;
            };
            let Some(entry) = self.pending_change(conn, a, user)? else {
                continue;
            };
            queue.push(entry);
            queued += 1;
            if queue.len() >= 500 {
                self.state.enqueue(&queue, None)?;
                queue.clear();
            }
        }
        self.state.enqueue(&queue, None)?;
        Ok(queued)
    }

    /// The bulk change that carries out one plan line, or `None` when the
    /// real-time loop got there first (linked, relinked, already pending).
    fn pending_change(
        &self,
        conn: &TenantConnection,
        a: &Action,
        user: PlummUserId,
    ) -> Result<Option<Enqueue>, StoreError> {
        let (state, i) = (&self.state, &a.item);
        let mut entry = Enqueue {
            user,
            company: conn.company,
            kind: PendingKind::Upsert,
            snapshot: a.snapshot.clone(),
            priority: Priority::Bulk,
            absent: false,
        };
        let orphan = |e: &mut Enqueue| {
            if a.orphan {
                e.kind = PendingKind::Remove;
                e.snapshot = orphan_snapshot(user, conn.company, &i.email);
            }
        };
        if let Some(intent) = a.intent {
            // The engine finds the account by the intent's identifiers,
            // links it, and converges it (or deprovisions it).
            state.reopen_intent(intent)?;
            if state.has_pending(user)? {
                return Ok(None);
            }
            orphan(&mut entry);
            return Ok(Some(entry));
        }
        match i.verdict {
            Verdict::Create => {
                if state.link(user)?.is_some() {
                    return Ok(None); // created meanwhile by the real-time loop
                }
                entry.absent = true;
            }
            Verdict::Recreate => {
                if !self.forget_deleted(conn, i, user)? {
                    return Ok(None);
                }
                entry.absent = true;
            }
            Verdict::Link => {
                self.adopt(conn, a, user)?;
                if i.changes.is_empty() {
                    return Ok(None);
                }
            }
            _ => {
                if !self.refresh_link(a, user)? {
                    return Ok(None);
                }
                orphan(&mut entry);
            }
        }
        Ok(Some(entry))
    }

    /// The link to an Entra user deleted in Entra is dropped, so the worker
    /// creates the person again; false when it was relinked meanwhile.
    fn forget_deleted(
        &self,
        conn: &TenantConnection,
        i: &Item,
        user: PlummUserId,
    ) -> Result<bool, StoreError> {
        let Some(link) = self.state.link(user)? else {
            return Ok(false);
        };
        if Some(&link.entra_id.0) != i.entra_id.as_ref() {
            return Ok(false);
        }
        self.state.remove_link(user)?;
        let why = format!(
            "Entra user {} was deleted in Entra; creating it again (found by a resync)",
            link.entra_id
        );
        self.audit_user(conn, i, "link", why);
        Ok(true)
    }

    /// Update, suspend, reactivate, delete: the worker diffs against what
    /// Entra holds now, so the link's `pushed` becomes what the listing read.
    /// A user the engine is already working on keeps its link as the worker
    /// leaves it (false); the next resync sees what is left.
    fn refresh_link(&self, a: &Action, user: PlummUserId) -> Result<bool, StoreError> {
        if self.state.has_pending(user)? {
            return Ok(false);
        }
        let Some(mut link) = self.state.link(user)? else {
            return Ok(false);
        };
        if Some(&link.entra_id.0) != a.item.entra_id.as_ref() {
            return Ok(false);
        }
        if let Some(listed) = &a.listed {
            link.pushed = listed.clone();
            self.state.save_link(&link)?;
        }
        if let Some(manager) = &a.listed_manager {
            // What Entra holds, as if the daemon had set it: the worker
            // compares Plumm's manager with it and writes the difference.
            let manager = manager.clone().map(EntraObjectId);
            let tenant = link.tenant.clone();
            self.state
                .record_manager(user, &tenant, &link.entra_id, manager.as_ref())?;
        }
        Ok(true)
    }

    /// Links the listed Entra user to the Plumm user (unless either got
    /// linked meanwhile); true when it did.
    fn adopt(
        &self,
        conn: &TenantConnection,
        a: &Action,
        user: PlummUserId,
    ) -> Result<bool, StoreError> {
        let (Some(id), Some(listed)) = (a.item.entra_id.as_ref(), a.listed.as_ref()) else {
            return Ok(false);
        };
        let entra_id = EntraObjectId(id.clone());
        if self.state.link(user)?.is_some()
            || self.state.linked_user(&conn.tenant, &entra_id)?.is_some()
        {
            return Ok(false);
        }
        self.state.save_link(&Link {
            user,
            company: conn.company,
            tenant: conn.tenant.clone(),
            entra_id,
            pushed: listed.clone(),
            upn_fallback: false,
            created_by_us: false,
            linked_at: now_text(),
            verify_first: false,
            revoke_owed: false,
        })?;
        self.audit_user(
            conn,
            &a.item,
            "link",
            format!("linked to existing Entra user {id} (same email; found by a resync)"),
        );
        Ok(true)
    }

    fn audit_user(&self, conn: &TenantConnection, i: &Item, action: &str, detail: String) {
        let mut r = AuditRecord::new(action, Outcome::Ok);
        r.company = Some(conn.company);
        r.tenant = Some(conn.tenant.clone());
        r.user = i.user.map(PlummUserId);
        r.email = Some(i.email.clone());
        r.detail = Some(detail);
        if let Err(e) = self.state.append_audit(&r) {
            tracing::error!(company = %conn.company, "audit log write failed: {e}");
        }
    }
}

/// A deletion's snapshot for a Plumm user that is gone without one (a
/// restored backup): the engine's removal path needs only who it was.
fn orphan_snapshot(user: PlummUserId, company: CompanyId, email: &str) -> String {
    serde_json::to_string(&PlummUser {
        id: user,
        company_id: company,
        email: email.to_string(),
        first_name: String::new(),
        last_name: String::new(),
        role: None,
        department: None,
        location: None,
        country: None,
        status: PlummStatus::Inactive,
        updated_at: None,
        extra: Default::default(),
    })
    .unwrap_or_default()
}
