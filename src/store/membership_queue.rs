//! Group additions waiting to be sent 20 to a write
//! (migrations/state/0010_membership_queue.sql).
use super::Cached as _;
use rusqlite::{params, OptionalExtension};

use super::state::Enqueue;
use super::{now_text, Context, ManagedMembership, StateDb, StoreError};
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};

/// One person's account that belongs in one group, not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAdd {
    pub id: i64,
    pub tenant: String,
    pub company: CompanyId,
    pub group_id: String,
    pub group_name: Option<String>,
    pub user: PlummUserId,
    pub email: String,
    pub member_id: String,
    pub young_until: String,
    pub queued_at: String,
    pub attempts: i64,
    /// Not sent again before then.
    pub not_before: String,
    /// Handed back to the person's worker (see the migration).
    pub direct: bool,
    /// When a batch carrying it was first sent: it may have been made.
    pub sent_at: Option<String>,
}

/// What to queue for one person.
#[derive(Debug, Clone)]
pub struct NewQueuedAdd<'a> {
    pub tenant: &'a TenantId,
    pub company: CompanyId,
    pub group_id: &'a str,
    pub group_name: Option<&'a str>,
    pub user: PlummUserId,
    pub email: &'a str,
    pub member: &'a EntraObjectId,
    pub young_until: &'a str,
}

/// A group with additions due, the oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueGroup {
    pub tenant: String,
    pub company: CompanyId,
    pub group_id: String,
    pub count: i64,
    pub oldest: String,
}

fn queued_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedAdd> {
    Ok(QueuedAdd {
        id: r.get(0)?,
        tenant: r.get(1)?,
        company: CompanyId(r.get(2)?),
        group_id: r.get(3)?,
        group_name: r.get(4)?,
        user: PlummUserId(r.get(5)?),
        email: r.get(6)?,
        member_id: r.get(7)?,
        young_until: r.get(8)?,
        queued_at: r.get(9)?,
        attempts: r.get(10)?,
        direct: r.get(11)?,
        sent_at: r.get(12)?,
        not_before: r.get(13)?,
    })
}

const COLUMNS: &str = "id, tenant_id, company_id, group_id, group_name, plumm_user_id, email, \
                       member_id, young_until, queued_at, attempts, direct, sent_at, not_before";

