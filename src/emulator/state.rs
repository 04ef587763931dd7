//! Shared in-memory state: tenants, users, groups, tokens, faults and the request log.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client_assertion::CertificateRegistry;
use super::config::{AppRegistration, EmulatorConfig, TenantSpec};
use super::consent::ConsentState;
use super::licensing::{Assignment, GroupLicence, SkuRecord};
use super::throttle::Limiter;
use super::types::{EmulatedUser, Fault, FaultKind, LoggedRequest};

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub cfg: EmulatorConfig,
    /// "http://127.0.0.1:PORT"
    pub base_url: String,
}

impl Shared {
    pub(crate) fn new(cfg: EmulatorConfig, base_url: String) -> Self {
        let inner = Inner {
            tenants: Vec::new(),
            apps: HashMap::new(),
            tokens: HashMap::new(),
            faults: VecDeque::new(),
            log: VecDeque::new(),
            next_seq: 1,
            next_user_seq: 1,
            replication_delay: Duration::from_millis(cfg.replication_delay_ms),
            limiter: Limiter::new(cfg.throttling.clone(), cfg.time_scale),
            traffic: HashMap::new(),
            consent: ConsentState::new(&cfg),
            certificates: CertificateRegistry::default(),
        };
        Self {
            inner: Mutex::new(inner),
            cfg,
            base_url,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicked handler must not wedge every later request.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn graph_base(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// How long deleted items are kept, divided by the time scale.
    pub(crate) fn deleted_retention(&self) -> Duration {
        self.scaled(Duration::from_millis(self.cfg.deleted_items_retention_ms))
    }

    /// Microsoft time divided by the time scale.
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.cfg.time_scale)
    }
}

pub(crate) struct TokenRecord {
    pub tenant_id: String,
    pub client_id: String,
    pub expires_at: Instant,
    /// App roles the token carries (the `roles` claim).
    pub roles: Vec<String>,
}

pub(crate) struct Tenant {
    pub spec: TenantSpec,
    pub users: Vec<UserRecord>,
    pub groups: Vec<GroupRecord>,
    /// The commercial subscriptions (see `licensing`).
    pub skus: Vec<SkuRecord>,
    /// A group has been given a licence: assignments are processed after
    /// every write from then on (never before, so tenants without
    /// licensing pay nothing for it).
    pub licensing_used: bool,
    /// Every user name (UPN, mail; lower-cased) a stored user has had: a
    /// superset of the live ones, so a name not in it is unique without
    /// comparing it against every user (a bench creates 100,000 of them).
    names: HashSet<String>,
}

impl Tenant {
    pub(crate) fn new(spec: TenantSpec) -> Self {
        Self {
            spec,
            users: Vec::new(),
            groups: Vec::new(),
            skus: Vec::new(),
            licensing_used: false,
            names: HashSet::new(),
        }
    }

    /// Whether `candidate` may be stored as it is (see
    /// [`super::user_props::check_unique`]); every user is stored after
    /// this said yes, which keeps `names` a superset of the live names.
    pub(crate) fn check_unique(
        &mut self,
        candidate: &UserRecord,
    ) -> Result<(), super::errors::GraphResp> {
        let lower = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
        let keys: Vec<String> = std::iter::once(lower(&candidate.upn))
            .chain(candidate.mail.as_deref().map(lower))
            .collect();
        if keys.iter().any(|k| self.names.contains(k)) {
            super::user_props::check_unique(candidate, &self.users)?;
        }
        self.names.extend(keys);
        Ok(())
    }

    /// A deleted user leaves every group it was in: Graph lists no deleted
    /// object among a group's members (graph/api/group-list-members lists
    /// directory objects, and a deleted one is no longer in the directory).
    /// It is no one's manager any more either (graph/api/user-list-manager
    /// returns directory objects, and a deleted one is not in the directory).
    /// Returns the ids of the groups it left, which a restore gives back:
    /// "The user is also restored to any groups they were a member of"
    /// (https://learn.microsoft.com/graph/api/user-delete).
    pub(crate) fn unlink_user(&mut self, user_id: &str) -> Vec<String> {
        let mut left = Vec::new();
        for g in &mut self.groups {
            let before = g.members.len();
            g.members.retain(|m| !m.eq_ignore_ascii_case(user_id));
            if g.members.len() != before {
                left.push(g.id.clone());
            }
        }
        for u in &mut self.users {
            if u.manager
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(user_id))
            {
                u.manager = None;
            }
        }
        left
    }
}

