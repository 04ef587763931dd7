//! What a resync's listing says of licences: Entra assigns a group's
//! licences in the background and records what it could not assign on the
//! user (`licenseAssignmentStates`, graph/api/resources/licenseassignmentstate;
//! "the errors can't be communicated to you immediately. Instead, they're
//! recorded on the user object", entra/identity/users/licensing-groups-resolve-problems).
//! The errors are Entra's to resolve; the daemon records each linked
//! person's (replaced at every resync, cleared when gone), `status` shows
//! them, and an audit row marks when one appears or clears.
use std::collections::HashMap;

use super::run::{Resync, RunOptions};
use crate::domain::{LicenceError, PlummUserId};
use crate::engine::Policy;
use crate::store::licences::{licence_source, LicenceChange, ListedLicences};
use crate::store::{AuditRecord, Outcome, StoreError, TenantConnection};

/// Group id (lower-case) -> the managed group's name (`None`: named by id).
pub(super) type GroupNames = HashMap<String, Option<String>>;

impl Resync {
    /// Whether this run reads licence states, and the names of the groups
    /// they may come from. Only when the daemon manages membership in the
    /// company (rules for it, or memberships it made in the tenant): licence
    /// errors then follow from the groups it fills, in the background,
    /// where nobody sees them; a licence an admin assigns directly reports
    /// its error at once, to the admin. Not on a dry run, which records
    /// nothing.
    pub(super) fn licence_watch(
        &self,
        conn: &TenantConnection,
        s: &Policy,
        opts: RunOptions,
    ) -> Result<Option<GroupNames>, StoreError> {
        if opts.dry_run {
            return Ok(None);
        }
        let known = self.state.tenant_groups(&conn.tenant)?;
        if !s.groups.applies_to(conn.company) && known.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            known
                .into_iter()
                .map(|(id, name)| (id.to_ascii_lowercase(), name))
                .collect(),
        ))
    }

    /// Records one page's licence errors and audits what appeared or cleared.
    pub(super) fn record_licences(
        &self,
        conn: &TenantConnection,
        names: &GroupNames,
        found: &mut Vec<(PlummUserId, String, Vec<LicenceError>)>,
    ) -> Result<(), StoreError> {
        let page = std::mem::take(found);
        if page.is_empty() {
            return Ok(());
        }
        let name = |e: &LicenceError| {
            e.group_id
                .as_ref()
                .and_then(|g| names.get(g))
                .and_then(|n| n.as_deref())
        };
        let listed: Vec<ListedLicences<'_>> = page
            .iter()
            .map(|(user, _, errors)| ListedLicences {
                user: *user,
                errors: errors.iter().map(|e| (e, name(e))).collect(),
            })
            .collect();
        let changes = self
            .state
            .replace_licence_errors(conn.company, &conn.tenant, &listed)?;
        let emails: HashMap<i64, &str> = page.iter().map(|(u, e, _)| (u.0, e.as_str())).collect();
        for c in &changes {
            let mut r = audit_row(c);
            r.company = Some(conn.company);
            r.tenant = Some(conn.tenant.clone());
            r.user = Some(PlummUserId(c.row.user));
            r.email = emails.get(&c.row.user).map(|e| e.to_string());
            self.state.append_audit(&r)?;
        }
        Ok(())
    }
}

/// `licence_error` (skipped: Entra's to resolve) or `licence_error_cleared`.
fn audit_row(c: &LicenceChange) -> AuditRecord {
    let r = &c.row;
    let source = licence_source(r.group_id.as_deref(), r.group_name.as_deref());
    if c.appeared {
        let mut a = AuditRecord::new("licence_error", Outcome::Skipped);
        a.error_code = Some(r.error.clone());
        a.detail = Some(format!(
            "Entra could not assign licence SKU {} {source} ({} {}): {}; Entra assigns the licences, \
             the daemon only the groups",
            r.sku_id,
            r.state,
            r.error,
            LicenceError::advice(&r.error)
        ));
        a
    } else {
        let mut a = AuditRecord::new("licence_error_cleared", Outcome::Ok);
        a.detail = Some(format!(
            "licence SKU {} {source} is no longer in error (was {})",
            r.sku_id, r.error
        ));
        a
    }
}
