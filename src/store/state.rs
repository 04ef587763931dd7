//! The daemon's state database: connections, links, pending work, parked
//! users. Each method is one short transaction.
use super::Cached as _;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, OptionalExtension};

use super::{now_text, Context, StoreError};
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};
use crate::pacing::Priority;
use crate::plan::Props;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub company: CompanyId,
    pub tenant: TenantId,
    pub connected_at: String,
    pub connected_by: Option<String>,
}

/// A tenant whose work is held until it accepts the app again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    pub company: CompanyId,
    pub tenant: TenantId,
    pub since: String,
    pub reason: String,
    pub next_probe_at: String,
    pub probes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub tenant: TenantId,
    pub entra_id: EntraObjectId,
    /// What Entra holds for the properties we manage, as far as we know.
    pub pushed: Props,
    pub upn_fallback: bool,
    pub created_by_us: bool,
    pub linked_at: String,
    /// A write's outcome is unknown: read Entra before trusting `pushed`.
    pub verify_first: bool,
    /// Suspended, but the sign-in sessions are not revoked yet.
    pub revoke_owed: bool,
}

/// A create sent (or about to be) whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: i64,
    pub user: PlummUserId,
    pub company: CompanyId,
    pub tenant: TenantId,
    pub upn: String,
    pub mail: String,
    pub created_at: String,
}

/// How a create intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentOutcome {
    /// Its account is linked (the row goes).
    Linked,
    /// Graph refused the create: nothing exists (the row goes).
    Refused,
    /// Lookups by its identifiers found nothing after `replication_timeout`.
    Absent,
    /// The person left before it could be looked up (its tenant was
    /// disconnected): no later person with the same id may inherit it.
    Left,
}

impl IntentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentOutcome::Linked => "linked",
            IntentOutcome::Refused => "refused",
            IntentOutcome::Absent => "absent",
            IntentOutcome::Left => "left",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Upsert,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub kind: PendingKind,
    pub snapshot: String,
    pub seq: i64,
    pub priority: Priority,
    pub attempts: i64,
    pub first_queued_at: String,
    /// A listing of the tenant just showed no Entra user with this email.
    pub absent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Parked {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub email: String,
    pub reason: String,
    pub parked_at: String,
}

/// One change to record as pending.
#[derive(Debug, Clone)]
pub struct Enqueue {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub kind: PendingKind,
    pub snapshot: String,
    pub priority: Priority,
    /// See `PendingEntry::absent`.
    pub absent: bool,
}

fn connection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Connection> {
    Ok(Connection {
        company: CompanyId(r.get(0)?),
        tenant: tenant(r.get(1)?)?,
        connected_at: r.get(2)?,
        connected_by: r.get(3)?,
    })
}

pub struct StateDb {
    conn: Mutex<rusqlite::Connection>,
}

