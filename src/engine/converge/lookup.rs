//! Finding the Entra user that has a Plumm user's email, and linking it.
use serde_json::Value;

use super::upsert::Step;
use super::{Converged, Job};
use crate::domain::EntraObjectId;
use crate::engine::matching::{listed_props, select_list};
use crate::graph::{request, Failure};
use crate::plan::{Action, Props};
use crate::store::{now_text, Link, Outcome, StoreError};

/// What reading a linked user back from Entra showed.
pub(super) enum ReadBack {
    /// `link.pushed` is now what Entra holds, and the mark is cleared.
    Read,
    /// 404 for an object old enough to be visible.
    NotFound,
    /// The job ends here (not replicated yet, or the read failed).
    Stop(Converged),
}

pub(super) struct Found {
    pub id: EntraObjectId,
    pub props: Props,
    pub matched_by: &'static str,
}

impl Job<'_> {
    /// Finds the Entra user by UPN, then by mail (Graph compares
    /// case-insensitively; so do we). `Err` ends the job.
    pub(super) async fn lookup(
        &self,
        upn: &str,
        mail: &str,
    ) -> Result<Result<Option<Found>, Converged>, StoreError> {
        let select = select_list(&self.s.mapping);
        let select: Vec<&str> = select.iter().map(String::as_str).collect();
        for (property, value) in [("userPrincipalName", upn), ("mail", mail)] {
            let req = request::find_users_by(property, value, &select);
            let sent = match self.call(Action::Lookup, &req, false).await {
                Ok((sent, _)) => sent,
                Err((f, n)) => return self.failed(Action::Lookup, f, n).await.map(Err),
            };
            let candidates = sent
                .reply
                .body
                .as_ref()
                .and_then(|b| b.get("value"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let matches: Vec<&Value> = candidates
                .iter()
                .filter(|u| {
                    u.get(property)
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(value))
                })
                .collect();
            match matches.as_slice() {
                [] => continue,
                [one] => {
                    let Some(id) = one.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    let props = listed_props(one, &select);
                    return Ok(Ok(Some(Found {
                        id: EntraObjectId(id.to_string()),
                        props,
                        matched_by: property,
                    })));
                }
                many => {
                    let reason = format!(
                        "{} Entra users have {property} {value}; remove the duplicates in Entra",
                        many.len()
                    );
                    return self.park(Action::Link, None, reason).map(Err);
                }
            }
        }
        Ok(Ok(None))
    }

    /// The link to an account found in Entra (by lookup or restore): the
    /// daemon did not create it, and `pushed` is what Entra showed.
    pub(super) fn found_link(&self, entra_id: EntraObjectId, pushed: Props) -> Link {
        Link {
            user: self.ctx.user,
            company: self.ctx.company,
            tenant: self.ctx.tenant.clone(),
            entra_id,
            pushed,
            upn_fallback: false,
            created_by_us: false,
            linked_at: now_text(),
            verify_first: false,
            revoke_owed: false,
        }
    }

    /// Links the user to an Entra user that has its email, unless another
    /// Plumm user already holds that link.
    pub(super) fn adopt(&self, found: Found) -> Result<Step, StoreError> {
        if let Some(other) = self.state().linked_user(&self.ctx.tenant, &found.id)? {
            if other != self.ctx.user {
                let reason = format!(
                    "Entra user {} with email {} is already linked to Plumm user {other}; \
                     two Plumm users seem to share this email: fix one of them in Plumm",
                    found.id, self.user.email
                );
                return self.park(Action::Link, None, reason).map(Step::Finished);
            }
        }
        let link = self.found_link(found.id.clone(), found.props);
        // The account with these identifiers is found: any create sent for
        // them whose answer was lost made this one.
        let mut r = self.ctx.record(Action::Link, Outcome::Ok);
        r.detail = Some(format!(
            "linked to existing Entra user {} (matched by {})",
            found.id, found.matched_by
        ));
        self.state().save_created_link(&link, &r)?;
        Ok(Step::Linked(link))
    }
}

impl Job<'_> {
    /// A write to the linked user may or may not have been applied (its
    /// answer was lost, or the daemon died while it was in flight): read
    /// what Entra holds before planning anything. A read costs no write
    /// budget. `young`: created by us within `replication_timeout`, so a
    /// 404 is replication lag and is retried.
    pub(super) async fn read_back(
        &self,
        link: &mut Link,
        young: bool,
    ) -> Result<ReadBack, StoreError> {
        let select = select_list(&self.s.mapping);
        let select: Vec<&str> = select.iter().map(String::as_str).collect();
        let req = request::get_user(&link.entra_id, &select);
        match self.call(Action::Lookup, &req, young).await {
            Ok((sent, _)) => {
                let Some(body) = sent.reply.body.as_ref() else {
                    return Ok(ReadBack::Stop(Converged::Deferred(
                        "Graph answered the read of a user without a body".into(),
                    )));
                };
                link.pushed = listed_props(body, &select);
                link.verify_first = false;
                self.state().save_link(link)?;
                let mut r = self.ctx.record(Action::Lookup, Outcome::Ok);
                r.detail = Some(format!(
                    "read Entra user {} back: an earlier write's outcome was unknown",
                    link.entra_id
                ));
                self.ctx.audit(&r);
                Ok(ReadBack::Read)
            }
            Err((f, _)) if f.failure() == Some(&Failure::NotFound) && !young => {
                Ok(ReadBack::NotFound)
            }
            Err((f, n)) if f.failure() == Some(&Failure::NotFound) => Ok(ReadBack::Stop(
                self.not_replicated(Action::Lookup, &f, n, link),
            )),
            Err((f, n)) => self.failed(Action::Lookup, f, n).await.map(ReadBack::Stop),
        }
    }
}
