//! In-process control and inspection, and its HTTP twin under `/_emulator`.
//! Control calls need no token, are never throttled and are not logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::config::{AppRegistration, TenantSpec};
use super::errors::Body;
use super::state::{Shared, Tenant, UserRecord};
use super::types::{EmulatedUser, Fault, LoggedRequest, SeedUser, Traffic};
use super::user_props;
use super::util::new_guid;
use super::EmulatorError;

/// Cheap to clone; all clones see the same emulator.
#[derive(Clone)]
pub struct EmulatorControl {
    pub(crate) shared: Arc<Shared>,
}

pub(super) fn graph_error_text(r: &super::errors::GraphResp) -> String {
    match &r.body {
        Body::Error { code, message, .. } => format!("{code}: {message}"),
        _ => format!("status {}", r.status),
    }
}

impl EmulatorControl {
    pub fn add_tenant(&self, spec: TenantSpec) -> Result<(), EmulatorError> {
        let mut inner = self.shared.lock();
        if inner.tenant_by_id(&spec.id).is_some() {
            return Err(EmulatorError::Invalid(format!(
                "tenant {} already exists",
                spec.id
            )));
        }
        inner.tenants.push(Tenant::new(spec));
        Ok(())
    }

    pub fn tenants(&self) -> Vec<TenantSpec> {
        self.shared
            .lock()
            .tenants
            .iter()
            .map(|t| t.spec.clone())
            .collect()
    }

    /// Withdrawing consent makes the token endpoint refuse the tenant; the
    /// tokens already issued keep working until they expire (see
    /// [`Self::expire_tokens`]), unless `revoke_tokens_with_consent` is set.
    pub fn set_consent(&self, tenant: &str, consented: bool) -> Result<(), EmulatorError> {
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        t.spec.consented = consented;
        Ok(())
    }

    /// The admin grants or removes application permissions: tokens issued
    /// from now on carry these roles, those already issued keep theirs.
    pub fn set_permissions(&self, tenant: &str, roles: Vec<String>) -> Result<(), EmulatorError> {
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        t.spec.permissions = roles;
        Ok(())
    }

    /// The tenant's access tokens reach the end of their lifetime now (an
    /// hour passing, for tests), so the next call needs a new token.
    pub fn expire_tokens(&self, tenant: &str) {
        let now = std::time::Instant::now();
        let mut inner = self.shared.lock();
        for t in inner.tokens.values_mut() {
            if t.tenant_id.eq_ignore_ascii_case(tenant) {
                t.expires_at = t.expires_at.min(now);
            }
        }
    }

    /// Registers (or replaces) an app.
    pub fn add_app(&self, app: AppRegistration) {
        self.shared
            .lock()
            .apps
            .insert(app.client_id.to_lowercase(), app);
    }

    /// Puts a user straight into the directory (visible at once). Verified
    /// domain and uniqueness rules still apply.
    pub fn seed_user(&self, tenant: &str, user: SeedUser) -> Result<String, EmulatorError> {
        let mut inner = self.shared.lock();
        let seq = inner.next_user_seq();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        let nickname = user.mail_nickname.clone().unwrap_or_else(|| {
            user.user_principal_name
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string()
        });
        let mut body = Map::new();
        body.insert("userPrincipalName".into(), json!(user.user_principal_name));
        body.insert("mailNickname".into(), json!(nickname));
        body.insert(
            "accountEnabled".into(),
            json!(user.account_enabled.unwrap_or(true)),
        );
        let opt = [
            ("mail", &user.mail),
            ("displayName", &user.display_name),
            ("givenName", &user.given_name),
            ("surname", &user.surname),
            ("jobTitle", &user.job_title),
            ("department", &user.department),
            ("officeLocation", &user.office_location),
            ("usageLocation", &user.usage_location),
            ("employeeId", &user.employee_id),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        let blank = UserRecord::blank(seq, new_guid(), String::new(), String::new());
        let mut u = user_props::apply(&blank, &body, &t.spec.domains, false)
            .map_err(|r| EmulatorError::Invalid(graph_error_text(&r)))?;
        t.check_unique(&u)
            .map_err(|r| EmulatorError::Invalid(graph_error_text(&r)))?;
        u.privileged = user.privileged;
        let id = u.id.clone();
        t.users.push(u);
        Ok(id)
    }

    /// Drift made directly in Entra: Graph property names, Graph validation,
    /// plus `privileged`. Applies to any user, replicated or not.
    pub fn edit_user(&self, tenant: &str, id: &str, patch: Value) -> Result<(), EmulatorError> {
        let Value::Object(mut body) = patch else {
            return Err(EmulatorError::Invalid("patch must be a JSON object".into()));
        };
        let privileged = body.remove("privileged");
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        let current = t
            .users
            .iter()
            .find(|u| u.id.eq_ignore_ascii_case(id) && !u.is_deleted())
            .cloned()
            .ok_or_else(|| EmulatorError::UnknownUser(id.into()))?;
        let mut updated = user_props::apply(&current, &body, &t.spec.domains, false)
            .map_err(|r| EmulatorError::Invalid(graph_error_text(&r)))?;
        t.check_unique(&updated)
            .map_err(|r| EmulatorError::Invalid(graph_error_text(&r)))?;
        match privileged {
            None => {}
            Some(Value::Bool(b)) => updated.privileged = b,
            Some(_) => {
                return Err(EmulatorError::Invalid(
                    "privileged must be a boolean".into(),
                ))
            }
        }
        if let Some(slot) = t.users.iter_mut().find(|u| u.id == updated.id) {
            *slot = updated;
        }
        Ok(())
    }

    pub fn hard_delete_user(&self, tenant: &str, id: &str) -> Result<(), EmulatorError> {
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        let before = t.users.len();
        t.users.retain(|u| !u.id.eq_ignore_ascii_case(id));
        if t.users.len() == before {
            return Err(EmulatorError::UnknownUser(id.into()));
        }
        t.unlink_user(id);
        super::licensing::reconcile(t);
        Ok(())
    }

    pub fn soft_delete_user(&self, tenant: &str, id: &str) -> Result<(), EmulatorError> {
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        let u = t
            .users
            .iter_mut()
            .find(|u| u.id.eq_ignore_ascii_case(id) && !u.is_deleted())
            .ok_or_else(|| EmulatorError::UnknownUser(id.into()))?;
        u.deleted_at = Some(Utc::now());
        let id = u.id.clone();
        let left = t.unlink_user(&id);
        if let Some(u) = t.users.iter_mut().find(|u| u.id == id) {
            u.groups_at_deletion = left;
        }
        super::licensing::reconcile(t);
        Ok(())
    }

    /// Every user of the tenant, deleted and not yet replicated ones included
    /// (empty for an unknown tenant).
    pub fn users(&self, tenant: &str) -> Vec<EmulatedUser> {
        let inner = self.shared.lock();
        inner
            .tenant_by_id(tenant)
            .map(|t| t.users.iter().map(UserRecord::to_public).collect())
            .unwrap_or_default()
    }

    /// Users readable through Graph right now.
    pub fn visible_users(&self, tenant: &str) -> Vec<EmulatedUser> {
        let now = Instant::now();
        let inner = self.shared.lock();
        inner
            .tenant_by_id(tenant)
            .map(|t| {
                t.users
                    .iter()
                    .filter(|u| u.is_visible(now))
                    .map(UserRecord::to_public)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The request log in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let mut v: Vec<LoggedRequest> = self.shared.lock().log.iter().cloned().collect();
        v.sort_by_key(|r| r.seq);
        v
    }

    pub fn requests_for(&self, tenant: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.tenant
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(tenant))
            })
            .collect()
    }