pub(crate) fn tenant(raw: String) -> rusqlite::Result<TenantId> {
    TenantId::parse(&raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl StateDb {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::from_connection(super::open(path)?))
    }

    pub fn from_connection(conn: rusqlite::Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
        }
    }

    /// Calls are short single-row statements or small transactions in WAL
    /// mode, so async callers take the lock directly. A panic elsewhere
    /// never poisons the database for everyone: SQLite's own transactions
    /// keep it consistent, so the guard is recovered.
    pub(crate) fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached("PRAGMA data_version", [], |r| r.get(0))
            .ctx("reading the state data_version")
    }

    // ---- connections -------------------------------------------------------

    /// Records that `company` syncs to `tenant` and queues `initial` (its
    /// users, as bulk work) in the same transaction: a crash leaves either
    /// both or neither. Refuses a tenant already connected to another
    /// company, and a company connected elsewhere.
    pub fn connect(
        &self,
        company: CompanyId,
        tenant: &TenantId,
        by: Option<&str>,
        initial: &[Enqueue],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        // IMMEDIATE: this reads then writes while other connections (the
        // daemon, the connect server) write; a deferred transaction would
        // fail with SQLITE_BUSY instead of waiting when it upgrades.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("connecting")?;
        let holder: Option<i64> = tx
            .query_row_cached(
                "SELECT company_id FROM connections WHERE tenant_id = ?1 AND status = 'connected'",
                [tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .ctx("checking the tenant")?;
        if let Some(other) = holder.filter(|c| *c != company.0) {
            return Err(StoreError::Conflict(format!(
                "tenant {tenant} is already connected to company {other}; disconnect it there first"
            )));
        }
        let current: Option<(String, String)> = tx
            .query_row_cached(
                "SELECT tenant_id, status FROM connections WHERE company_id = ?1",
                [company.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("checking the company")?;
        if let Some((t, status)) = &current {
            if status == "connected" && t != tenant.as_str() {
                return Err(StoreError::Conflict(format!(
                    "company {company} is already connected to tenant {t}; disconnect it first"
                )));
            }
        }
        let now = now_text();
        tx.execute_cached(
            "INSERT INTO connections (company_id, tenant_id, status, connected_at, connected_by, updated_at)
             VALUES (?1, ?2, 'connected', ?3, ?4, ?3)
             ON CONFLICT (company_id) DO UPDATE SET tenant_id = excluded.tenant_id,
               status = 'connected', connected_at = excluded.connected_at,
               connected_by = excluded.connected_by, updated_at = excluded.updated_at,
               quarantined_at = NULL, quarantine_reason = NULL, next_probe_at = NULL, probes = 0",
            params![company.0, tenant.as_str(), now, by],
        )
        .ctx("recording the connection")?;
        // Connecting again is how an admin hands over a permission granted
        // since: what the tenant refused for want of it is tried again.
        tx.execute_cached(
            "DELETE FROM parked_properties WHERE company_id = ?1",
            [company.0],
        )
        .ctx("recording the connection")?;
        super::pending::enqueue_in(&tx, initial)?;
        tx.commit().ctx("recording the connection")
    }

    /// The company `tenant` is connected to, if any.
    pub fn tenant_holder(&self, tenant: &TenantId) -> Result<Option<CompanyId>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT company_id FROM connections WHERE tenant_id = ?1 AND status = 'connected'",
                [tenant.as_str()],
                |r| Ok(CompanyId(r.get(0)?)),
            )
            .optional()
            .ctx("checking the tenant")
    }

    /// Stops syncing `company`: its pending work is dropped (returned, for
    /// the audit log); links and history stay for a later reconnect.
    /// Holds the company's work: its tenant refuses the app. The first
    /// probe comes after `first_probe`.
    pub fn quarantine(
        &self,
        company: CompanyId,
        reason: &str,
        first_probe: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute_cached(
                "UPDATE connections SET quarantined_at = ?2, quarantine_reason = ?3, next_probe_at = ?4,
                   probes = 0, updated_at = ?2
                 WHERE company_id = ?1 AND status = 'connected' AND quarantined_at IS NULL",
                params![company.0, now_text(), reason, first_probe],
            )
            .ctx("quarantining a tenant")?;
        Ok(n == 1)
    }

    /// A probe failed again: the next one comes at `next`.
    pub fn reschedule_probe(
        &self,
        company: CompanyId,
        reason: &str,
        next: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE connections SET quarantine_reason = ?2, next_probe_at = ?3, probes = probes + 1
                 WHERE company_id = ?1 AND quarantined_at IS NOT NULL",
                params![company.0, reason, next],
            )
            .ctx("rescheduling a probe")?;
        Ok(())
    }

    pub fn lift_quarantine(&self, company: CompanyId) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE connections SET quarantined_at = NULL, quarantine_reason = NULL,
                   next_probe_at = NULL, probes = 0, updated_at = ?2
                 WHERE company_id = ?1",
                params![company.0, now_text()],
            )
            .ctx("lifting a quarantine")?;
        Ok(())
    }

    /// Quarantined companies: (company, reason, next probe, probes so far).
    pub fn quarantined(&self) -> Result<Vec<Quarantine>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT company_id, tenant_id, quarantined_at, quarantine_reason, next_probe_at, probes
                 FROM connections WHERE status = 'connected' AND quarantined_at IS NOT NULL",
            )
            .ctx("reading quarantined tenants")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Quarantine {
                    company: CompanyId(r.get(0)?),
                    tenant: tenant(r.get(1)?)?,
                    since: r.get(2)?,
                    reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    next_probe_at: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    probes: r.get(5)?,
                })
            })
            .ctx("reading quarantined tenants")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading quarantined tenants")
    }

    pub fn disconnect(&self, company: CompanyId) -> Result<Option<usize>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("disconnecting")?;
        let n = tx
            .execute_cached(
                "UPDATE connections SET status = 'disconnected', updated_at = ?2
                 WHERE company_id = ?1 AND status = 'connected'",
                params![company.0, now_text()],
            )
            .ctx("disconnecting")?;
        if n == 0 {
            return Ok(None);
        }
        let dropped = tx
            .execute_cached("DELETE FROM pending WHERE company_id = ?1", [company.0])
            .ctx("dropping pending work")?;
        tx.commit().ctx("disconnecting")?;
        Ok(Some(dropped))
    }

    pub fn connection(&self, company: CompanyId) -> Result<Option<Connection>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT company_id, tenant_id, connected_at, connected_by FROM connections
                 WHERE company_id = ?1 AND status = 'connected'",
                [company.0],
                connection_row,
            )
            .optional()
            .ctx("reading a connection")
    }

    pub fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT company_id, tenant_id, connected_at, connected_by FROM connections
                 WHERE status = 'connected' ORDER BY company_id",
            )
            .ctx("reading connections")?;
        let rows = stmt
            .query_map([], connection_row)
            .ctx("reading connections")?;
        rows.collect::<Result<_, _>>().ctx("reading connections")
    }
}
