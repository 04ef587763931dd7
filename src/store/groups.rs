//! What the daemon remembers of group membership: the memberships it made,
//! and the groups it manages by name (migrations/state/0009_groups.sql).
use super::Cached as _;
use rusqlite::{params, OptionalExtension};

use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{EntraObjectId, PlummUserId, TenantId};

/// A membership the daemon made for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedMembership {
    pub group_id: String,
    /// The managed group's name; `None` for a group a rule names by id.
    pub group_name: Option<String>,
}

/// A group the daemon manages by name in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedGroup {
    pub mail_nickname: String,
    /// `None`: a create was about to be sent at `at` (its outcome unknown).
    pub group_id: Option<String>,
    pub created_by_us: bool,
    /// When the group was recorded (or its create started).
    pub at: String,
}

/// Records (or refreshes) a membership the daemon made: shared by the
/// worker's additions and the batcher's, which records inside its own
/// transaction.
pub(super) fn insert_membership(
    conn: &rusqlite::Connection,
    (user, tenant, member): (PlummUserId, &str, &str),
    group: &ManagedMembership,
) -> Result<(), StoreError> {
    conn.execute_cached(
        "INSERT INTO managed_memberships
           (plumm_user_id, tenant_id, group_id, group_name, member_id, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (plumm_user_id, tenant_id, group_id) DO UPDATE
           SET group_name = excluded.group_name, member_id = excluded.member_id",
        params![
            user.0,
            tenant,
            group.group_id,
            group.group_name,
            member,
            now_text()
        ],
    )
    .ctx("recording a managed membership")?;
    Ok(())
}

impl StateDb {
    /// The memberships the daemon made for the person's account `member`.
    pub fn memberships(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        member: &EntraObjectId,
    ) -> Result<Vec<ManagedMembership>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT group_id, group_name FROM managed_memberships
                 WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND member_id = ?3
                 ORDER BY group_id",
            )
            .ctx("reading managed memberships")?;
        let rows = stmt
            .query_map(params![user.0, tenant.as_str(), member.0], |r| {
                Ok(ManagedMembership {
                    group_id: r.get(0)?,
                    group_name: r.get(1)?,
                })
            })
            .ctx("reading managed memberships")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading managed memberships")
    }

    /// [`StateDb::memberships`], each with when it was made.
    pub fn memberships_since(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        member: &EntraObjectId,
    ) -> Result<Vec<(ManagedMembership, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT group_id, group_name, added_at FROM managed_memberships
                 WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND member_id = ?3
                 ORDER BY group_name, group_id",
            )
            .ctx("reading managed memberships")?;
        let rows = stmt
            .query_map(params![user.0, tenant.as_str(), member.0], |r| {
                let m = ManagedMembership {
                    group_id: r.get(0)?,
                    group_name: r.get(1)?,
                };
                Ok((m, r.get(2)?))
            })
            .ctx("reading managed memberships")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading managed memberships")
    }

    pub fn record_membership(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        member: &EntraObjectId,
        group: &ManagedMembership,
    ) -> Result<(), StoreError> {
        insert_membership(&self.lock(), (user, tenant.as_str(), &member.0), group)?;
        Ok(())
    }

    pub fn forget_membership(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        group_id: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "DELETE FROM managed_memberships
                 WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND group_id = ?3",
                params![user.0, tenant.as_str(), group_id],
            )
            .ctx("forgetting a managed membership")?;
        Ok(())
    }

    /// The group managed under `name` in the tenant (names compare without case).
    pub fn managed_group(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<ManagedGroup>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT mail_nickname, group_id, created_by_us, at FROM managed_groups
                 WHERE tenant_id = ?1 AND name = ?2",
                params![tenant.as_str(), name],
                |r| {
                    Ok(ManagedGroup {
                        mail_nickname: r.get(0)?,
                        group_id: r.get(1)?,
                        created_by_us: r.get(2)?,
                        at: r.get(3)?,
                    })
                },
            )
            .optional()
            .ctx("reading a managed group")
    }

    /// Records the group managed under `name`; `group_id = None` marks a
    /// create about to be sent, on disk before the request leaves.
    pub fn save_managed_group(
        &self,
        tenant: &TenantId,
        name: &str,
        mail_nickname: &str,
        group_id: Option<&str>,
        created_by_us: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        super::durably(&mut conn, "recording a managed group", |tx| {
            tx.execute_cached(
                "INSERT INTO managed_groups (tenant_id, name, mail_nickname, group_id, created_by_us, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, name) DO UPDATE
                   SET mail_nickname = excluded.mail_nickname, group_id = excluded.group_id,
                       created_by_us = excluded.created_by_us, at = excluded.at",
                params![
                    tenant.as_str(),
                    name,
                    mail_nickname,
                    group_id,
                    created_by_us,
                    now_text()
                ],
            )
            .ctx("recording a managed group")?;
            Ok(())
        })
    }

    /// Every group the daemon manages or made a membership in, in the
    /// tenant, with its name (`None` for a group named by id).
    pub fn tenant_groups(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT group_id, name FROM managed_groups
                   WHERE tenant_id = ?1 AND group_id IS NOT NULL
                 UNION
                 SELECT group_id, group_name FROM managed_memberships WHERE tenant_id = ?1",
            )
            .ctx("reading managed groups")?;
        let rows = stmt
            .query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("reading managed groups")?;
        rows.collect::<Result<_, _>>().ctx("reading managed groups")
    }

    /// Forgets a create that Graph refused (it made nothing).
    pub fn drop_group_intent(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "DELETE FROM managed_groups
                 WHERE tenant_id = ?1 AND name = ?2 AND group_id IS NULL",
                params![tenant.as_str(), name],
            )
            .ctx("forgetting a refused group create")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_state as db;

    #[test]
    fn memberships_are_read_for_the_linked_account_and_go_with_the_link() {
        let db = db();
        let t = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let (user, now, before) = (
            PlummUserId(7),
            EntraObjectId("new".into()),
            EntraObjectId("old".into()),
        );
        let g = |id: &str, name: Option<&str>| ManagedMembership {
            group_id: id.into(),
            group_name: name.map(str::to_string),
        };
        db.record_membership(user, &t, &now, &g("b", Some("All staff")))
            .unwrap();
        db.record_membership(user, &t, &now, &g("a", None)).unwrap();
        db.record_membership(PlummUserId(8), &t, &before, &g("c", None))
            .unwrap();
        let got = db.memberships(user, &t, &now).unwrap();
        assert_eq!(got, [g("a", None), g("b", Some("All staff"))]);
        assert!(db.memberships(user, &t, &before).unwrap().is_empty());
        db.forget_membership(user, &t, "a").unwrap();
        assert_eq!(db.memberships(user, &t, &now).unwrap().len(), 1);
        db.remove_link(user).unwrap();
        assert!(db.memberships(user, &t, &now).unwrap().is_empty());
        assert_eq!(
            db.memberships(PlummUserId(8), &t, &before).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_group_create_is_an_intent_until_its_id_is_known() {
        let db = db();
        let t = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        db.save_managed_group(&t, "All staff", "plumm-allstaff-1", None, true)
            .unwrap();
        let intent = db.managed_group(&t, "all STAFF").unwrap().unwrap();
        assert_eq!(intent.group_id, None, "names compare without case");
        db.drop_group_intent(&t, "All staff").unwrap();
        assert_eq!(db.managed_group(&t, "All staff").unwrap(), None);
        db.save_managed_group(&t, "All staff", "plumm-allstaff-1", Some("g1"), true)
            .unwrap();
        db.drop_group_intent(&t, "All staff").unwrap();
        let known = db.managed_group(&t, "All staff").unwrap().unwrap();
        assert_eq!(
            known.group_id.as_deref(),
            Some("g1"),
            "only intents are dropped"
        );
        assert!(known.created_by_us);
    }
}