    /// What reached the emulator for `tenant` so far (counted even past
    /// the request log's capacity).
    pub fn traffic(&self, tenant: &str) -> Traffic {
        let inner = self.shared.lock();
        inner.traffic.get(tenant).copied().unwrap_or_default()
    }

    /// One user by UPN (case-insensitive), without copying the tenant.
    pub fn find_user(&self, tenant: &str, upn: &str) -> Option<EmulatedUser> {
        let inner = self.shared.lock();
        let t = inner.tenant_by_id(tenant)?;
        t.users
            .iter()
            .find(|u| u.deleted_at.is_none() && u.upn.eq_ignore_ascii_case(upn))
            .map(|u| u.to_public())
    }

    /// Users (not deleted) in `tenant`.
    pub fn user_count(&self, tenant: &str) -> usize {
        let inner = self.shared.lock();
        inner.tenant_by_id(tenant).map_or(0, |t| {
            t.users.iter().filter(|u| u.deleted_at.is_none()).count()
        })
    }

    /// Every password the emulator received and every token it issued, so
    /// tests can scan a client's logs and records for leaks.
    pub fn secrets_seen(&self) -> Vec<String> {
        let inner = self.shared.lock();
        let mut out: Vec<String> = inner.tokens.keys().cloned().collect();
        for t in &inner.tenants {
            out.extend(t.users.iter().filter_map(|u| u.last_password.clone()));
        }
        out
    }

    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    pub fn inject(&self, fault: Fault) {
        if fault.count > 0 {
            self.shared.lock().faults.push_back(fault);
        }
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.iter().cloned().collect()
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Microsoft-time delay (divided by `time_scale`) before new users are readable.
    pub fn set_replication_delay(&self, d: Duration) {
        self.shared.lock().replication_delay = d;
    }

    /// Replication catches up now (time passing, for tests): every user
    /// and group created so far becomes readable and listed.
    pub fn replicate_now(&self) {
        let now = std::time::Instant::now();
        let utc = chrono::Utc::now();
        let mut inner = self.shared.lock();
        for t in &mut inner.tenants {
            let users = t
                .users
                .iter_mut()
                .map(|u| (&mut u.visible_at, &mut u.visible_at_utc));
            let groups = t
                .groups
                .iter_mut()
                .map(|g| (&mut g.visible_at, &mut g.visible_at_utc));
            for (at, at_utc) in users.chain(groups) {
                if *at > now {
                    (*at, *at_utc) = (now, utc);
                }
            }
        }
    }

    pub fn set_throttling_enabled(&self, enabled: bool) {
        self.shared.lock().limiter.set_enabled(enabled);
    }

    /// From now on another app writes `writes_per_sec` (Microsoft time) in
    /// `tenant`'s tenant-wide write budget, after spending `burst` writes
    /// at once: what a customer's other tools leave this app.
    pub fn set_foreign_load(&self, tenant: &str, writes_per_sec: f64, burst: f64) {
        let now = Instant::now();
        self.shared
            .lock()
            .limiter
            .set_foreign_load(now, tenant, writes_per_sec, burst);
    }
}

// ---- HTTP twin ---------------------------------------------------------
