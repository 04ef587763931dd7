//! Emulator configuration (TOML), tenants and app registrations.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::foreign_load::ForeignLoad;
use super::types::SeedUser;
use super::EmulatorError;

/// Whole emulator configuration. Every duration is expressed in Microsoft
/// time and divided by `time_scale` at run time, so a benchmark at
/// `time_scale = 10.0` sees the same ratios ten times faster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmulatorConfig {
    /// 1.0 = Microsoft timing; 10.0 = windows, Retry-After, token lifetime and
    /// replication delay ten times shorter.
    pub time_scale: f64,
    /// Access token lifetime. Microsoft issues 3599 s app-only tokens:
    /// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
    pub token_lifetime_secs: u64,
    /// Delay before a newly created user becomes readable (eventual
    /// consistency). A few hundred ms by default: Microsoft documents that
    /// a new object may not be readable at once ("Add a delay ... for
    /// replication", graph/api/user-post-users and
    /// concepts/best-practices#handling-expected-errors); 0 only where a test
    /// asks for it.
    pub replication_delay_ms: u64,
    /// Maximum number of request-log entries kept (oldest dropped first).
    pub log_capacity: usize,
    pub throttling: ThrottleConfig,
    pub random_faults: RandomFaultConfig,
    pub apps: Vec<AppRegistration>,
    pub tenants: Vec<TenantSpec>,
    pub seed_users: Vec<ConfigSeedUser>,
    /// Redirect URIs registered on the apps (Web platform); the admin
    /// consent endpoint redirects only to one of them, matched exactly.
    pub redirect_uris: Vec<RedirectUri>,
    /// Certificates registered on the apps ("Certificates & secrets"); a
    /// client assertion must be signed by one of them.
    pub app_certificates: Vec<AppCertificate>,
    /// Accounts holding a role that can grant tenant-wide consent to
    /// application permissions (Global Administrator, Privileged Role
    /// Administrator). An account's domain names its tenant.
    pub admins: Vec<String>,
    /// The account the consent page offers first (the admin can change it).
    pub default_account: Option<String>,
    /// Microsoft time between an admin's consent and the token endpoint
    /// honouring it; until then tokens are refused as not consented.
    pub consent_propagation_ms: u64,
    /// Whether withdrawing consent also kills the access tokens already
    /// issued. Off by default, as in Entra: "Existing access tokens will
    /// continue to be valid for their lifetime"
    /// (graph/api/oauth2permissiongrant-delete; security/zero-trust/develop/
    /// secure-with-cae); the loss shows at the next token request.
    pub revoke_tokens_with_consent: bool,
    /// How long a deleted user stays in the deleted items, restorable,
    /// before it is deleted for good: "A recently deleted item remains
    /// available for up to 30 days" (graph/api/directory-deleteditems-restore).
    pub deleted_items_retention_ms: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            token_lifetime_secs: 3599,
            replication_delay_ms: 300,
            log_capacity: 100_000,
            throttling: ThrottleConfig::default(),
            random_faults: RandomFaultConfig::default(),
            apps: Vec::new(),
            tenants: Vec::new(),
            seed_users: Vec::new(),
            redirect_uris: Vec::new(),
            app_certificates: Vec::new(),
            admins: Vec::new(),
            default_account: None,
            consent_propagation_ms: 0,
            revoke_tokens_with_consent: false,
            deleted_items_retention_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

impl EmulatorConfig {
    pub fn from_toml_str(s: &str) -> Result<Self, EmulatorError> {
        let cfg: Self = toml::from_str(s).map_err(|e| EmulatorError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_file(p: &Path) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| EmulatorError::Config(format!("{}: {e}", p.display())))?;
        Self::from_toml_str(&text)
    }

    pub(crate) fn validate(&self) -> Result<(), EmulatorError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(EmulatorError::Config("time_scale must be > 0".into()));
        }
        let rf = &self.random_faults;
        for (name, rate) in [
            ("error_rate", rf.error_rate),
            ("lost_answer_rate", rf.lost_answer_rate),
            ("reset_rate", rf.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(EmulatorError::Config(format!(
                    "random_faults.{name} must be within 0..=1"
                )));
            }
        }
        if rf.latency_ms_min > rf.latency_ms_max {
            return Err(EmulatorError::Config(
                "random_faults.latency_ms_min > latency_ms_max".into(),
            ));
        }
        self.throttling.validate()
    }
}

