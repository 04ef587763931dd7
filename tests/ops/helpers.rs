//! The daemon as an operator runs it: the built binary as a subprocess
//! (signals, exit codes, everything it prints), against Plumm's database
//! and the Graph + login emulator on loopback, with short timings.
use std::ops::Deref;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entra_daemon::emulator::{EmulatedUser, Fault, FaultKind, TenantSpec};
use entra_daemon::http::StoreKey;
use entra_daemon::tools::world::tenant;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::common::{builder, with_connect_server, TestWorld};
pub use crate::common::{wait_for, CONTOSO, CONTOSO_ADMIN, FABRIKAM, FABRIKAM_ADMIN, T1, T2};

pub const SECRET: &str = "ops-test-secret~Hq4.mZ8vP1xK6tR3";
pub const STORE_KEY: &str = "9c41e7a2b85f06d3c1e8a4f7b2d5c9e0";

#[derive(Clone)]
pub struct Options {
    /// Extra lines for [sync].
    pub sync: &'static str,
    /// `[log] format`.
    pub log_format: &'static str,
    /// Fabrikam has not consented yet (for the connect flow).
    pub fabrikam_consented: bool,
    /// `[http]`: the public connect server (the private `[metrics]`
    /// listener is always configured).
    pub connect_server: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: "",
            log_format: "text",
            fabrikam_consented: true,
            connect_server: true,
        }
    }
}

/// The world with two tenants and the connect server configured; the
/// daemon runs as the built binary.
pub struct OpsApp {
    world: TestWorld,
    pub key: StoreKey,
}

impl Deref for OpsApp {
    type Target = TestWorld;
    fn deref(&self) -> &TestWorld {
        &self.world
    }
}

impl OpsApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        let world = builder()
            .client_secret(SECRET)
            .admin(CONTOSO_ADMIN)
            .admin(FABRIKAM_ADMIN)
            .tenant(tenant(T1, "contoso.com"))
            .tenant(TenantSpec {
                consented: o.fabrikam_consented,
                ..tenant(T2, "fabrikam.com")
            })
            .config("entra", "request_timeout = \"5s\"")
            .config("metrics", "listen = \"127.0.0.1:0\"")
            .sync(o.sync);
        let world = match o.connect_server {
            true => with_connect_server(world, STORE_KEY),
            false => world,
        };
        let world = world.log(&format!("format = \"{}\"", o.log_format));
        Self {
            world: TestWorld::build(world).await,
            key: StoreKey::new(STORE_KEY).expect("key"),
        }
    }

    pub fn hire(&self, company: i64, email: &str) {
        self.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES ({company}, '{email}', 'Test', 'Person', 'Engineer', 'Engineering', 'London', 'GB')"
        ));
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
        let (outbox, pending) = self
            .observer()
            .expect("databases")
            .backlog()
            .expect("backlog");
        outbox + pending
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
        self.listening("connect server listening").await
    }

    /// The private health and metrics listener's `http://127.0.0.1:PORT`.
    pub async fn metrics_base(&self) -> String {
        self.listening("health and metrics listening").await
    }

    async fn listening(&self, what: &str) -> String {
        self.wait_output(what).await;
        let out = self.output();
        let line = out.lines().find(|l| l.contains(what)).unwrap_or_default();
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

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