/// A security or Microsoft 365 group (graph/api/resources/group).
#[derive(Debug, Clone)]
pub(crate) struct GroupRecord {
    pub seq: u64,
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    /// `["Unified"]` for a Microsoft 365 group, empty for a security group.
    pub group_types: Vec<String>,
    /// Only Microsoft 365 groups get an address.
    pub mail: Option<String>,
    pub visibility: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Microsoft 365 groups only: security groups are deleted for good.
    pub deleted_at: Option<DateTime<Utc>>,
    pub visible_at: Instant,
    pub visible_at_utc: DateTime<Utc>,
    /// User ids, in the order they were added.
    pub members: Vec<String>,
    pub created_via_graph: bool,
    /// The licences the group assigns to its members (group-assignlicense).
    pub licences: Vec<GroupLicence>,
}

impl GroupRecord {
    pub(crate) fn is_unified(&self) -> bool {
        self.group_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("Unified"))
    }

    /// Readable through Graph: not deleted and replicated.
    pub(crate) fn is_visible(&self, now: Instant) -> bool {
        self.deleted_at.is_none() && now >= self.visible_at
    }
}

#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub seq: u64,
    pub id: String,
    pub upn: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub usage_location: Option<String>,
    pub employee_id: Option<String>,
    pub account_enabled: bool,
    pub mail_nickname: String,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub preferred_language: Option<String>,
    pub other_mails: Vec<String>,
    pub password_policies: Option<String>,
    pub other: BTreeMap<String, Value>,
    pub privileged: bool,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub visible_at: Instant,
    pub visible_at_utc: DateTime<Utc>,
    pub revoke_count: u32,
    pub password_set_count: u32,
    /// Only for leak scans in tests (`EmulatorControl::secrets_seen`); never
    /// served by Graph, the control API's user views or the request log.
    pub last_password: Option<String>,
    pub created_via_graph: bool,
    /// The manager's user id (graph/api/user-post-manager).
    pub manager: Option<String>,
    /// The groups a soft-deleted user was in, given back on restore.
    pub groups_at_deletion: Vec<String>,
    /// What Entra made of the licences the user's groups assign.
    pub licences: Vec<Assignment>,
}

impl UserRecord {
    pub(crate) fn blank(seq: u64, id: String, upn: String, nickname: String) -> Self {
        let now = Utc::now();
        Self {
            seq,
            id,
            upn,
            mail: None,
            display_name: None,
            given_name: None,
            surname: None,
            job_title: None,
            department: None,
            office_location: None,
            usage_location: None,
            employee_id: None,
            account_enabled: true,
            mail_nickname: nickname,
            mobile_phone: None,
            business_phones: Vec::new(),
            preferred_language: None,
            other_mails: Vec::new(),
            password_policies: None,
            other: BTreeMap::new(),
            privileged: false,
            deleted_at: None,
            created_at: now,
            visible_at: Instant::now(),
            visible_at_utc: now,
            revoke_count: 0,
            password_set_count: 0,
            last_password: None,
            created_via_graph: false,
            manager: None,
            groups_at_deletion: Vec::new(),
            licences: Vec::new(),
        }
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Readable through Graph: not deleted and replicated.
    pub(crate) fn is_visible(&self, now: Instant) -> bool {
        !self.is_deleted() && now >= self.visible_at
    }

    /// Entra fills proxyAddresses from mail; they are unique per directory:
    /// https://learn.microsoft.com/graph/api/resources/user#mail-and-proxyaddresses
    pub(crate) fn proxy_addresses(&self) -> Vec<String> {
        self.mail
            .iter()
            .map(|m| format!("SMTP:{m}"))
            .collect::<Vec<_>>()
    }

    pub(crate) fn to_public(&self) -> EmulatedUser {
        EmulatedUser {
            id: self.id.clone(),
            user_principal_name: self.upn.clone(),
            mail: self.mail.clone(),
            display_name: self.display_name.clone(),
            given_name: self.given_name.clone(),
            surname: self.surname.clone(),
            job_title: self.job_title.clone(),
            department: self.department.clone(),
            office_location: self.office_location.clone(),
            usage_location: self.usage_location.clone(),
            employee_id: self.employee_id.clone(),
            account_enabled: self.account_enabled,
            mail_nickname: self.mail_nickname.clone(),
            mobile_phone: self.mobile_phone.clone(),
            business_phones: self.business_phones.clone(),
            preferred_language: self.preferred_language.clone(),
            other_properties: self.other.clone(),
            privileged: self.privileged,
            deleted: self.is_deleted(),
            deleted_at: self.deleted_at,
            created_at: self.created_at,
            visible_at: self.visible_at_utc,
            revoke_sign_in_sessions_count: self.revoke_count,
            password_set_count: self.password_set_count,
            created_via_graph: self.created_via_graph,
            manager: self.manager.clone(),
        }
    }
}

pub(crate) struct Inner {
    pub tenants: Vec<Tenant>,
    pub apps: HashMap<String, AppRegistration>,
    pub tokens: HashMap<String, TokenRecord>,
    pub faults: VecDeque<Fault>,
    pub log: VecDeque<LoggedRequest>,
    pub next_seq: u64,
    pub next_user_seq: u64,
    pub replication_delay: Duration,
    pub limiter: Limiter,
    /// Admin consent: admins, redirect URIs, when consents take effect.
    pub consent: ConsentState,
    /// Certificates registered on apps, and assertion ids already used.
    pub certificates: CertificateRegistry,
    /// Running totals per tenant (see `Traffic`).
    pub traffic: HashMap<String, super::types::Traffic>,
}

impl Inner {
    pub(crate) fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    pub(crate) fn next_user_seq(&mut self) -> u64 {
        let s = self.next_user_seq;
        self.next_user_seq += 1;
        s
    }

