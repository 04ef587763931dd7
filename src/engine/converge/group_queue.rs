//! A person's side of the membership queue: bulk work queues its
//! additions for the batcher (`engine::membership_batch`), and a worker
//! takes back the ones the rules no longer give before planning.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError};

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::Job;
use crate::store::{after, now_text, Link, ManagedMembership, NewQueuedAdd, QueuedAdd, StoreError};

impl Job<'_> {
    /// Bulk work queues its additions for the batcher (20 members to a
    /// write) instead of sending them one by one.
    pub(super) fn queue_add(
        &self,
        link: &Link,
        m: &ManagedMembership,
        replicating: bool,
    ) -> Result<(), StoreError> {
        let young_until = match replicating {
            true => after(self.s.replication_timeout),
            false => now_text(),
        };
        self.state().queue_membership(&NewQueuedAdd {
            tenant: &link.tenant,
            company: self.ctx.company,
            group_id: &m.group_id,
            group_name: m.group_name.as_deref(),
            user: self.ctx.user,
            email: &self.ctx.email,
            member: &link.entra_id,
            young_until: &young_until,
        })?;
        self.batch_wake.notify_one();
        Ok(())
    }

    /// Takes back queued additions the rules no longer give (`want`: the
    /// groups they give, as far as known), and handed-back ones to a group
    /// the person is recorded in already. One whose batch was sent may
    /// have been made: it is recorded, so the plan takes the person out
    /// like any membership (a 404 counts as done), never just forgotten.
    pub(super) fn settle_queue(
        &self,
        link: &Link,
        queued: &[QueuedAdd],
        recorded: &[ManagedMembership],
        want: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        for q in queued {
            let wanted = want.contains(&q.group_id);
            let made = recorded.iter().any(|m| m.group_id == q.group_id);
            if wanted && !(q.direct && made) {
                continue;
            }
            if !wanted && q.sent_at.is_some() {
                let m = ManagedMembership {
                    group_id: q.group_id.clone(),
                    group_name: q.group_name.clone(),
                };
                self.state()
                    .record_membership(self.ctx.user, &link.tenant, &link.entra_id, &m)?;
            }
            self.state().unqueue_membership(q.id)?;
        }
        Ok(())
    }
}

/// One lock per tenant and managed group name: two hires into a new
/// department never create its group twice, while different groups are
/// resolved (and created) at the same time. One entry per name the daemon
/// manages, so the map stays as small as the set of groups.
#[derive(Default)]
pub struct GroupNameLocks(std::sync::Mutex<HashMap<NameKey, Arc<Mutex<()>>>>);

/// A tenant and a managed group's name, case folded.
type NameKey = (String, String);

impl GroupNameLocks {
    pub(super) async fn lock(&self, tenant: &str, name: &str) -> OwnedMutexGuard<()> {
        let key = (tenant.to_string(), name.to_lowercase());
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }
}
