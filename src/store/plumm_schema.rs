//! Plumm's `users` table as it is: the contract's columns plus whatever else
//! Plumm keeps (`employee_number`, `phone`, ...). The columns are discovered
//! with `PRAGMA table_info`, and the outbox triggers are generated from them,
//! so a snapshot carries every column. SQLite triggers cannot enumerate a
//! row's columns themselves, so when Plumm adds one the triggers are rebuilt
//! (by `migrate`, at start and on reload), in one transaction with the
//! discovery: no Plumm write falls between the old triggers and the new.
use rusqlite::{Connection, TransactionBehavior};

use super::{Context, StoreError};
use crate::domain::PlummUser;

const OPS: [(&str, &str, &str); 3] = [
    ("entra_outbox_users_insert", "INSERT", "NEW"),
    ("entra_outbox_users_update", "UPDATE", "NEW"),
    ("entra_outbox_users_delete", "DELETE", "OLD"),
];

/// SQLite caps a function's arguments (`SQLITE_MAX_FUNCTION_ARG`, 127 by
/// default): a wide table's snapshot is built in chunks of this many columns.
const PAIRS_PER_CALL: usize = 50;

/// The columns of Plumm's `users` table, in table order; an error names the
/// contract columns it lacks. A name with a `"` in it cannot be a JSON path
/// key in SQLite, so such a column (none is sensible) is left out.
pub fn user_columns(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('users') ORDER BY cid")
        .ctx("reading the columns of Plumm's users table")?;
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .ctx("reading the columns of Plumm's users table")?
        .collect::<Result<_, _>>()
        .ctx("reading the columns of Plumm's users table")?;
    let missing: Vec<&str> = PlummUser::COLUMNS
        .iter()
        .copied()
        .filter(|c| !columns.iter().any(|have| have == c))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::Schema(format!(
            "Plumm's users table lacks the column(s) {}, which entra-daemon needs; it has: {}",
            missing.join(", "),
            columns.join(", ")
        )));
    }
    Ok(columns.into_iter().filter(|c| !c.contains('"')).collect())
}

/// Rebuilds the outbox triggers when they do not carry exactly the table's
/// columns; returns the columns. Run after the migrations.
pub fn refresh_triggers(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("refreshing the outbox triggers")?;
    let columns = user_columns(&tx)?;
    for (name, event, row) in OPS {
        let wanted = trigger_sql(name, event, row, &columns);
        let stored: Option<String> = tx
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [name],
                |r| r.get(0),
            )
            .ok();
        if stored.as_deref() == Some(wanted.as_str()) {
            continue;
        }
        tx.execute_batch(&format!("DROP TRIGGER IF EXISTS {name}; {wanted};"))
            .ctx("refreshing the outbox triggers")?;
    }
    tx.commit().ctx("refreshing the outbox triggers")?;
    Ok(columns)
}

/// One trigger, exactly as SQLite stores its text (so an unchanged table is
/// recognised and nothing is rewritten).
fn trigger_sql(name: &str, event: &str, row: &str, columns: &[String]) -> String {
    let op = event.to_ascii_lowercase();
    format!(
        "CREATE TRIGGER {name}\nAFTER {event} ON users\nBEGIN\n  \
         INSERT INTO entra_outbox (user_id, company_id, op, snapshot)\n  \
         VALUES ({row}.id, {row}.company_id, '{op}', {});\nEND",
        snapshot_expr(row, columns)
    )
}

/// `json_object(...)` over every column, continued with `json_set` for a
/// table wider than one call takes. Another column's BLOB becomes NULL:
/// `json_object` refuses a BLOB, and that would fail Plumm's own write.
fn snapshot_expr(row: &str, columns: &[String]) -> String {
    let value = |c: &str| {
        let col = format!("{row}.\"{c}\"");
        match PlummUser::is_contract_column(c) {
            true => col,
            false => format!("CASE WHEN typeof({col}) = 'blob' THEN NULL ELSE {col} END"),
        }
    };
    let quote = |s: &str| s.replace('\'', "''");
    let mut chunks = columns.chunks(PAIRS_PER_CALL);
    let first: Vec<String> = chunks
        .next()
        .unwrap_or_default()
        .iter()
        .map(|c| format!("'{}', {}", quote(c), value(c)))
        .collect();
    let mut expr = format!("json_object({})", first.join(", "));
    for chunk in chunks {
        let pairs: Vec<String> = chunk
            .iter()
            .map(|c| format!("'$.\"{}\"', {}", quote(c), value(c)))
            .collect();
        expr = format!("json_set({expr}, {})", pairs.join(", "));
    }
    expr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate::{migrate_plumm, PLUMM_USERS_FIXTURE};

    fn plumm() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(PLUMM_USERS_FIXTURE).unwrap();
        migrate_plumm(&mut conn).unwrap();
        conn
    }

    fn last_snapshot(conn: &Connection) -> serde_json::Value {
        let s: String = conn
            .query_row(
                "SELECT snapshot FROM entra_outbox ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&s).unwrap()
    }

    fn trigger_text(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_column_plumm_adds_reaches_the_snapshot_after_a_refresh() {
        let mut conn = plumm();
        conn.execute_batch(
            "ALTER TABLE users ADD COLUMN employee_number TEXT;
             ALTER TABLE users ADD COLUMN manager_id INTEGER;
             ALTER TABLE users ADD COLUMN avatar BLOB;",
        )
        .unwrap();
        let columns = refresh_triggers(&mut conn).unwrap();
        assert!(columns.ends_with(&[
            "employee_number".into(),
            "manager_id".into(),
            "avatar".into()
        ]));
        conn.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, employee_number, manager_id, avatar)
             VALUES (1, 'a@contoso.com', 'A', 'B', 'E-1', 9, x'00ff')",
            [],
        )
        .unwrap();
        let snap = last_snapshot(&conn);
        assert_eq!(snap["employee_number"], "E-1");
        assert_eq!(snap["manager_id"], 9);
        assert!(snap["avatar"].is_null(), "{snap}");
        conn.execute("DELETE FROM users", []).unwrap();
        assert_eq!(last_snapshot(&conn)["employee_number"], "E-1");
    }

    #[test]
    fn an_unchanged_table_keeps_its_triggers_and_a_wide_one_is_chunked() {
        let mut conn = plumm();
        let before = trigger_text(&conn);
        refresh_triggers(&mut conn).unwrap();
        assert_eq!(trigger_text(&conn), before);
        for i in 0..130 {
            conn.execute_batch(&format!("ALTER TABLE users ADD COLUMN c{i} TEXT"))
                .unwrap();
        }
        refresh_triggers(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, c129) VALUES (1, 'w@x.com', 'W', 'X', 'last')",
            [],
        )
        .unwrap();
        let snap = last_snapshot(&conn);
        assert_eq!(snap["c129"], "last");
        assert_eq!(snap["email"], "w@x.com");
    }

    #[test]
    fn a_table_without_a_contract_column_is_refused_naming_it() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
            .unwrap();
        let err = user_columns(&conn).unwrap_err().to_string();
        assert!(err.contains("company_id"), "{err}");
        assert!(err.contains("it has: id, email"), "{err}");
    }
}
