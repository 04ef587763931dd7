//! The licence errors Entra reports on the people the daemon manages, as
//! the last full resync listed them (migrations/state/0014_licence_errors.sql).
use rusqlite::params;
use serde::Serialize;

use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, LicenceError, PlummUserId, TenantId};

/// One person's licence errors as a listing showed them, each with the
/// name of the managed group it comes from (when the daemon manages it by name).
pub struct ListedLicences<'a> {
    pub user: PlummUserId,
    pub errors: Vec<(&'a LicenceError, Option<&'a str>)>,
}

/// A licence error as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceErrorRow {
    pub user: i64,
    pub sku_id: String,
    /// `None` for a licence assigned directly.
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub state: String,
    pub error: String,
    /// Entra's `lastUpdatedDateTime`.
    pub entra_updated_at: Option<String>,
    /// When a resync first saw it.
    pub since: String,
}

/// Where a licence comes from, as a person reads it: `from group "Name"
/// (id)`, `from group id`, or `assigned directly`.
pub fn licence_source(group_id: Option<&str>, group_name: Option<&str>) -> String {
    match (group_id, group_name) {
        (Some(id), Some(name)) => format!("from group \"{name}\" ({id})"),
        (Some(id), None) => format!("from group {id}"),
        (None, _) => "assigned directly".into(),
    }
}

/// A licence error that appeared (or cleared) for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceChange {
    pub row: LicenceErrorRow,
    pub appeared: bool,
}

/// A company's people in error, by error, product and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceErrorCount {
    pub error: String,
    pub sku_id: String,
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub people: i64,
}

fn row(user: i64, r: &rusqlite::Row<'_>) -> rusqlite::Result<LicenceErrorRow> {
    let group: String = r.get(1)?;
    Ok(LicenceErrorRow {
        user,
        sku_id: r.get(0)?,
        group_id: (!group.is_empty()).then_some(group),
        group_name: r.get(2)?,
        state: r.get(3)?,
        error: r.get(4)?,
        entra_updated_at: r.get(5)?,
        since: r.get(6)?,
    })
}

const COLUMNS: &str = "sku_id, group_id, group_name, state, error, entra_updated_at, since";

fn read(
    conn: &rusqlite::Connection,
    user: PlummUserId,
) -> Result<Vec<LicenceErrorRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM licence_errors WHERE plumm_user_id = ?1 ORDER BY sku_id, group_id"
        ))
        .ctx("reading licence errors")?;
    let rows = stmt
        .query_map([user.0], |r| row(user.0, r))
        .ctx("reading licence errors")?;
    rows.collect::<Result<_, _>>().ctx("reading licence errors")
}

/// Where a row sits: person, product and group ('' when assigned directly).
fn same(a: &LicenceErrorRow, sku: &str, group: Option<&str>, error: &str) -> bool {
    a.sku_id == sku && a.group_id.as_deref() == group && a.error == error
}

/// One person's rows replaced by what was listed, in `tx`; what changed is
/// pushed to `changes`.
fn replace_person(
    tx: &rusqlite::Transaction<'_>,
    (company, tenant, now): (CompanyId, &TenantId, &str),
    p: &ListedLicences<'_>,
    changes: &mut Vec<LicenceChange>,
) -> Result<(), StoreError> {
    let before = read(tx, p.user)?;
    for old in &before {
        let listed = p
            .errors
            .iter()
            .any(|(e, _)| same(old, &e.sku_id, e.group_id.as_deref(), &e.error));
        if !listed {
            tx.execute(
                "DELETE FROM licence_errors WHERE plumm_user_id = ?1 AND sku_id = ?2 AND group_id = ?3",
                params![p.user.0, old.sku_id, old.group_id.as_deref().unwrap_or("")],
            )
            .ctx("recording licence errors")?;
            changes.push(LicenceChange {
                row: old.clone(),
                appeared: false,
            });
        }
    }
    for (e, name) in &p.errors {
        tx.execute(
            "INSERT INTO licence_errors (plumm_user_id, company_id, tenant_id, sku_id, group_id,
               group_name, state, error, entra_updated_at, since, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT (plumm_user_id, sku_id, group_id) DO UPDATE SET
               company_id = excluded.company_id, tenant_id = excluded.tenant_id,
               group_name = excluded.group_name, state = excluded.state,
               entra_updated_at = excluded.entra_updated_at, checked_at = excluded.checked_at",
            params![
                p.user.0,
                company.0,
                tenant.as_str(),
                e.sku_id,
                e.group_id.as_deref().unwrap_or(""),
                name,
                e.state,
                e.error,
                e.updated_at,
                now
            ],
        )
        .ctx("recording licence errors")?;
        if !before
            .iter()
            .any(|o| same(o, &e.sku_id, e.group_id.as_deref(), &e.error))
        {
            let row = LicenceErrorRow {
                user: p.user.0,
                sku_id: e.sku_id.clone(),
                group_id: e.group_id.clone(),
                group_name: name.map(str::to_string),
                state: e.state.clone(),
                error: e.error.clone(),
                entra_updated_at: e.updated_at.clone(),
                since: now.to_string(),
            };
            changes.push(LicenceChange {
                row,
                appeared: true,
            });
        }
    }
    Ok(())
}

