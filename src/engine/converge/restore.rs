//! Rehire restore (`on_delete = "delete"`): before creating an account, the
//! daemon looks for the person's soft-deleted one (the accounts it deleted
//! first, by Plumm id or mail, then Entra's deleted users by mail and by
//! UPN) and restores it, so a rehire within Entra's 30 days gets their
//! mailbox, files and groups back instead of a second account. The
//! restored account is then converged like any linked one (properties,
//! reactivation).
//!
//! Only the person's own account comes back. One found by address that
//! Entra shows as someone else's (another employee id, another given
//! name: an address reused within the 30 days) is left deleted, with an
//! audit row, and the person gets a new account: a new hire never
//! inherits a former colleague's mailbox, files and groups.
//!
//! Fail closed: when the deleted users cannot be read, nothing is created
//! (a restorable account may exist). A restore is an intent before it is
//! sent, like a create: a lost answer or a crash is looked up afterwards,
//! never answered with a second account.
use serde_json::Value;

use super::upsert::Step;
use super::{age, Converged, Job};
use crate::domain::EntraObjectId;
use crate::engine::matching::{listed_props, select_list};
use crate::engine::retry::CallFailed;
use crate::graph::{request, Failure};
use crate::mapping::DesiredUser;
use crate::plan::{Action, OnDelete, Props};
use crate::store::{IntentOutcome, Outcome, StoreError};

const RESTORE_PERMISSION: &str = "grant User.DeleteRestore.All (the least privileged role that \
     restores users; User.ReadWrite.All includes it) in Entra, then reconnect from Plumm's Store";

/// A soft-deleted user found for the person.
struct Deleted {
    id: EntraObjectId,
    props: Props,
    deleted_at: String,
    found_by: &'static str,
}

fn text<'a>(p: &'a Props, k: &str) -> &'a str {
    p.get(k).and_then(Value::as_str).unwrap_or_default()
}