impl StateDb {
    /// Queues an addition; one already queued for the account and group
    /// stays as it is (a resync and the person's worker may both ask).
    pub fn queue_membership(&self, a: &NewQueuedAdd<'_>) -> Result<(), StoreError> {
        let now = now_text();
        self.lock()
            .execute_cached(
                "INSERT INTO membership_queue (tenant_id, company_id, group_id, group_name,
                   plumm_user_id, email, member_id, young_until, queued_at, not_before)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                 ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING",
                params![
                    a.tenant.as_str(),
                    a.company.0,
                    a.group_id,
                    a.group_name,
                    a.user.0,
                    a.email,
                    a.member.0,
                    a.young_until,
                    now
                ],
            )
            .ctx("queueing a group addition")?;
        Ok(())
    }

    /// The groups the person's account `member` is queued to join.
    pub fn queued_memberships(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        member: &EntraObjectId,
    ) -> Result<Vec<QueuedAdd>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM membership_queue
                 WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND member_id = ?3
                 ORDER BY group_id"
            ))
            .ctx("reading queued group additions")?;
        let rows = stmt
            .query_map(params![user.0, tenant.as_str(), member.0], queued_row)
            .ctx("reading queued group additions")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading queued group additions")
    }

    /// Groups with additions whose time has come, per tenant and group.
    pub fn due_memberships(&self, now: &str) -> Result<Vec<DueGroup>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT tenant_id, company_id, group_id, COUNT(*), MIN(queued_at)
                 FROM membership_queue WHERE not_before <= ?1 AND direct = 0
                 GROUP BY tenant_id, company_id, group_id ORDER BY MIN(queued_at)",
            )
            .ctx("reading due group additions")?;
        let rows = stmt
            .query_map([now], |r| {
                Ok(DueGroup {
                    tenant: r.get(0)?,
                    company: CompanyId(r.get(1)?),
                    group_id: r.get(2)?,
                    count: r.get(3)?,
                    oldest: r.get(4)?,
                })
            })
            .ctx("reading due group additions")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading due group additions")
    }

    /// Up to `n` due additions to one group, the oldest first.
    pub fn take_memberships(
        &self,
        g: &DueGroup,
        now: &str,
        n: usize,
    ) -> Result<Vec<QueuedAdd>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM membership_queue
                 WHERE tenant_id = ?1 AND group_id = ?2 AND company_id = ?5
                   AND not_before <= ?3 AND direct = 0
                 ORDER BY queued_at, id LIMIT ?4"
            ))
            .ctx("reading due group additions")?;
        let rows = stmt
            .query_map(
                params![g.tenant, g.group_id, now, n as i64, g.company.0],
                queued_row,
            )
            .ctx("reading due group additions")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading due group additions")
    }

    /// Takes a queued addition out; whether it was still there (its
    /// person's worker may have taken it back meanwhile).
    pub fn unqueue_membership(&self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute_cached("DELETE FROM membership_queue WHERE id = ?1", [id])
            .ctx("unqueueing a group addition")?;
        Ok(n > 0)
    }

    /// The addition went through (or may have): out of the queue, and into
    /// the memberships the daemon made when the account is still linked to
    /// the person, in one transaction. Whether it was still queued (the
    /// person's worker may have taken it back meanwhile) and still linked.
    pub fn settle_membership(&self, a: &QueuedAdd) -> Result<(bool, bool), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("recording a group addition")?;
        let queued = tx
            .execute_cached("DELETE FROM membership_queue WHERE id = ?1", [a.id])
            .ctx("recording a group addition")?;
        let linked = tx
            .query_row_cached(
                "SELECT 1 FROM links WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND entra_id = ?3",
                params![a.user.0, a.tenant, a.member_id],
                |_| Ok(()),
            )
            .optional()
            .ctx("recording a group addition")?
            .is_some();
        if linked {
            let m = ManagedMembership {
                group_id: a.group_id.clone(),
                group_name: a.group_name.clone(),
            };
            super::groups::insert_membership(&tx, (a.user, &a.tenant, &a.member_id), &m)?;
        }
        tx.commit().ctx("recording a group addition")?;
        Ok((queued > 0, linked))
    }

    /// Marks additions as about to be sent (see `QueuedAdd::sent_at`).
    pub fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("marking group additions sent")?;
        let now = now_text();
        for id in ids {
            tx.execute_cached(
                "UPDATE membership_queue SET sent_at = COALESCE(sent_at, ?2) WHERE id = ?1",
                params![id, now],
            )
            .ctx("marking group additions sent")?;
        }
        tx.commit().ctx("marking group additions sent")
    }

    /// Additions delayed past `now` (throttled, an outage, replication).
    pub fn delayed_memberships(&self, now: &str) -> Result<Vec<QueuedAdd>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM membership_queue WHERE direct = 0 AND not_before > ?1"
            ))
            .ctx("reading queued group additions")?;
        let rows = stmt
            .query_map([now], queued_row)
            .ctx("reading queued group additions")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading queued group additions")
    }

    /// Which of `ids` are still queued.
    pub fn still_queued(&self, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM membership_queue WHERE id = ?1")
            .ctx("reading queued group additions")?;
        let mut out = Vec::new();
        for id in ids {
            if stmt.exists([id]).ctx("reading queued group additions")? {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// People with additions handed back to them (their workers must run).
    pub fn handed_back_people(&self) -> Result<Vec<(PlummUserId, CompanyId, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT plumm_user_id, company_id, email FROM membership_queue WHERE direct = 1",
            )
            .ctx("reading queued group additions")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((PlummUserId(r.get(0)?), CompanyId(r.get(1)?), r.get(2)?))
            })
            .ctx("reading queued group additions")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading queued group additions")
    }

    /// Hands additions back to their people's workers, which add them one
    /// by one (`direct`), and makes those workers run (`nudges`, see
    /// [`StateDb::nudge`]), in one commit: a worker that ran between the
    /// two would see the addition still queued for a batch, count it as
    /// made and finish, leaving it handed back to no one.
    pub fn hand_back_memberships(
        &self,
        ids: &[i64],
        error: &str,
        nudges: &[Enqueue],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("handing back group additions")?;
        for id in ids {
            tx.execute_cached(
                "UPDATE membership_queue SET direct = 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .ctx("handing back group additions")?;
        }
        super::pending::nudge_in(&tx, nudges)?;
        tx.commit().ctx("handing back group additions")
    }

    /// Leaves additions queued until `not_before`, noting why.
    pub fn delay_memberships(
        &self,
        ids: &[i64],
        not_before: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("delaying group additions")?;
        for id in ids {
            tx.execute_cached(
                "UPDATE membership_queue SET not_before = ?2, attempts = attempts + 1,
                   last_error = ?3 WHERE id = ?1",
                params![id, not_before, error],
            )
            .ctx("delaying group additions")?;
        }
        tx.commit().ctx("delaying group additions")
    }

    /// Additions queued for a company (all companies with `None`), for
    /// `status` and `run --once`.
    pub fn queued_membership_count(&self, company: Option<CompanyId>) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*) FROM membership_queue
                 WHERE direct = 0 AND (?1 IS NULL OR company_id = ?1)",
                [company.map(|c| c.0)],
                |r| r.get(0),
            )
            .ctx("counting queued group additions")
    }

    /// When the next delayed addition is due, if any.
    pub fn next_membership_due(&self) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT MIN(not_before) FROM membership_queue WHERE direct = 0",
                [],
                |r| r.get(0),
            )
            .ctx("reading queued group additions")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_state as db;

    #[test]
    fn an_addition_is_queued_once_taken_oldest_first_and_delayed() {
        let db = db();
        let t = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let add = |user: i64, member: &str| {
            let member = EntraObjectId(member.into());
            db.queue_membership(&NewQueuedAdd {
                tenant: &t,
                company: CompanyId(1),
                group_id: "g",
                group_name: Some("All staff"),
                user: PlummUserId(user),
                email: "a@example.com",
                member: &member,
                young_until: "2000-01-01T00:00:00.000Z",
            })
            .unwrap();
        };
        add(1, "m1");
        add(2, "m2");
        add(1, "m1");
        let now = "9999-01-01T00:00:00.000Z";
        let due = db.due_memberships(now).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 2, "queued once per account and group");
        let taken = db.take_memberships(&due[0], now, 20).unwrap();
        assert_eq!(taken.iter().map(|a| a.user.0).collect::<Vec<_>>(), [1, 2]);
        db.delay_memberships(&[taken[0].id], "9999-06-01T00:00:00.000Z", "HTTP 503")
            .unwrap();
        let later = db.take_memberships(&due[0], now, 20).unwrap();
        assert_eq!(later.len(), 1, "a delayed addition waits");
        assert!(db.unqueue_membership(taken[1].id).unwrap());
        assert!(!db.unqueue_membership(taken[1].id).unwrap(), "already gone");
        assert_eq!(db.queued_membership_count(Some(CompanyId(1))).unwrap(), 1);
        db.remove_link(PlummUserId(1)).unwrap();
        assert_eq!(
            db.queued_membership_count(None).unwrap(),
            0,
            "goes with the link"
        );
    }

    #[test]
    fn a_nudge_reruns_a_change_under_way_and_keeps_what_it_is() {
        let db = db();
        let item = |kind| crate::store::state::Enqueue {
            user: PlummUserId(5),
            company: CompanyId(1),
            kind,
            snapshot: "{}".into(),
            priority: crate::pacing::Priority::Realtime,
            absent: false,
        };
        db.enqueue(&[item(crate::store::PendingKind::Remove)], None)
            .unwrap();
        let due = || {
            let p = crate::pacing::Priority::Realtime;
            db.due(CompanyId(1), p, &now_text(), 10, &Default::default())
                .unwrap()
        };
        let under_way = due();
        assert_eq!(under_way.len(), 1);
        db.nudge(&[item(crate::store::PendingKind::Upsert)])
            .unwrap();
        assert!(
            !db.complete(PlummUserId(5), under_way[0].seq, true).unwrap(),
            "the run under way no longer completes it"
        );
        let again = due();
        assert_eq!(again.len(), 1, "it runs again");
        assert_eq!(
            again[0].kind,
            crate::store::PendingKind::Remove,
            "still a removal"
        );
        db.complete(PlummUserId(5), again[0].seq, true).unwrap();
        db.nudge(&[item(crate::store::PendingKind::Upsert)])
            .unwrap();
        assert_eq!(
            db.pending_total().unwrap(),
            1,
            "queued when nothing was pending"
        );
    }

    /// The race a hand-back must not lose: a worker already under way read
    /// the addition as queued for a batch (so as made). Handed back, the
    /// addition is the worker's in the same commit that makes it run again.
    #[test]
    fn a_handed_back_addition_makes_a_worker_under_way_run_again() {
        let db = db();
        let t = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let member = EntraObjectId("m5".into());
        db.queue_membership(&NewQueuedAdd {
            tenant: &t,
            company: CompanyId(1),
            group_id: "g",
            group_name: None,
            user: PlummUserId(5),
            email: "e@example.com",
            member: &member,
            young_until: "2000-01-01T00:00:00.000Z",
        })
        .unwrap();
        let bulk = crate::pacing::Priority::Bulk;
        let nudge = [crate::store::state::Enqueue {
            user: PlummUserId(5),
            company: CompanyId(1),
            kind: crate::store::PendingKind::Upsert,
            snapshot: "{}".into(),
            priority: bulk,
            absent: false,
        }];
        db.enqueue(&nudge, None).unwrap();
        let under_way = db
            .due(CompanyId(1), bulk, &now_text(), 10, &Default::default())
            .unwrap();
        assert_eq!(under_way.len(), 1);
        let row = db.queued_memberships(PlummUserId(5), &t, &member).unwrap();

        db.hand_back_memberships(&[row[0].id], "HTTP 400", &nudge)
            .unwrap();
        let row = db.queued_memberships(PlummUserId(5), &t, &member).unwrap();
        assert!(row[0].direct, "the worker's to make");
        assert!(
            !db.complete(PlummUserId(5), under_way[0].seq, true).unwrap(),
            "the run under way does not complete the change"
        );
        assert_eq!(
            db.queued_membership_count(None).unwrap(),
            0,
            "not the batcher's"
        );
        assert!(db.has_pending_work().unwrap(), "the worker runs again");
    }
}
