//! Planning one page of the tenant's listing: a handful of batched reads
//! (links, the Plumm users they point at, the emails of the rest), then the
//! pure planner for each Entra user on it.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::plan::{
    listed_manager, manager_drift, plan_listed, Item, Known, Listed, Rules, Verdict,
};
use super::report::CompanyReport;
use super::run::{Action, Planned};
use crate::domain::{CompanyId, EntraObjectId, LicenceError, PlummUser, PlummUserId, TenantId};
use crate::engine::matching::listed_props;
use crate::graph::licences::licence_errors;
use crate::store::resync::{plumm_users_by_ids, LinkBrief};
use crate::store::{Intent, PlummDb, StateDb, StoreError};

/// What planning one page needs.
pub(super) struct PageCtx<'a> {
    pub(super) state: &'a StateDb,
    pub(super) plumm: &'a Mutex<PlummDb>,
    pub(super) company: CompanyId,
    pub(super) tenant: &'a TenantId,
    pub(super) policy: &'a Rules<'a>,
    pub(super) select: &'a [String],
    /// The listing carries `licenseAssignmentStates`: each linked person's
    /// licence errors are collected for recording.
    pub(super) licences: bool,
}

/// The batched reads for one page.
struct PageRows {
    links: HashMap<String, LinkBrief>,
    by_id: HashMap<PlummUserId, PlummUser>,
    by_email: HashMap<String, PlummUser>,
}

/// A listed user's UPN or mail, lowercased.
fn key(l: &Listed, p: &str) -> Option<String> {
    l.props
        .get(p)
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

impl PageCtx<'_> {
    /// One page of the listing: one query for its links, one for the Plumm
    /// users they point at, one for the emails of the rest.
    pub(super) fn plan_page(
        &self,
        page: &[Value],
        planned: &mut Planned,
        report: &mut CompanyReport,
    ) -> Result<(), StoreError> {
        type Extras = (Option<String>, Option<Vec<LicenceError>>);
        let listed: Vec<(Listed, Extras)> = page
            .iter()
            .filter_map(|u| {
                let id = u.get("id").and_then(Value::as_str)?;
                let props = listed_props(u, self.select);
                let listed = Listed {
                    id: id.to_string(),
                    props,
                };
                let licences = self.licences.then(|| licence_errors(u)).flatten();
                Some((listed, (listed_manager(u), licences)))
            })
            .collect();
        let (listed, extras): (Vec<Listed>, Vec<Extras>) = listed.into_iter().unzip();
        let rows = self.read_rows(&listed)?;
        for (l, (manager, licences)) in listed.iter().zip(extras) {
            match rows.links.get(&l.id) {
                Some(b) => {
                    let linked = self.plan_linked(l, b, &rows, planned, report)?;
                    if let Some(u) = linked {
                        self.check_manager(l, u, manager.as_deref(), planned, report)?;
                        if let Some(errors) = licences {
                            planned.licences.push((u.id, u.email.clone(), errors));
                        }
                    }
                }
                None => self.plan_unlinked(l, &rows, planned, report)?,
            }
        }
        Ok(())
    }

    fn read_rows(&self, listed: &[Listed]) -> Result<PageRows, StoreError> {
        let ids: Vec<String> = listed.iter().map(|l| l.id.clone()).collect();
        let links = self.state.links_by_entra_ids(self.tenant, &ids)?;
        let keys: Vec<String> = listed
            .iter()
            .filter(|l| !links.contains_key(&l.id))
            .flat_map(|l| [key(l, "userPrincipalName"), key(l, "mail")])
            .flatten()
            .collect();
        let mut g = self.plumm.lock().unwrap_or_else(PoisonError::into_inner);
        let wanted: Vec<PlummUserId> = links.values().map(|b| b.user).collect();
        let by_id = plumm_users_by_ids(g.connection(), &wanted)?;
        let by_email: HashMap<String, PlummUser> = g
            .company_users_by_email(self.company, &keys)?
            .into_iter()
            .map(|u| (u.email.trim().to_lowercase(), u))
            .collect();
        Ok(PageRows {
            links,
            by_id,
            by_email,
        })
    }

    /// A listed user a link points at: the person, an orphan of a deleted
    /// person, or another company's. The person, when it is theirs.
    fn plan_linked<'r>(
        &self,
        l: &Listed,
        b: &LinkBrief,
        rows: &'r PageRows,
        planned: &mut Planned,
        report: &mut CompanyReport,
    ) -> Result<Option<&'r PlummUser>, StoreError> {
        let (known, user_row, orphan) = match rows.by_id.get(&b.user) {
            Some(u) if u.company_id == self.company => {
                let known = Known::Linked {
                    user: u,
                    upn_fallback: b.upn_fallback,
                };
                (known, Some(u), false)
            }
            None if b.company == self.company => (Known::Orphaned { user: b.user.0 }, None, true),
            _ => (Known::Elsewhere, None, false),
        };
        if let Some(u) = user_row {
            planned.seen.insert(u.id);
        }
        let item = plan_listed(l, known, self.policy);
        push(planned, report, item, l, user_row, orphan);
        Ok(user_row)
    }

    /// Manager drift on a linked person's account: the listing's manager
    /// against the account of the manager Plumm names. Drift turns the
    /// person's line into an update (or adds to it).
    fn check_manager(
        &self,
        l: &Listed,
        u: &PlummUser,
        entra: Option<&str>,
        planned: &mut Planned,
        report: &mut CompanyReport,
    ) -> Result<(), StoreError> {
        if !self.policy.mapping.manages_manager() {
            return Ok(());
        }
        let wanted = match self.policy.mapping.manager_id(u) {
            Ok(None) => Some(None),
            Ok(Some(m)) => match self.state.link(m)?.filter(|k| k.tenant == *self.tenant) {
                Some(k) => Some(Some(k.entra_id.0)),
                None => None,
            },
            Err(_) => None, // refused by the worker, with its reason
        };
        let member = EntraObjectId(l.id.clone());
        let set = self.state.manager_set(u.id, self.tenant, &member)?;
        let wanted = wanted.as_ref().map(|w| w.as_deref());
        let Some(change) = manager_drift(entra, wanted, set.is_some()) else {
            return Ok(());
        };
        let at = planned
            .actions
            .iter()
            .position(|a| a.item.user == Some(u.id.0) && a.item.entra_id.as_deref() == Some(&l.id));
        let a = match at {
            Some(i) => &mut planned.actions[i],
            None => {
                let item = Item::new(Verdict::Update, Some(u), &u.email).entra(&l.id);
                report.uncount(Verdict::Nothing);
                match push(planned, report, item, l, Some(u), false) {
                    Some(a) => a,
                    None => return Ok(()),
                }
            }
        };
        a.item.changes.push(change);
        a.listed_manager = Some(entra.map(str::to_string));
        Ok(())
    }

    /// A listed user no link points at: found by email, made by a create
    /// whose answer was lost, or a stranger.
    fn plan_unlinked(
        &self,
        l: &Listed,
        rows: &PageRows,
        planned: &mut Planned,
        report: &mut CompanyReport,
    ) -> Result<(), StoreError> {
        let found = key(l, "userPrincipalName")
            .and_then(|k| rows.by_email.get(&k))
            .or_else(|| key(l, "mail").and_then(|k| rows.by_email.get(&k)));
        if let Some(u) = found {
            let other = self
                .state
                .link(u.id)?
                .filter(|k| k.tenant == *self.tenant && k.entra_id.0 != l.id)
                .map(|k| k.entra_id.0);
            planned_known(u, other, l, self.policy, planned, report);
            return Ok(());
        }
        let Some((intent, row)) = self.intended(l)? else {
            let item = plan_listed(l, Known::Stranger, self.policy);
            push(planned, report, item, l, None, false);
            return Ok(());
        };
        let known = Known::Intended {
            user: intent.user.0,
            plumm: row.as_ref(),
        };
        if let Some(u) = &row {
            // Reported, not created again under the new address.
            planned.seen.insert(u.id);
        }
        let item = plan_listed(l, known, self.policy);
        if let Some(a) = push(planned, report, item, l, row.as_ref(), row.is_none()) {
            a.intent = Some(intent.id);
        }
        Ok(())
    }
}