impl Job<'_> {
    /// `Some`: the create path ends here (restored and linked, or parked,
    /// or deferred); `None`: nothing to restore, create.
    pub(super) async fn restore_first(
        &self,
        desired: &DesiredUser,
    ) -> Result<Option<Step>, StoreError> {
        if self.s.on_delete != OnDelete::Delete {
            return Ok(None);
        }
        match self.find_deleted(desired).await? {
            Err(c) => Ok(Some(Step::Finished(c))),
            Ok(None) => Ok(None),
            // A restored account comes back enabled: one that is to stay
            // disabled (Plumm says inactive, or a pre-hire not started yet)
            // stays deleted, and no second account is made either. The
            // start date's scheduled enable runs this again.
            Ok(Some(d)) if !desired.account_enabled => {
                let detail = format!(
                    "deleted account {} (deleted {}) is not restored while the person is not to be \
                     enabled (inactive in Plumm, or before the start date); it is restored when they are",
                    d.id, d.deleted_at
                );
                Ok(Some(Step::Finished(self.skipped(&detail))))
            }
            Ok(Some(d)) => self.restore(d).await.map(Some),
        }
    }

    fn deleted_select(&self) -> Vec<String> {
        let mut select = select_list(&self.s.mapping);
        select.push("deletedDateTime".into());
        select
    }

    fn deleted(&self, user: &Value, found_by: &'static str) -> Option<Deleted> {
        let id = user.get("id").and_then(Value::as_str)?;
        let select = select_list(&self.s.mapping);
        let at = user.get("deletedDateTime").and_then(Value::as_str);
        Some(Deleted {
            id: EntraObjectId(id.to_string()),
            props: listed_props(user, &select),
            deleted_at: at.unwrap_or("an unknown time").to_string(),
            found_by,
        })
    }

    /// The person's restorable account, if any; `Err` ends the job.
    async fn find_deleted(
        &self,
        desired: &DesiredUser,
    ) -> Result<Result<Option<Deleted>, Converged>, StoreError> {
        let select = self.deleted_select();
        let select: Vec<&str> = select.iter().map(String::as_str).collect();
        let (tenant, user) = (&self.ctx.tenant, self.ctx.user);
        let mut others = Vec::new();
        // Checked even when the Plumm id is the same: a deleted row's id may
        // be reused by SQLite for the next person entered.
        for (id, deleted_at) in self.state().deleted_accounts(tenant, user, &desired.mail)? {
            let req = request::get_deleted_user(&id, &select);
            match self.call(Action::Lookup, &req, false).await {
                Ok((sent, _)) => {
                    let body = sent.reply.body.unwrap_or(Value::Null);
                    let found = self.deleted(&body, "the account this daemon deleted");
                    if let Some(d) = found.filter(|d| self.own(desired, d, &mut others)) {
                        return Ok(Ok(Some(d)));
                    }
                }
                // Deleted moments ago: not in the deleted items yet
                // (replication), which is no proof it is gone for good.
                Err((f, _))
                    if f.failure() == Some(&Failure::NotFound)
                        && age(&deleted_at) < self.s.replication_timeout =>
                {
                    return Ok(Err(Converged::Deferred(format!(
                        "account {} deleted at {deleted_at} is not in Entra's deleted items yet \
                         (replication); looking again before any create",
                        id.0
                    ))));
                }
                // Restored or purged (the 30 days are over) since.
                Err((f, _)) if f.failure() == Some(&Failure::NotFound) => {
                    self.state().forget_deleted(tenant, &id)?;
                }
                Err((f, n)) => return self.deleted_unreadable(f, n).await.map(Err),
            }
        }
        let by = [
            ("mail", desired.mail.as_str()),
            ("userPrincipalName", desired.user_principal_name.as_str()),
        ];
        for (property, value) in by {
            let req = request::find_deleted_users_by(property, value, &select);
            let sent = match self.call(Action::Lookup, &req, false).await {
                Ok((sent, _)) => sent,
                Err((f, n)) => return self.deleted_unreadable(f, n).await.map(Err),
            };
            let body = sent.reply.body.unwrap_or(Value::Null);
            let list = body.get("value").and_then(Value::as_array);
            let found_by = if property == "mail" {
                "mail"
            } else {
                "userPrincipalName"
            };
            // The most recently deleted of those that have the address and
            // are not someone else's (one without a date counts as oldest).
            let mut candidates: Vec<&Value> = list
                .into_iter()
                .flatten()
                .filter(|u| {
                    u.get(property)
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(value))
                })
                .collect();
            candidates.sort_by_key(|u| {
                std::cmp::Reverse(u.get("deletedDateTime").and_then(Value::as_str))
            });
            if let Some(d) = candidates
                .into_iter()
                .filter_map(|u| self.deleted(u, found_by))
                .find(|d| self.own(desired, d, &mut others))
            {
                return Ok(Ok(Some(d)));
            }
        }
        Ok(Ok(None))
    }

    /// Whether a deleted account found by address is this person's. Entra
    /// showing another employee id or another given name says it was
    /// someone else's: it stays deleted, recorded once per account in
    /// `others` with an audit row (a surname alone may change on marriage).
    fn own(&self, desired: &DesiredUser, d: &Deleted, others: &mut Vec<EntraObjectId>) -> bool {
        let differs = |key: &str| {
            let ours = desired.profile.get(key).and_then(Option::as_deref);
            let theirs = text(&d.props, key);
            match ours.map(str::trim).filter(|s| !s.is_empty()) {
                Some(o) if !theirs.trim().is_empty() && !o.eq_ignore_ascii_case(theirs.trim()) => {
                    Some(format!("{key} '{}', not '{o}'", theirs.trim()))
                }
                _ => None,
            }
        };
        let Some(why) = differs("employeeId").or_else(|| differs("givenName")) else {
            return true;
        };
        if !others.contains(&d.id) {
            others.push(d.id.clone());
            let mut r = self.ctx.record(Action::Restore, Outcome::Skipped);
            r.detail = Some(format!(
                "deleted Entra account {} (deleted {}, found by {}) has {why}: someone else's, \
                 whose address was reused, so it stays deleted and {} gets a new account, not \
                 that person's mailbox, files and groups",
                d.id, d.deleted_at, d.found_by, self.user.email
            ));
            self.ctx.audit(&r);
        }
        false
    }

    /// The deleted users could not be read: never create then.
    async fn deleted_unreadable(&self, f: CallFailed, n: u32) -> Result<Converged, StoreError> {
        if f.failure() != Some(&Failure::Forbidden) {
            return self.failed(Action::Lookup, f, n).await;
        }
        let reason = format!(
            "the app may not read the tenant's deleted users (403), so it cannot tell whether {} \
             has an account to restore, and creates none rather than risk a second one: {RESTORE_PERMISSION}",
            self.user.email
        );
        self.park(Action::Restore, Some(&f), reason)
    }

    async fn restore(&self, d: Deleted) -> Result<Step, StoreError> {
        let (upn, mail) = (text(&d.props, "userPrincipalName"), text(&d.props, "mail"));
        // Intent before action: what is about to be live again is on disk
        // before the request leaves (see intents.rs).
        let intent = self.state().record_intent(
            self.ctx.user,
            self.ctx.company,
            &self.ctx.tenant,
            upn,
            mail,
        )?;
        let req = request::restore_deleted_user(&d.id);
        let (result, unsure) = self.call_noting(Action::Restore, &req, false).await;
        if let Err((f, _)) = &result {
            if !unsure && f.failure().is_some() {
                self.state().settle_intent(intent, IntentOutcome::Refused)?;
            }
        }
        let (f, n) = match result {
            Ok((sent, n)) => {
                self.state().forget_deleted(&self.ctx.tenant, &d.id)?;
                let link = self.found_link(d.id.clone(), d.props.clone());
                let detail = format!(
                    "restored Entra user {} (deleted {}, found by {}) instead of creating a second account",
                    d.id, d.deleted_at, d.found_by
                );
                let r = self.done_record(Action::Restore, &sent, n, Some(detail));
                self.state().save_created_link(&link, &r)?;
                return Ok(Step::Linked(link));
            }
            Err(e) => e,
        };
        match f.failure() {
            Some(Failure::Conflict { property }) => {
                let property = property.clone();
                self.restore_conflict(&d, &property, f).await
            }
            Some(Failure::Forbidden) => {
                let reason = format!(
                    "Entra refused to restore the deleted account {} of {} (403): the app may not \
                     restore users, or the account holds an administrator role: {RESTORE_PERMISSION}",
                    d.id, self.user.email
                );
                self.park(Action::Restore, Some(&f), reason)
                    .map(Step::Finished)
            }
            Some(Failure::NotFound) => {
                // Restored by someone else, or purged, since it was found.
                self.state().forget_deleted(&self.ctx.tenant, &d.id)?;
                Ok(Step::Finished(Converged::Deferred(format!(
                    "deleted account {} is no longer in the deleted items; looking again",
                    d.id
                ))))
            }
            _ => self.failed(Action::Restore, f, n).await.map(Step::Finished),
        }
    }

    /// The deleted account's UPN or mail is now another account's: the
    /// admin decides which one the person gets, with both ids in hand.
    async fn restore_conflict(
        &self,
        d: &Deleted,
        property: &str,
        f: CallFailed,
    ) -> Result<Step, StoreError> {
        let (upn, mail) = (text(&d.props, "userPrincipalName"), text(&d.props, "mail"));
        let holder = match self.lookup(upn, mail).await? {
            Ok(Some(found)) => format!("Entra user {}", found.id),
            Ok(None) => "another object (not a readable user)".to_string(),
            Err(c) => return Ok(Step::Finished(c)),
        };
        let reason = format!(
            "the deleted Entra account {} of {} cannot be restored: its {property} is now held by \
             {holder}. Free the address in Entra and the account is restored, or delete {} for \
             good in Entra (Deleted users) and a new account is created",
            d.id, self.user.email, d.id
        );
        self.park(Action::Restore, Some(&f), reason)
            .map(Step::Finished)
    }
}
