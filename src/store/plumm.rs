//! Plumm's database: the daemon reads the outbox and Plumm's users, and
//! writes nothing but the removal of outbox rows it has safely recorded.
use super::Cached as _;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Context, StoreError};
use crate::domain::{CompanyId, PlummStatus, PlummUser, PlummUserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub user_id: PlummUserId,
    pub company_id: CompanyId,
    /// 'insert', 'update' or 'delete'.
    pub op: String,
    pub snapshot: String,
    pub created_at: String,
}

pub struct PlummDb {
    conn: Connection,
}

impl PlummDb {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: super::open(path)?,
        })
    }

    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Changes whenever another connection commits to the file: sampling it
    /// is how the daemon wakes within milliseconds without re-reading tables
    /// (sqlite.org/pragma.html#pragma_data_version).
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row_cached("PRAGMA data_version", [], |r| r.get(0))
            .ctx("reading Plumm's data_version")
    }

    /// Outbox rows after `cursor`, oldest first.
    pub fn read_outbox(&self, cursor: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, user_id, company_id, op, snapshot, created_at FROM entra_outbox
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .ctx("reading the outbox")?;
        let rows = stmt
            .query_map(params![cursor, limit as i64], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    user_id: PlummUserId(r.get(1)?),
                    company_id: CompanyId(r.get(2)?),
                    op: r.get(3)?,
                    snapshot: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .ctx("reading the outbox")?;
        rows.collect::<Result<_, _>>().ctx("reading the outbox")
    }

    /// Removes rows the state database has recorded (ids up to `cursor`)
    /// and moves the hand-over watermark to `cursor`, in one transaction.
    pub fn consume_outbox(&mut self, cursor: i64) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("consuming the outbox")?;
        let n = tx
            .execute_cached("DELETE FROM entra_outbox WHERE id <= ?1", [cursor])
            .ctx("consuming the outbox")?;
        set_watermark(&tx, cursor)?;
        tx.commit().ctx("consuming the outbox")?;
        Ok(n)
    }

    /// The highest outbox id SQLite ever handed out (`AUTOINCREMENT` keeps
    /// it in `sqlite_sequence`); 0 before the first row.
    pub fn outbox_sequence(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row_cached(
                "SELECT seq FROM sqlite_sequence WHERE name = 'entra_outbox'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .ctx("reading the outbox's sequence")
    }

    /// The last outbox row handed over to a state database (`None` before
    /// the first hand-over).
    pub fn handover_watermark(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row_cached("SELECT cursor FROM entra_handover WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .ctx("reading the hand-over watermark")
    }

    pub fn set_handover_watermark(&self, cursor: i64) -> Result<(), StoreError> {
        set_watermark(&self.conn, cursor)
    }

    /// Rows after `cursor` (not yet recorded by the daemon): the outbox's
    /// backlog. Recorded rows may stay a moment before they are deleted.
    pub fn outbox_waiting(&self, cursor: i64) -> Result<i64, StoreError> {
        self.conn
            .query_row_cached(
                "SELECT COUNT(*) FROM entra_outbox WHERE id > ?1",
                [cursor],
                |r| r.get(0),
            )
            .ctx("measuring the outbox")
    }

    /// Whether any outbox row is after `cursor`: one index probe, where
    /// [`PlummDb::outbox_waiting`] counts them all.
    pub fn outbox_has_after(&self, cursor: i64) -> Result<bool, StoreError> {
        self.conn
            .query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM entra_outbox WHERE id > ?1)",
                [cursor],
                |r| r.get(0),
            )
            .ctx("measuring the outbox")
    }

    /// Rows in the outbox, and the creation time of the oldest.
    pub fn outbox_depth(&self) -> Result<(i64, Option<String>), StoreError> {
        self.conn
            .query_row_cached(
                "SELECT COUNT(*), MIN(created_at) FROM entra_outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("measuring the outbox")
    }

    /// Every user of a company, for an initial sync after connecting.
    pub fn company_users(&self, company: CompanyId) -> Result<Vec<PlummUser>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE company_id = ?1 ORDER BY id"
            ))
            .ctx("reading Plumm's users")?;
        let rows = stmt
            .query_map([company.0], user_from_row)
            .ctx("reading Plumm's users")?;
        rows.collect::<Result<_, _>>().ctx("reading Plumm's users")
    }

    /// The company's users whose email (case-insensitive) is among `keys`
    /// (lower-case), for matching a page of Entra users.
    pub fn company_users_by_email(
        &self,
        company: CompanyId,
        keys: &[String],
    ) -> Result<Vec<PlummUser>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(900) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE company_id = ? AND lower(email) IN ({marks})"
            );
            let mut stmt = self.conn.prepare(&sql).ctx("matching Plumm users")?;
            let params = std::iter::once(rusqlite::types::Value::from(company.0)).chain(
                chunk
                    .iter()
                    .map(|k| rusqlite::types::Value::from(k.clone())),
            );
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), user_from_row)
                .ctx("matching Plumm users")?;
            for r in rows {
                out.push(r.ctx("matching Plumm users")?);
            }
        }
        Ok(out)
    }

    pub fn user(&self, id: PlummUserId) -> Result<Option<PlummUser>, StoreError> {
        self.conn
            .query_row_cached(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id.0],
                user_from_row,
            )
            .optional()
            .ctx("reading a Plumm user")
    }
}

fn set_watermark(conn: &Connection, cursor: i64) -> Result<(), StoreError> {
    conn.execute_cached(
        "UPDATE entra_handover SET cursor = ?1, updated_at = ?2 WHERE id = 1",
        params![cursor, super::now_text()],
    )
    .ctx("moving the hand-over watermark")?;
    Ok(())
}

/// Every column: the contract's, and whatever else Plumm's table has
/// (templates may read any of them).
pub(crate) const USER_COLUMNS: &str = "*";

pub(crate) fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PlummUser> {
    let status: String = r.get("status")?;
    let mut extra = std::collections::BTreeMap::new();
    for (i, name) in r.as_ref().column_names().enumerate() {
        if !PlummUser::is_contract_column(name) {
            extra.insert(name.to_string(), text(r.get_ref(i)?));
        }
    }
    let has_updated_at = r.as_ref().column_index("updated_at").is_ok();
    Ok(PlummUser {
        id: PlummUserId(r.get("id")?),
        company_id: CompanyId(r.get("company_id")?),
        email: r.get("email")?,
        first_name: r.get("first_name")?,
        last_name: r.get("last_name")?,
        role: r.get("role")?,
        department: r.get("department")?,
        location: r.get("location")?,
        country: r.get("country")?,
        // The table's CHECK constraint allows only these two.
        status: if status == "inactive" {
            PlummStatus::Inactive
        } else {
            PlummStatus::Active
        },
        updated_at: match has_updated_at {
            true => r.get("updated_at")?,
            false => None,
        },
        extra,
    })
}

/// Another column's value as a template reads it: SQLite's dynamic types
/// as text, as the outbox snapshot has them; a BLOB as no value (the
/// triggers leave it out too).
fn text(v: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => {
            Some(serde_json::Number::from_f64(f).map_or(f.to_string(), |n| n.to_string()))
        }
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}
