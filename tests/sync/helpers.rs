//! A Plumm database, the Graph emulator and the daemon, wired on loopback
//! with short timings, for tests that read like the behaviour they check.
use std::path::PathBuf;

use std::time::Duration;

use entra_daemon::configuration::Settings;
use entra_daemon::daemon;
use entra_daemon::domain::{CompanyId, TenantId};
use entra_daemon::emulator::{
    self, AppRegistration, EmulatedUser, EmulatorConfig, EmulatorControl, Fault, FaultKind,
    LoggedRequest, RunningEmulator, SeedUser, TenantSize, TenantSpec, ThrottleConfig,
};
use entra_daemon::engine::RunReport;
use entra_daemon::store::{AuditFilter, AuditRow, PlummDb, StateDb};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const CONTOSO: i64 = 1;
pub const FABRIKAM: i64 = 2;
pub const UNCONNECTED: i64 = 3;
pub const NORTHWIND: i64 = 4;
pub const T1: &str = "11111111-1111-4111-8111-111111111111";
pub const T2: &str = "22222222-2222-4222-8222-222222222222";
/// A third tenant (northwind.com) for tests that need three.
pub const T3: &str = "44444444-4444-4444-8444-444444444444";
pub const SECRET: &str = "test-secret~Zq8.sN4uK2pW7vR1";

/// Knobs a test may turn before the app starts.
#[derive(Clone)]
pub struct Options {
    pub on_delete: &'static str,
    pub revoke: bool,
    pub upn_domain: &'static str,
    pub replication_delay_ms: u64,
    pub request_timeout: &'static str,
    pub extra_sync: String,
    /// Appended to the config file (e.g. a [pacing] section).
    pub extra_toml: String,
    pub emulator_throttle: Option<ThrottleConfig>,
    pub time_scale: f64,
    /// Background noise: the share of writes whose answer is lost after
    /// Graph applied them, and of requests answered with a 5xx.
    pub lost_answer_rate: f64,
    pub error_rate: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            on_delete: "suspend",
            revoke: true,
            upn_domain: "",
            replication_delay_ms: 0,
            request_timeout: "2s",
            extra_sync: String::new(),
            extra_toml: String::new(),
            emulator_throttle: None,
            time_scale: 1.0,
            lost_answer_rate: 0.0,
            error_rate: 0.0,
        }
    }
}

