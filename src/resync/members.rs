//! A resync's membership pass: each managed group's members are listed once
//! (`$select=id`, 999 a page), compared with what the rules say of every
//! linked person ([`super::members_plan`]), and the drift is put right:
//! additions queued for the batcher (20 members a write), removals one
//! write each, records brought in line without a write. The
//! mass-deprovision brake counts the removals too: a rule typo must not
//! empty "All staff". A dry run only reports, with each person's groups
//! before and after.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::members_plan::{plan_members, Change, MemberChange, Person};
use super::report::{BrakeNote, ChangeOut, CompanyReport, ItemOut};
use super::run::{Resync, RunOptions};
use crate::domain::{CompanyId, EntraObjectId, PlummStatus, PlummUserId};
use crate::engine::membership_batch::nudges;
use crate::engine::retry::{send_with_retry, Target};
use crate::engine::{brake, Policy};
use crate::graph::{request, Failure};
use crate::mapping::dates::person_dates;
use crate::mapping::groups::{person_groups, GroupTarget};
use crate::pacing::Priority;
use crate::plan::lifecycle::timing;
use crate::store::resync::for_each_company_user;
use crate::store::{ManagedMembership, PlummDb, StoreError, TenantConnection};

/// What the pass read from the state database and Plumm.
#[derive(Default)]
struct Found {
    people: Vec<Person>,
    /// Group id -> name, for the report and the records (by-id groups: none).
    names: BTreeMap<String, String>,
    /// The groups whose members are read.
    groups: BTreeSet<String>,
    /// People (by index) whose worker must run whatever the listing shows.
    nudge: Vec<usize>,
}

impl Resync {
    /// The membership pass of one company's resync; its lines join the
    /// report's items.
    pub(super) async fn memberships(
        &self,
        conn: &TenantConnection,
        s: &Policy,
        opts: RunOptions,
        plumm: &Mutex<PlummDb>,
        report: &mut CompanyReport,
    ) -> Result<Vec<ItemOut>, StoreError> {
        let known = self.state.tenant_groups(&conn.tenant)?;
        if s.groups.is_empty() && known.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.gather(conn, s, plumm, &known)?;
        let mut listed = BTreeMap::new();
        let mut items = Vec::new();
        for g in &found.groups {
            match self.list_members(conn, s, g).await {
                Ok(members) => {
                    listed.insert(g.clone(), members);
                }
                Err(why) => items.push(ItemOut {
                    action: "groups".into(),
                    user: None,
                    email: String::new(),
                    entra_id: None,
                    changes: Vec::new(),
                    note: Some(format!("{}: {why}", name(&found.names, g))),
                    held: false,
                }),
            }
        }
        let plan = plan_members(&listed, &found.people);
        let count = |c: Change| plan.iter().filter(|m| m.change == c).count() as u64;
        report.membership_adds = count(Change::Add);
        report.membership_removals = count(Change::Remove);
        let held = self.membership_brake(conn, s, opts, report)?;
        items.extend(person_items(&found, &listed, &plan, held));
        if !opts.dry_run {
            self.apply_members(conn, &found, &plan)?;
        }
        Ok(items)
    }