/// Identity and access service limits, with the numbers Microsoft publishes as
/// defaults: https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits
/// (S < 50 users, M 50-500, L > 500; writes 3,000 per 2 min 30 s per
/// app+tenant; 35,000 writes per 5 min per app; 18,000 writes per 5 min per
/// tenant; 150,000 RU per 20 s per app).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    pub enabled: bool,
    pub app_tenant_ru_small: u32,
    pub app_tenant_ru_medium: u32,
    pub app_tenant_ru_large: u32,
    pub app_tenant_ru_window_secs: f64,
    pub app_tenant_writes: u32,
    pub app_tenant_writes_window_secs: f64,
    pub app_ru: u32,
    pub app_ru_window_secs: f64,
    pub app_writes: u32,
    pub app_writes_window_secs: f64,
    pub tenant_writes: u32,
    pub tenant_writes_window_secs: f64,
    /// The throttling guidance says usage keeps being logged while a client is
    /// throttled, so ignoring Retry-After prolongs the throttling
    /// (https://learn.microsoft.com/graph/throttling): a refused request is
    /// charged as well. On by default; off only for a test that needs it.
    pub charge_throttled_requests: bool,
    /// Other apps writing in a tenant (see `foreign_load.rs`): none by default.
    pub foreign_load: Vec<ForeignLoad>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            app_tenant_ru_small: 3_500,
            app_tenant_ru_medium: 5_000,
            app_tenant_ru_large: 8_000,
            app_tenant_ru_window_secs: 10.0,
            app_tenant_writes: 3_000,
            app_tenant_writes_window_secs: 150.0,
            app_ru: 150_000,
            app_ru_window_secs: 20.0,
            app_writes: 35_000,
            app_writes_window_secs: 300.0,
            tenant_writes: 18_000,
            tenant_writes_window_secs: 300.0,
            charge_throttled_requests: true,
            foreign_load: Vec::new(),
        }
    }
}

impl ThrottleConfig {
    fn validate(&self) -> Result<(), EmulatorError> {
        let windows = [
            self.app_tenant_ru_window_secs,
            self.app_tenant_writes_window_secs,
            self.app_ru_window_secs,
            self.app_writes_window_secs,
            self.tenant_writes_window_secs,
        ];
        if windows.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(EmulatorError::Config(
                "throttling windows must be > 0".into(),
            ));
        }
        for f in &self.foreign_load {
            f.validate().map_err(EmulatorError::Config)?;
        }
        Ok(())
    }
}

/// Background noise for demos and soak runs; off by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaultConfig {
    /// Probability (0..=1) that a Graph request answers 500/502/503/504.
    pub error_rate: f64,
    /// Probability (0..=1) that a write is carried out and its answer then
    /// lost (the connection closes): the client cannot know it happened.
    pub lost_answer_rate: f64,
    /// Probability (0..=1) that a Graph request's connection is reset
    /// before the request is carried out: nothing happened, and the client
    /// cannot know that either.
    pub reset_rate: f64,
    /// Extra latency added to every Graph/login request, uniformly drawn.
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
}

/// A multi-tenant app registration (client credentials with a secret).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppRegistration {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

/// A redirect URI registered on an app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedirectUri {
    pub client_id: String,
    pub uri: String,
}

/// A certificate (PEM, public part only) registered on an app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppCertificate {
    pub client_id: String,
    pub certificate_pem: String,
}

/// Tenant size classes of the identity throttling limits
/// (https://learn.microsoft.com/graph/throttling-limits: S under 50 users,
/// M between 50 and 500, L above 500).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantSize {
    #[default]
    Small,
    Medium,
    Large,
}

impl TenantSize {
    pub fn for_user_count(n: usize) -> Self {
        match n {
            0..=49 => TenantSize::Small,
            50..=500 => TenantSize::Medium,
            _ => TenantSize::Large,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Tenant GUID.
    pub id: String,
    /// Verified domains; a UPN must use one of them.
    pub domains: Vec<String>,
    #[serde(default)]
    pub size: TenantSize,
    /// Admin consent granted to the registered apps in this tenant.
    #[serde(default = "default_true")]
    pub consented: bool,
    /// Application permissions (app roles on Microsoft Graph) the admin
    /// granted; a token carries those granted when it was issued.
    #[serde(default = "default_permissions")]
    pub permissions: Vec<String>,
}

/// What the daemon's app registration asks for (README, "API permissions").
pub fn default_permissions() -> Vec<String> {
    vec!["User.ReadWrite.All".to_string()]
}

fn default_true() -> bool {
    true
}

/// A user put into a tenant at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSeedUser {
    pub tenant: String,
    pub user: SeedUser,
}
