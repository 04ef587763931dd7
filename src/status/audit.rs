//! The audit log as an operator reads it: one line per row.
use crate::store::AuditRow;

/// A plain-text table, one row per audit entry, widest-first columns last.
pub fn audit_table(rows: &[AuditRow]) -> String {
    if rows.is_empty() {
        return "no audit rows match\n".into();
    }
    let mut out = format!(
        "{:<24} {:>7} {:>6} {:<28} {:<10} {:<8} {:>4}  {}\n",
        "time", "company", "user", "email", "action", "outcome", "http", "details"
    );
    for r in rows {
        let mut details = Vec::new();
        if let Some(c) = &r.error_code {
            details.push(c.clone());
        }
        if let Some(m) = &r.error_message {
            details.push(m.clone());
        }
        if let Some(d) = &r.detail {
            details.push(d.clone());
        }
        if let Some(id) = &r.request_id {
            details.push(format!("request-id {id}"));
        }
        out.push_str(&format!(
            "{:<24} {:>7} {:>6} {:<28} {:<10} {:<8} {:>4}  {}\n",
            r.at,
            r.company_id.map(|c| c.to_string()).unwrap_or_default(),
            r.plumm_user_id.map(|c| c.to_string()).unwrap_or_default(),
            r.email.clone().unwrap_or_default(),
            r.action,
            r.outcome,
            r.http_status.map(|c| c.to_string()).unwrap_or_default(),
            details.join(" | ")
        ));
    }
    out
}