    fn gather(
        &self,
        conn: &TenantConnection,
        s: &Policy,
        plumm: &Mutex<PlummDb>,
        known: &[(String, Option<String>)],
    ) -> Result<Found, StoreError> {
        let mut found = Found::default();
        // Names for the report; only groups the rules name now are listed
        // (a group no rule names keeps its hand-made members: the records
        // of it are taken out by each person's worker).
        for (id, name) in known {
            if let Some(n) = name {
                found.names.insert(id.clone(), n.clone());
            }
        }
        found.groups.extend(s.groups.group_ids(conn.company));
        let mut by_name: HashMap<String, Option<String>> = HashMap::new();
        let now = chrono::Utc::now();
        let mut guard = plumm.lock().unwrap_or_else(PoisonError::into_inner);
        for_each_company_user(guard.connection(), conn.company, |u| {
            let Some(link) = self.state.link(u.id)?.filter(|l| l.tenant == conn.tenant) else {
                return Ok(());
            };
            // As the worker reads it: suspended on the leave date too.
            let (start, end) = person_dates(&u, &s.mapping);
            let left = timing(&s.lifecycle, start, end, now).left;
            let suspended = u.status == PlummStatus::Inactive || left;
            let mut p = Person {
                user: u.id.0,
                email: u.email.clone(),
                entra_id: link.entra_id.0.clone(),
                complete: true,
                ..Person::default()
            };
            for t in person_groups(&u, &s.groups, s.on_suspend_groups, suspended) {
                let id = match t {
                    GroupTarget::Id(id) => Some(id),
                    GroupTarget::Name(n) => {
                        if !by_name.contains_key(&n) {
                            let g = self.state.managed_group(&conn.tenant, &n)?;
                            by_name.insert(n.clone(), g.and_then(|g| g.group_id));
                        }
                        let id = by_name.get(&n).cloned().flatten();
                        if let Some(id) = &id {
                            found.names.insert(id.clone(), n);
                        }
                        id
                    }
                };
                match id {
                    Some(id) => {
                        found.groups.insert(id.clone());
                        p.want.insert(id);
                    }
                    None => p.complete = false,
                }
            }
            let member = &link.entra_id;
            p.recorded = (self.state.memberships(u.id, &conn.tenant, member)?)
                .into_iter()
                .map(|m| m.group_id)
                .collect();
            let queued = self.state.queued_memberships(u.id, &conn.tenant, member)?;
            let handed_back = queued.iter().any(|q| q.direct);
            p.queued = queued
                .into_iter()
                .filter(|q| !q.direct)
                .map(|q| q.group_id)
                .collect();
            // Their worker has work the listing cannot show: a managed
            // group to create, records or queued additions the rules no
            // longer give, additions handed back.
            let unwanted = p
                .recorded
                .iter()
                .chain(&p.queued)
                .any(|g| !p.want.contains(g));
            if !p.complete || handed_back || unwanted {
                found.nudge.push(found.people.len());
            }
            found.people.push(p);
            Ok(())
        })?;
        Ok(found)
    }

    /// A group's member ids, every page; why not when Graph will not say.
    async fn list_members(
        &self,
        conn: &TenantConnection,
        s: &Policy,
        group: &str,
    ) -> Result<BTreeSet<String>, String> {
        let target = Target {
            tenant: &conn.tenant,
            priority: Priority::Bulk,
            retry_not_found: false,
        };
        let mut members = BTreeSet::new();
        let mut next = Some(request::list_group_members(group));
        while let Some(req) = next.take() {
            let sent = send_with_retry(&self.graph, &s.retry, target, &req, |e, wait, _| {
                tracing::info!(tenant = %conn.tenant, group, "listing members: {}; retrying in {wait:?}", e.summary());
            })
            .await
            .map(|(sent, _)| sent)
            .map_err(|(e, _)| match e.failure() {
                Some(Failure::NotFound) => "the group no longer exists in Entra; correct the [[groups]] rule".to_string(),
                Some(Failure::Forbidden) => "the app may not read the group's members (403): grant GroupMember.ReadWrite.All, then reconnect".to_string(),
                _ => format!("its members could not be read ({}); nothing of it changes this time", e.summary()),
            })?;
            let body = sent.reply.body.unwrap_or(Value::Null);
            let page = body.get("value").and_then(Value::as_array);
            for m in page.into_iter().flatten() {
                if let Some(id) = m.get("id").and_then(Value::as_str) {
                    members.insert(id.to_ascii_lowercase());
                }
            }
            next = match body.get("@odata.nextLink").and_then(Value::as_str) {
                Some(link) => Some(
                    self.graph
                        .next_page(link)
                        .ok_or("an unexpected next link")?,
                ),
                None => None,
            };
        }
        Ok(members)
    }

    /// Holds the pass's removals when they trip the brake (or it is held
    /// already), unless allowed. A hold is the company's brake, as for
    /// suspensions: each person's own removals wait for the release too.
    fn membership_brake(
        &self,
        conn: &TenantConnection,
        s: &Policy,
        opts: RunOptions,
        report: &mut CompanyReport,
    ) -> Result<bool, StoreError> {
        let n = report.membership_removals;
        if n == 0 || opts.allow_mass_deprovision {
            return Ok(false);
        }
        let linked = self.state.links_count(conn.company)?.max(0) as u64;
        let held = self.state.brake(conn.company)?.filter(|b| b.is_held());
        let reason = match held {
            Some(b) => b.reason.unwrap_or_default(),
            None if !brake::trips(&s.brake, n, linked) => return Ok(false),
            None => {
                let why = format!(
                    "{n} group membership removals for {linked} linked users reach both [sync] \
                     max_deprovision_count = {} and max_deprovision_percent = {}: none is applied; \
                     check the [[groups]] rules and Plumm, then release with `entra-daemon resync \
                     --company {} --allow-mass-deprovision`",
                    s.brake.max_count, s.brake.max_percent, conn.company
                );
                match opts.dry_run {
                    true => why,
                    false => brake::hold_because(
                        &self.state,
                        conn.company,
                        (n, linked),
                        "resync group membership",
                        why,
                    )?,
                }
            }
        };
        report.outcome = "held".into();
        report.brake = Some(match report.brake.take() {
            Some(b) if b.reason == reason => BrakeNote {
                held: b.held + n,
                reason,
            },
            Some(b) => BrakeNote {
                held: b.held + n,
                reason: format!("{}; {reason}", b.reason),
            },
            None => BrakeNote { held: n, reason },
        });
        Ok(true)
    }

