//! A Plumm database, the Graph emulator and the daemon, wired on loopback
//! with short timings, for tests that read like the behaviour they check.
use std::ops::Deref;

use entra_daemon::configuration::Settings;
use entra_daemon::daemon;
use entra_daemon::emulator::{
    EmulatedUser, EmulatorConfig, Fault, FaultKind, LoggedRequest, SeedUser, ThrottleConfig,
};
use entra_daemon::engine::RunReport;
use entra_daemon::store::{AuditFilter, AuditRow};
use entra_daemon::tools::world::tenant;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{builder, TestWorld};
pub use crate::common::{wait_for, CONTOSO, FABRIKAM, T1, T2};

pub const UNCONNECTED: i64 = 3;
pub const NORTHWIND: i64 = 4;
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
    /// Graph latency added to every request, uniformly drawn (ms).
    pub latency_ms: (u64, u64),
}

impl Default for Options {
    fn default() -> Self {
        Self {
            on_delete: "suspend",
            revoke: true,
            upn_domain: "",
            // Microsoft's lag, as the emulator has it by default.
            replication_delay_ms: EmulatorConfig::default().replication_delay_ms,
            request_timeout: "2s",
            extra_sync: String::new(),
            extra_toml: String::new(),
            emulator_throttle: None,
            time_scale: 1.0,
            lost_answer_rate: 0.0,
            error_rate: 0.0,
            latency_ms: (0, 0),
        }
    }
}

type RunningDaemon = (
    watch::Sender<bool>,
    JoinHandle<Result<RunReport, daemon::StartupError>>,
);

/// The world with three consented tenants, and the daemon in this process.
pub struct TestApp {
    world: TestWorld,
    daemon: Option<RunningDaemon>,
}

impl Deref for TestApp {
    type Target = TestWorld;
    fn deref(&self) -> &TestWorld {
        &self.world
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        let world = builder()
            .client_secret(SECRET)
            .tenant(tenant(T1, "contoso.com"))
            .tenant(tenant(T2, "fabrikam.com"))
            .tenant(tenant(T3, "northwind.com"))
            .emulator(|c| {
                c.replication_delay_ms = o.replication_delay_ms;
                c.time_scale = o.time_scale;
                c.random_faults.lost_answer_rate = o.lost_answer_rate;
                c.random_faults.error_rate = o.error_rate;
                c.random_faults.latency_ms_min = o.latency_ms.0;
                c.random_faults.latency_ms_max = o.latency_ms.1;
                if let Some(t) = o.emulator_throttle.clone() {
                    c.throttling = t;
                }
            })
            .config(
                "entra",
                &format!("request_timeout = \"{}\"", o.request_timeout),
            )
            .sync(&format!(
                "on_delete = \"{}\"\nrevoke_sessions_on_suspend = {}\nupn_domain = \"{}\"\n\
                 retry_max = \"400ms\"\nrequeue_max = \"1s\"",
                o.on_delete, o.revoke, o.upn_domain
            ))
            .sync(&o.extra_sync)
            .toml(&o.extra_toml);
        Self {
            world: TestWorld::build(world).await,
            daemon: None,
        }
    }

    pub async fn connect_both(&self) {
        self.connect(CONTOSO, T1).await;
        self.connect(FABRIKAM, T2).await;
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

    pub fn start_daemon(&mut self) {
        let settings = self.settings.clone();
        self.start_daemon_on(settings);
    }

    /// Starts the daemon on the config file with `extra` appended: rules
    /// that name what only exists once the world runs (a seeded group's id).
    pub fn start_daemon_with(&mut self, extra: &str) {
        let text = format!("{}\n{extra}\n", self.config_text());
        self.write_config(&text);
        let settings = Settings::load(&self.config_path).expect("the extended config");
        self.start_daemon_on(settings);
    }

    fn start_daemon_on(&mut self, settings: Settings) {
        let (tx, rx) = watch::channel(false);
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

pub fn body(r: &LoggedRequest) -> serde_json::Value {
    r.body.clone().unwrap_or(serde_json::Value::Null)
}

/// The daemon's binary run with the app's config, as an operator would.
pub async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(args)
        .output()
        .await
        .expect("run the binary")
}

/// The daemon binary running with the app's config, stderr to `stderr`, to
/// be `kill -9`ed mid-work (killed too if the test drops it).
pub fn spawn_daemon_process(
    app: &TestApp,
    stderr: impl Into<std::process::Stdio>,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("daemon binary")
}