    /// By tenant GUID or by one of its verified domains, case-insensitively
    /// (the token endpoint accepts "GUID or domain-name format":
    /// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
    pub(crate) fn tenant_index(&self, key: &str) -> Option<usize> {
        self.tenants.iter().position(|t| {
            t.spec.id.eq_ignore_ascii_case(key)
                || t.spec.domains.iter().any(|d| d.eq_ignore_ascii_case(key))
        })
    }

    pub(crate) fn tenant_by_id(&self, id: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.spec.id.eq_ignore_ascii_case(id))
    }

    pub(crate) fn tenant_by_id_mut(&mut self, id: &str) -> Option<&mut Tenant> {
        self.tenants
            .iter_mut()
            .find(|t| t.spec.id.eq_ignore_ascii_case(id))
    }

    pub(crate) fn push_log(&mut self, entry: LoggedRequest, cap: usize) {
        let t = self
            .traffic
            .entry(entry.tenant.clone().unwrap_or_default())
            .or_default();
        if entry.path.starts_with("/v1.0") {
            let envelope = entry.path == "/v1.0/$batch";
            if entry.batch_seq.is_none() {
                t.round_trips += 1;
            }
            if !envelope {
                t.operations += 1;
                t.writes += u64::from(entry.method != "GET");
                t.group_writes +=
                    u64::from(entry.method != "GET" && entry.path.starts_with("/v1.0/groups"));
                t.throttled += u64::from(entry.status == 429);
            }
        } else if entry.path.ends_with("/oauth2/v2.0/token") {
            t.tokens += 1;
        }
        self.log.push_back(entry);
        while self.log.len() > cap.max(1) {
            self.log.pop_front();
        }
    }

    /// First queued fault matching the request, consumed.
    pub(crate) fn take_fault(
        &mut self,
        tenant: Option<&str>,
        method: &str,
        path: &str,
    ) -> Option<FaultKind> {
        let idx = self.faults.iter().position(|f| {
            f.count > 0
                && unset_or(f.tenant.as_deref(), |t| {
                    tenant.is_some_and(|rt| rt.eq_ignore_ascii_case(t))
                })
                && unset_or(f.method.as_deref(), |m| m.eq_ignore_ascii_case(method))
                && unset_or(f.path_contains.as_deref(), |p| {
                    path.to_ascii_lowercase().contains(&p.to_ascii_lowercase())
                })
        })?;
        let f = self.faults.get_mut(idx)?;
        f.count -= 1;
        let kind = f.kind.clone();
        if f.count == 0 {
            self.faults.remove(idx);
        }
        Some(kind)
    }

    pub(crate) fn prune_tokens(&mut self, now: Instant) {
        if self.tokens.len() > 10_000 {
            self.tokens.retain(|_, t| t.expires_at > now);
        }
    }
}

/// A fault criterion left unset matches everything.
fn unset_or(criterion: Option<&str>, pred: impl Fn(&str) -> bool) -> bool {
    match criterion {
        None => true,
        Some(c) => pred(c),
    }
}