    /// Brings the records in line with what Entra showed and has each
    /// drifted person's worker carry out the rest: it decides from Plumm's
    /// row as it is then (not this pass's older view), queues additions
    /// for a batch, and holds removals while the brake is held.
    fn apply_members(
        &self,
        conn: &TenantConnection,
        found: &Found,
        plan: &[MemberChange],
    ) -> Result<(), StoreError> {
        let mut nudge: BTreeSet<usize> = found.nudge.iter().copied().collect();
        for c in plan {
            let p = &found.people[c.person];
            let (user, member) = (PlummUserId(p.user), EntraObjectId(p.entra_id.clone()));
            let m = ManagedMembership {
                group_id: c.group_id.clone(),
                group_name: found.names.get(&c.group_id).cloned(),
            };
            let recorded = p.recorded.contains(&c.group_id);
            match c.change {
                // Taken out by hand: the record no longer holds.
                Change::Add | Change::Forget if recorded => {
                    self.state
                        .forget_membership(user, &conn.tenant, &c.group_id)?
                }
                // Put in by hand (or found in place): recorded, so the
                // worker's plan takes a person the rules do not give out.
                Change::Remove | Change::Adopt if !recorded => {
                    self.state
                        .record_membership(user, &conn.tenant, &member, &m)?
                }
                _ => {}
            }
            if c.change.writes() {
                nudge.insert(c.person);
            }
        }
        let people: Vec<(PlummUserId, CompanyId, String)> = nudge
            .into_iter()
            .map(|i| &found.people[i])
            .map(|p| (PlummUserId(p.user), conn.company, p.email.clone()))
            .collect();
        for chunk in people.chunks(500) {
            self.state.nudge(&nudges(chunk))?;
        }
        if let (false, Some(w)) = (people.is_empty(), &self.wake) {
            w.notify_one();
        }
        Ok(())
    }
}

fn name(names: &BTreeMap<String, String>, id: &str) -> String {
    crate::engine::membership_batch::group_label(names.get(id).map(String::as_str), id)
}

/// One report line per person whose groups change: before and after, by
/// name, among the groups that were listed.
fn person_items(
    found: &Found,
    listed: &BTreeMap<String, BTreeSet<String>>,
    plan: &[MemberChange],
    held: bool,
) -> Vec<ItemOut> {
    let mut by_person: BTreeMap<usize, Vec<&MemberChange>> = BTreeMap::new();
    for c in plan.iter().filter(|c| c.change.writes()) {
        by_person.entry(c.person).or_default().push(c);
    }
    let shown = |id: &String| found.names.get(id).cloned().unwrap_or_else(|| id.clone());
    by_person
        .into_iter()
        .map(|(i, changes)| {
            let p = &found.people[i];
            let before: BTreeSet<String> = listed
                .iter()
                .filter(|(_, members)| members.contains(&p.entra_id))
                .map(|(g, _)| g.clone())
                .collect();
            let mut after = before.clone();
            for c in &changes {
                match c.change {
                    Change::Add => after.insert(c.group_id.clone()),
                    _ => after.remove(&c.group_id),
                };
            }
            let names = |set: &BTreeSet<String>| {
                let named: BTreeSet<String> = set.iter().map(shown).collect();
                Value::from(named.into_iter().collect::<Vec<_>>())
            };
            ItemOut {
                action: "groups".into(),
                user: Some(p.user),
                email: p.email.clone(),
                entra_id: Some(p.entra_id.clone()),
                changes: vec![ChangeOut {
                    property: "groups".into(),
                    old: names(&before),
                    new: names(&after),
                }],
                note: None,
                held: held && changes.iter().any(|c| c.change == Change::Remove),
            }
        })
        .collect()
}
