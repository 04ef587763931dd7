//! The daemon as an operator runs it: the built binary as a subprocess
//! (signals, exit codes, everything it prints), against Plumm's database
//! and the Graph + login emulator on loopback, with short timings.
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entra_daemon::configuration::Settings;
use entra_daemon::daemon;
use entra_daemon::domain::{CompanyId, TenantId};
use entra_daemon::emulator::{
    self, AppRegistration, EmulatedUser, EmulatorConfig, EmulatorControl, Fault, FaultKind,
    RunningEmulator, TenantSize, TenantSpec,
};
use entra_daemon::http::StoreKey;
use entra_daemon::store::{PlummDb, StateDb};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub const CONTOSO: i64 = 1;
pub const FABRIKAM: i64 = 2;
pub const T1: &str = "11111111-1111-4111-8111-111111111111";
pub const T2: &str = "22222222-2222-4222-8222-222222222222";
pub const SECRET: &str = "ops-test-secret~Hq4.mZ8vP1xK6tR3";
pub const STORE_KEY: &str = "9c41e7a2b85f06d3c1e8a4f7b2d5c9e0";
pub const CONTOSO_ADMIN: &str = "admin@contoso.com";
pub const FABRIKAM_ADMIN: &str = "admin@fabrikam.com";

#[derive(Clone)]
pub struct Options {
    /// Extra lines for [sync].
    pub sync: &'static str,
    /// `[log] format`.
    pub log_format: &'static str,
    /// Fabrikam has not consented yet (for the connect flow).
    pub fabrikam_consented: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: "",
            log_format: "text",
            fabrikam_consented: true,
        }
    }
}

pub struct OpsApp {
    _dir: tempfile::TempDir,
    _emu: RunningEmulator,
    pub control: EmulatorControl,
    pub settings: Settings,
    pub config_path: PathBuf,
    pub client_id: String,
    pub key: StoreKey,
}

impl OpsApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        let client_id = entra_daemon::new_guid();
        let mut config = EmulatorConfig {
            admins: vec![CONTOSO_ADMIN.into(), FABRIKAM_ADMIN.into()],
            ..EmulatorConfig::default()
        };
        config.apps.push(AppRegistration {
            client_id: client_id.clone(),
            client_secret: SECRET.into(),
        });
        for (id, domain, consented) in [
            (T1, "contoso", true),
            (T2, "fabrikam", o.fabrikam_consented),
        ] {
            config.tenants.push(TenantSpec {
                id: id.into(),
                domains: vec![format!("{domain}.com"), format!("{domain}.onmicrosoft.com")],
                size: TenantSize::Small,
                consented,
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let emu = emulator::spawn(config, listener).await.expect("emulator");
        let control = emu.control();
        let dir = tempfile::tempdir().expect("tempdir");
        write_private(&dir.path().join("client-secret"), SECRET);
        write_private(&dir.path().join("store.key"), STORE_KEY);
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
request_timeout = "5s"
[sync]
retry_initial = "20ms"
retry_max = "200ms"
retry_attempts = 4
requeue_max = "500ms"
replication_timeout = "5s"
drain_timeout = "2s"
{sync}
[http]
listen = "127.0.0.1:0"
store_return_url = "http://127.0.0.1:9/store/apps/entra"
store_signing_key_file = "store.key"
consent_retry_interval = "20ms"
[log]
format = "{format}"
"#,
            authority = emu.authority_host(),
            graph = emu.graph_base_url(),
            sync = o.sync,
            format = o.log_format,
        );
        let config_path = dir.path().join("entra-daemon.toml");
        std::fs::write(&config_path, toml).expect("config");
        let settings = Settings::load(&config_path).expect("settings");
        crate::common::prepare_databases(&settings);
        Self {
            _dir: dir,
            _emu: emu,
            control,
            settings,
            config_path,
            client_id,
            key: StoreKey::new(STORE_KEY).expect("key"),
        }
    }

    /// Connects a company through the CLI's code path (token + Graph read).
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

    pub fn plumm(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.settings.plumm.database).expect("plumm");
        conn.busy_timeout(Duration::from_secs(5)).expect("busy");
        conn.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))
            .expect("plumm sql");
    }

    pub fn hire(&self, company: i64, email: &str) {
        self.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES ({company}, '{email}', 'Test', 'Person', 'Engineer', 'Engineering', 'London', 'GB')"
        ));
    }

    pub fn state(&self) -> StateDb {
        StateDb::open(&self.settings.state.database).expect("state")
    }

    pub fn entra(&self, tenant: &str, upn: &str) -> Vec<EmulatedUser> {
        self.control
            .users(tenant)
            .into_iter()
            .filter(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
            .collect()
    }

    /// Pending changes plus outbox rows not yet recorded: the work not done.
    pub fn not_done(&self) -> i64 {
        let plumm = PlummDb::open(&self.settings.plumm.database).expect("plumm");
        plumm.outbox_depth().expect("outbox").0 + self.state().pending_total().expect("pending")
    }

    pub async fn converged(&self) {
        wait_for("nothing left to do", Duration::from_secs(15), || {
            self.not_done() == 0
        })
        .await;
    }

    pub fn delay_next(&self, tenant: &str, method: &str, path: &str, ms: u64) {
        self.fault(tenant, method, path, FaultKind::Delay { ms });
    }

    pub fn fault(&self, tenant: &str, method: &str, path: &str, kind: FaultKind) {
        self.control.inject(Fault {
            tenant: Some(tenant.into()),
            method: Some(method.into()),
            path_contains: Some(path.into()),
            count: 1,
            kind,
        });
    }

    /// The binary with this app's config, `RUST_LOG=debug`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_entra-daemon"));
        c.arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("ENTRA_CLIENT_SECRET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .kill_on_drop(true);
        c
    }

    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().await.expect("run the binary")
    }

    /// `entra-daemon run` in the background.
    pub fn start(&self) -> Daemon {
        Daemon::spawn(self.command(&["run"]))
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config_path, text).expect("config");
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config_path).expect("config")
    }
}

/// A running daemon process and everything it printed so far.
pub struct Daemon {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

fn collect(
    from: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut out = into.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str(&line);
            out.push('\n');
        }
    })
}

impl Daemon {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let output = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), output.clone()),
            collect(child.stderr.take().expect("stderr"), output.clone()),
        ];
        Self {
            child,
            output,
            readers,
        }
    }

    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn wait_output(&self, what: &str) {
        wait_for(
            &format!("the daemon to print {what:?}"),
            Duration::from_secs(15),
            || self.output().contains(what),
        )
        .await;
    }

    /// `http://127.0.0.1:PORT`, once the server says where it listens.
    pub async fn base(&self) -> String {
        self.wait_output("connect server listening").await;
        let out = self.output();
        let line = out
            .lines()
            .find(|l| l.contains("connect server listening"))
            .unwrap_or_default();
        let at = line.find("127.0.0.1:").expect("a loopback address");
        let port: String = line[at + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        format!("http://127.0.0.1:{port}")
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -s {name} {pid}");
    }

    /// Waits for the process to end; returns its status and all it printed.
    pub async fn exit(mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the daemon exits")
            .expect("wait");
        // The readers finish once the pipes close.
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        (status, self.output())
    }
}

pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub use crate::common::wait_for;
