//! Versioned, recorded, idempotent schema migrations for both databases.
use rusqlite::Connection;

use super::{Context, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const PLUMM: &[Migration] = &[
    Migration {
        version: 1,
        name: "outbox",
        sql: include_str!("../../migrations/plumm/0001_outbox.sql"),
    },
    Migration {
        version: 2,
        name: "handover",
        sql: include_str!("../../migrations/plumm/0002_handover.sql"),
    },
];

const STATE: &[Migration] = &[
    Migration {
        version: 1,
        name: "state",
        sql: include_str!("../../migrations/state/0001_state.sql"),
    },
    Migration {
        version: 2,
        name: "connect",
        sql: include_str!("../../migrations/state/0002_connect.sql"),
    },
    Migration {
        version: 3,
        name: "quarantine",
        sql: include_str!("../../migrations/state/0003_quarantine.sql"),
    },
    Migration {
        version: 4,
        name: "audit_retention",
        sql: include_str!("../../migrations/state/0004_audit_retention.sql"),
    },
    Migration {
        version: 5,
        name: "resync",
        sql: include_str!("../../migrations/state/0005_resync.sql"),
    },
    Migration {
        version: 6,
        name: "fail_closed",
        sql: include_str!("../../migrations/state/0006_fail_closed.sql"),
    },
    Migration {
        version: 7,
        name: "audit_guard",
        sql: include_str!("../../migrations/state/0007_audit_guard.sql"),
    },
    Migration {
        version: 8,
        name: "handover",
        sql: include_str!("../../migrations/state/0008_handover.sql"),
    },
    Migration {
        version: 9,
        name: "groups",
        sql: include_str!("../../migrations/state/0009_groups.sql"),
    },
    Migration {
        version: 10,
        name: "membership queue",
        sql: include_str!("../../migrations/state/0010_membership_queue.sql"),
    },
    Migration {
        version: 11,
        name: "manager",
        sql: include_str!("../../migrations/state/0011_manager.sql"),
    },
    Migration {
        version: 12,
        name: "restore",
        sql: include_str!("../../migrations/state/0012_restore.sql"),
    },
    Migration {
        version: 13,
        name: "scheduled changes",
        sql: include_str!("../../migrations/state/0013_scheduled.sql"),
    },
    Migration {
        version: 14,
        name: "licence errors",
        sql: include_str!("../../migrations/state/0014_licence_errors.sql"),
    },
];

/// Plumm's `users` table for the demo and tests (Plumm owns it in production).
pub const PLUMM_USERS_FIXTURE: &str = include_str!("../../migrations/fixtures/plumm-users.sql");

/// Applies what is missing to Plumm's database; returns the versions applied.
pub fn migrate_plumm(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    let has_users: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users')",
            [],
            |r| r.get(0),
        )
        .ctx("looking for Plumm's users table")?;
    if !has_users {
        return Err(StoreError::Schema(
            "Plumm's database has no `users` table: does [plumm] database point at Plumm's database?"
                .into(),
        ));
    }
    let applied = apply(conn, PLUMM)?;
    // The triggers follow the table as it is now, which a numbered
    // migration cannot know: Plumm may have added a column since.
    super::plumm_schema::refresh_triggers(conn)?;
    Ok(applied)
}

pub fn migrate_state(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    apply(conn, STATE)
}

/// The table is named for the daemon so it never collides with Plumm's own.
fn apply(conn: &mut Connection, migrations: &[Migration]) -> Result<Vec<i64>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS entra_daemon_migrations (
           version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .ctx("creating the migrations table")?;
    let mut applied = Vec::new();
    for m in migrations {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("starting a migration")?;
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM entra_daemon_migrations WHERE version = ?1)",
                [m.version],
                |r| r.get(0),
            )
            .ctx("reading applied migrations")?;
        if done {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|error| StoreError::Sql {
            context: "applying a migration",
            error,
        })?;
        tx.execute(
            "INSERT INTO entra_daemon_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, super::now_text()],
        )
        .ctx("recording a migration")?;
        tx.commit().ctx("committing a migration")?;
        applied.push(m.version);
    }
    Ok(applied)
}

/// The newest version known to this build and the newest applied.
pub fn is_current(conn: &Connection, plumm: bool) -> Result<bool, StoreError> {
    let latest = if plumm { PLUMM } else { STATE }
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let applied: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM entra_daemon_migrations",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    Ok(applied >= latest)
}