type RunningDaemon = (
    watch::Sender<bool>,
    JoinHandle<Result<RunReport, daemon::StartupError>>,
);

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub emu: RunningEmulator,
    pub control: EmulatorControl,
    pub settings: Settings,
    pub config_path: PathBuf,
    pub client_id: String,
    daemon: Option<RunningDaemon>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        let client_id = entra_daemon::new_guid();
        let mut config = EmulatorConfig {
            replication_delay_ms: o.replication_delay_ms,
            time_scale: o.time_scale,
            ..EmulatorConfig::default()
        };
        config.random_faults.lost_answer_rate = o.lost_answer_rate;
        config.random_faults.error_rate = o.error_rate;
        if let Some(t) = o.emulator_throttle.clone() {
            config.throttling = t;
        }
        config.apps.push(AppRegistration {
            client_id: client_id.clone(),
            client_secret: SECRET.into(),
        });
        for (id, domain) in [
            (T1, "contoso.com"),
            (T2, "fabrikam.com"),
            (T3, "northwind.com"),
        ] {
            config.tenants.push(TenantSpec {
                id: id.into(),
                domains: vec![
                    domain.into(),
                    format!("{}.onmicrosoft.com", &domain[..domain.len() - 4]),
                ],
                size: TenantSize::Small,
                consented: true,
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let emu = emulator::spawn(config, listener).await.expect("emulator");
        let control = emu.control();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("client-secret"), SECRET).expect("secret");
        let upn_domain = o.upn_domain;
        let toml = format!(
            r#"[plumm]
database = "plumm.db"
poll_interval = "2ms"
[state]
database = "state.db"
[entra]
client_id = "{client_id}"
client_secret_file = "client-secret"
authority_host = "{authority}"
graph_base_url = "{graph}"
request_timeout = "{timeout}"
[sync]
on_delete = "{on_delete}"
revoke_sessions_on_suspend = {revoke}
upn_domain = "{upn_domain}"
retry_initial = "20ms"
retry_max = "400ms"
retry_attempts = 4
requeue_max = "1s"
replication_timeout = "5s"
drain_timeout = "2s"
{extra}
{extra_toml}
"#,
            authority = emu.authority_host(),
            graph = emu.graph_base_url(),
            timeout = o.request_timeout,
            on_delete = o.on_delete,
            revoke = o.revoke,
            extra = o.extra_sync,
            extra_toml = o.extra_toml,
        );
        let config_path = dir.path().join("entra-daemon.toml");
        std::fs::write(&config_path, toml).expect("config");
        let settings = Settings::load(&config_path).expect("settings");
        crate::common::prepare_databases(&settings);
        Self {
            dir,
            emu,
            control,
            settings,
            config_path,
            client_id,
            daemon: None,
        }
    }

    /// Connects a company through the CLI's code path (token + Graph read verified).
    pub async fn connect(&self, company: i64, tenant: &str) {
        daemon::connect(
            &self.settings,
            CompanyId(company),
            &TenantId::parse(tenant).expect("tenant"),
            true,
            "test",
        )
        .await
        .expect("connect");
    }

    pub async fn connect_both(&self) {
        self.connect(CONTOSO, T1).await;
        self.connect(FABRIKAM, T2).await;
    }

    /// Runs SQL in Plumm's database, as Plumm's app would (one transaction).
    pub fn plumm(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.settings.plumm.database).expect("plumm");
        conn.busy_timeout(Duration::from_secs(5)).expect("busy");
        conn.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))
            .expect("plumm sql");
    }

    pub fn hire(&self, company: i64, email: &str, first: &str, last: &str, role: &str) {
        self.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES ({company}, '{email}', '{first}', '{last}', '{role}', 'Engineering', 'London', 'GB')"
        ));
    }

    pub fn plumm_id(&self, email: &str) -> i64 {
        let conn = rusqlite::Connection::open(&self.settings.plumm.database).expect("plumm");
        conn.query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
            r.get(0)
        })
        .expect("user id")
    }

    pub fn state(&self) -> StateDb {
        StateDb::open(&self.settings.state.database).expect("state")
    }

    pub fn start_daemon(&mut self) {
        let (tx, rx) = watch::channel(false);
        let settings = self.settings.clone();
        let handle = tokio::spawn(async move { daemon::run(daemon::Run::new(settings, rx)).await });
        self.daemon = Some((tx, handle));
    }

    pub async fn stop_daemon(&mut self) -> RunReport {
        let (tx, handle) = self.daemon.take().expect("daemon running");
        tx.send(true).expect("stop");
        handle.await.expect("join").expect("daemon run")
    }

    /// `run --once` in-process.
    pub async fn run_once(&self) -> RunReport {
        let (_tx, rx) = watch::channel(false);
        daemon::run_once(daemon::Run::new(self.settings.clone(), rx))
            .await
            .expect("run --once")
    }

    /// Waits until the outbox is consumed and nothing is pending.
    pub async fn converged(&self) {
        let state = self.state();
        let plumm = PlummDb::open(&self.settings.plumm.database).expect("plumm");
        wait_for(
            "the outbox to drain and nothing to be pending",
            Duration::from_secs(15),
            || {
                plumm.outbox_depth().map(|d| d.0 == 0).unwrap_or(false)
                    && state.pending_total().map(|n| n == 0).unwrap_or(false)
            },
        )
        .await;
    }

    pub fn users(&self, tenant: &str) -> Vec<EmulatedUser> {
        self.control
            .users(tenant)
            .into_iter()
            .filter(|u| !u.deleted)
            .collect()
    }

    pub fn entra(&self, tenant: &str, upn: &str) -> Option<EmulatedUser> {
        self.control
            .users(tenant)
            .into_iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
    }

    /// Graph calls (not login, not the control API) in arrival order; a
    /// `$batch` counts as the requests inside it.
    pub fn graph_calls(&self) -> Vec<LoggedRequest> {
        self.control
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/v1.0") && r.path != "/v1.0/$batch")
            .collect()
    }

    /// The `$batch` envelopes themselves.
    pub fn batches(&self) -> Vec<LoggedRequest> {
        self.control
            .requests()
            .into_iter()
            .filter(|r| r.path == "/v1.0/$batch")
            .collect()
    }

    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.graph_calls()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    pub fn audit(&self, f: AuditFilter) -> Vec<AuditRow> {
        self.state().audit(&f).expect("audit")
    }

    pub fn audit_for(&self, email: &str) -> Vec<AuditRow> {
        self.audit(AuditFilter {
            email: Some(email.into()),
            ..AuditFilter::default()
        })
    }

    pub fn fail_next(
        &self,
        tenant: Option<&str>,
        method: &str,
        path: &str,
        count: u32,
        kind: FaultKind,
    ) {
        self.control.inject(Fault {
            tenant: tenant.map(str::to_string),
            method: Some(method.into()),
            path_contains: Some(path.into()),
            count,
            kind,
        });
    }

    pub fn seed(&self, tenant: &str, upn: &str, display: &str, title: Option<&str>) -> String {
        self.control
            .seed_user(
                tenant,
                SeedUser {
                    user_principal_name: upn.into(),
                    mail: Some(upn.into()),
                    display_name: Some(display.into()),
                    job_title: title.map(str::to_string),
                    ..SeedUser::default()
                },
            )
            .expect("seed")
    }
}

pub use crate::common::wait_for;

pub fn body(r: &LoggedRequest) -> serde_json::Value {
    r.body.clone().unwrap_or(serde_json::Value::Null)
}