impl PageCtx<'_> {
    /// An unlinked Entra user nobody in Plumm has the email of, that a
    /// create of this daemon made although its answer never arrived: the
    /// intent, and its person's row while Plumm still has them here.
    fn intended(&self, l: &Listed) -> Result<Option<(Intent, Option<PlummUser>)>, StoreError> {
        let text = |p: &str| l.props.get(p).and_then(Value::as_str).unwrap_or_default();
        let Some(intent) =
            self.state
                .unlinked_intent(self.tenant, text("userPrincipalName"), text("mail"))?
        else {
            return Ok(None);
        };
        if intent.company != self.company || self.state.link(intent.user)?.is_some() {
            // Another company's, or the person has an account linked: a
            // second one needs a person, and is reported as unmanaged.
            return Ok(None);
        }
        let mut g = self.plumm.lock().unwrap_or_else(PoisonError::into_inner);
        let row = plumm_users_by_ids(g.connection(), &[intent.user])?
            .remove(&intent.user)
            .filter(|u| u.company_id == self.company);
        Ok(Some((intent, row)))
    }
}

/// A listed user found by email: plan it with the other link (if any) in view.
fn planned_known(
    u: &PlummUser,
    other: Option<String>,
    l: &Listed,
    policy: &Rules<'_>,
    planned: &mut Planned,
    report: &mut CompanyReport,
) {
    let known = Known::SameEmail {
        user: u,
        linked_to: other.as_deref(),
    };
    if other.is_none() {
        planned.seen.insert(u.id);
    }
    let item = plan_listed(l, known, policy);
    push(planned, report, item, l, Some(u), false);
}

/// Counts the line and keeps it unless it is "nothing"; the kept action.
fn push<'p>(
    planned: &'p mut Planned,
    report: &mut CompanyReport,
    item: Item,
    l: &Listed,
    user: Option<&PlummUser>,
    orphan: bool,
) -> Option<&'p mut Action> {
    report.count(item.verdict);
    if item.verdict == Verdict::Nothing {
        return None;
    }
    planned.actions.push(Action {
        item,
        listed: Some(l.props.clone()),
        snapshot: user
            .map(|u| serde_json::to_string(u).unwrap_or_default())
            .unwrap_or_default(),
        orphan,
        intent: None,
        listed_manager: None,
    });
    planned.actions.last_mut()
}