impl StateDb {
    /// Replaces each listed person's licence errors with what the listing
    /// showed (none: cleared), in one transaction; returns what appeared
    /// and what cleared. An error still there keeps when it was first
    /// seen; one whose kind changed clears and appears anew.
    pub fn replace_licence_errors(
        &self,
        company: CompanyId,
        tenant: &TenantId,
        listed: &[ListedLicences<'_>],
    ) -> Result<Vec<LicenceChange>, StoreError> {
        let (mut conn, now) = (self.lock(), now_text());
        let tx = conn.transaction().ctx("recording licence errors")?;
        let mut changes = Vec::new();
        for p in listed {
            replace_person(&tx, (company, tenant, &now), p, &mut changes)?;
        }
        tx.commit().ctx("recording licence errors")?;
        Ok(changes)
    }

    /// Drops the company's licence errors no listing refreshed since
    /// `before` (the person's account was not listed, or licences were not
    /// read); returns how many.
    pub fn sweep_licence_errors(
        &self,
        company: CompanyId,
        before: &str,
    ) -> Result<usize, StoreError> {
        self.lock()
            .execute(
                "DELETE FROM licence_errors WHERE company_id = ?1 AND checked_at < ?2",
                params![company.0, before],
            )
            .ctx("dropping stale licence errors")
    }

    /// A person's licence errors, by product and group.
    pub fn licence_errors(&self, user: PlummUserId) -> Result<Vec<LicenceErrorRow>, StoreError> {
        read(&self.lock(), user)
    }

    /// How many of the company's people have a licence error.
    pub fn licence_error_people(&self, company: CompanyId) -> Result<i64, StoreError> {
        self.lock()
            .query_row(
                "SELECT COUNT(DISTINCT plumm_user_id) FROM licence_errors WHERE company_id = ?1",
                [company.0],
                |r| r.get(0),
            )
            .ctx("counting licence errors")
    }

    /// How many of the company's people have a licence error, and the
    /// errors by kind, product and group (most people first).
    pub fn licence_error_counts(
        &self,
        company: CompanyId,
    ) -> Result<(i64, Vec<LicenceErrorCount>), StoreError> {
        let people = self.licence_error_people(company)?;
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT error, sku_id, group_id, MAX(group_name), COUNT(DISTINCT plumm_user_id) AS n
                 FROM licence_errors WHERE company_id = ?1
                 GROUP BY error, sku_id, group_id ORDER BY n DESC, error, sku_id, group_id",
            )
            .ctx("counting licence errors")?;
        let rows = stmt
            .query_map([company.0], |r| {
                let group: String = r.get(2)?;
                Ok(LicenceErrorCount {
                    error: r.get(0)?,
                    sku_id: r.get(1)?,
                    group_id: (!group.is_empty()).then_some(group),
                    group_name: r.get(3)?,
                    people: r.get(4)?,
                })
            })
            .ctx("counting licence errors")?;
        let counts = rows
            .collect::<Result<_, _>>()
            .ctx("counting licence errors")?;
        Ok((people, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_state as db;

    fn err(sku: &str, group: Option<&str>, error: &str) -> LicenceError {
        LicenceError {
            sku_id: sku.into(),
            group_id: group.map(str::to_string),
            state: "Error".into(),
            error: error.into(),
            updated_at: None,
        }
    }

    #[test]
    fn a_listing_replaces_a_persons_errors_and_a_sweep_drops_those_not_refreshed() {
        let db = db();
        let t = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let (c, ada, bo) = (CompanyId(1), PlummUserId(7), PlummUserId(8));
        let (e3, direct) = (
            err("e3", Some("g1"), "CountViolation"),
            err("e5", None, "Other"),
        );
        let first = [
            ListedLicences {
                user: ada,
                errors: vec![(&e3, Some("Licence E3")), (&direct, None)],
            },
            ListedLicences {
                user: bo,
                errors: vec![(&e3, Some("Licence E3"))],
            },
        ];
        let changes = db.replace_licence_errors(c, &t, &first).unwrap();
        assert_eq!(changes.iter().filter(|c| c.appeared).count(), 3);
        let (people, counts) = db.licence_error_counts(c).unwrap();
        assert_eq!(people, 2);
        assert_eq!(
            (counts[0].error.as_str(), counts[0].people),
            ("CountViolation", 2)
        );
        assert_eq!(counts[0].group_name.as_deref(), Some("Licence E3"));
        let since = db.licence_errors(ada).unwrap()[0].since.clone();

        // Again, one gone: only that one clears, the other keeps its start.
        // Bo's rows from an earlier run (timestamps have milliseconds).
        db.lock()
            .execute(
                "UPDATE licence_errors SET checked_at = '2000-01-01T00:00:00.000Z' WHERE plumm_user_id = 8",
                [],
            )
            .unwrap();
        let mark = now_text();
        let again = [ListedLicences {
            user: ada,
            errors: vec![(&e3, Some("Licence E3"))],
        }];
        let changes = db.replace_licence_errors(c, &t, &again).unwrap();
        assert_eq!(changes.len(), 1);
        assert!(!changes[0].appeared && changes[0].row.group_id.is_none());
        let rows = db.licence_errors(ada).unwrap();
        assert_eq!((rows.len(), rows[0].since.as_str()), (1, since.as_str()));
        // Bo was not listed this time: swept.
        assert_eq!(db.sweep_licence_errors(c, &mark).unwrap(), 1);
        assert!(db.licence_errors(bo).unwrap().is_empty());
        assert_eq!(db.licence_errors(ada).unwrap().len(), 1);
        db.remove_link(ada).unwrap();
        assert!(
            db.licence_errors(ada).unwrap().is_empty(),
            "gone with the link"
        );
    }
}
