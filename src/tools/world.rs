//! One world for everything that runs the daemon against the emulator: the
//! integration tests, the demo and the benchmark. [`World::builder`] sets up
//! the Graph + login emulator on a free loopback port (tenants, the app
//! registration, admins, faults), a scratch folder with the app's credential
//! (mode 0600) and an `entra-daemon.toml` pointing at the emulator, Plumm's
//! `users` table and both databases migrated, and the loaded [`Settings`].
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;

use crate::configuration::Settings;
use crate::daemon::{self, Started};
use crate::domain::{CompanyId, TenantId};
use crate::emulator::{
    self, default_permissions, AppRegistration, EmulatorConfig, EmulatorControl, RunningEmulator,
    TenantSize, TenantSpec,
};
use crate::store::migrate::PLUMM_USERS_FIXTURE;
use crate::store::{PlummDb, StateDb};
use crate::support::{new_guid, scratch};

/// How often [`wait_for`] looks again: short, so a test waits no longer
/// than its condition takes.
pub const TICK: Duration = Duration::from_millis(5);

/// Rows written into Plumm's `users` table before the migration.
type PlummSeed = Box<dyn FnOnce(&mut rusqlite::Connection) -> anyhow::Result<()> + Send>;

/// A consented small tenant answering for `domain` (e.g. `contoso.com`) and
/// its `.onmicrosoft.com` name (`contoso.onmicrosoft.com`).
pub fn tenant(id: &str, domain: &str) -> TenantSpec {
    let label = domain.split('.').next().unwrap_or(domain);
    TenantSpec {
        id: id.into(),
        domains: vec![domain.into(), format!("{label}.onmicrosoft.com")],
        size: TenantSize::Small,
        consented: true,
        permissions: default_permissions(),
    }
}

/// The emulator on a free loopback port (127.0.0.1:0): nothing else can
/// reach it, and worlds never collide.
pub async fn serve(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port for the emulator")?;
    Ok(emulator::spawn(config, listener).await?)
}

/// [`serve`] over https, with a certificate the emulator made for itself
/// ([`RunningEmulator::ca_pem`] is the one to trust): for clients that, like
/// Microsoft's SDKs, refuse a plain-http authority.
pub async fn serve_tls(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port for the emulator")?;
    Ok(emulator::spawn_tls(config, listener).await?)
}

/// Checks `cond` every `every` until it holds: how long that took, or
/// `None` once `timeout` passed first. An error from `cond` ends the wait.
pub async fn poll(
    timeout: Duration,
    every: Duration,
    mut cond: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Option<Duration>> {
    let start = Instant::now();
    loop {
        if cond()? {
            return Ok(Some(start.elapsed()));
        }
        if start.elapsed() > timeout {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until `cond` holds, looking every [`TICK`]; an error naming `what`
/// if it does not within `timeout`.
pub async fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    match poll(timeout, TICK, || Ok(cond())).await? {
        Some(_) => Ok(()),
        None => anyhow::bail!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// How the daemon proves it is the app: the secret or a certificate.
enum Credential {
    Secret,
    /// PEM texts of the certificate and its private key.
    Certificate(String, String),
}

/// What a [`World`] is made of; [`WorldBuilder::build`] starts it.
pub struct WorldBuilder {
    emulator: EmulatorConfig,
    client_id: String,
    secret: String,
    credential: Credential,
    scratch: String,
    /// `entra-daemon.toml` beyond the essentials: (table, lines) in the
    /// order first named.
    tables: Vec<(String, Vec<String>)>,
    raw: String,
    files: Vec<(String, String)>,
    seed: Option<PlummSeed>,
}

impl WorldBuilder {
    /// The scratch folder's name starts with `prefix`.
    pub fn scratch(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.scratch);
        self
    }

    /// The app's client id (a fresh GUID unless given).
    pub fn client_id(mut self, id: &str) -> Self {
        id.clone_into(&mut self.client_id);
        self
    }

    /// The app's client secret (a fresh one unless given), registered on
    /// the app and written to `client-secret` for the daemon.
    pub fn client_secret(mut self, secret: &str) -> Self {
        secret.clone_into(&mut self.secret);
        self
    }

    /// The daemon authenticates with this certificate and key (PEM, written
    /// to `cert.pem` and `key.pem`) instead of the secret. Registering the
    /// certificate on the app is the caller's: a test may want it refused.
    pub fn certificate(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.credential = Credential::Certificate(cert_pem.into(), key_pem.into());
        self
    }

    pub fn tenant(mut self, spec: TenantSpec) -> Self {
        self.emulator.tenants.push(spec);
        self
    }

    /// An account that may grant tenant-wide consent (its domain names its tenant).
    pub fn admin(mut self, account: &str) -> Self {
        self.emulator.admins.push(account.into());
        self
    }

    /// Anything else about the emulator: faults, throttling, replication
    /// delay, time scale, latency.
    pub fn emulator(mut self, tweak: impl FnOnce(&mut EmulatorConfig)) -> Self {
        tweak(&mut self.emulator);
        self
    }

    /// `key = value` lines (one or several, newline-separated) for `[table]`
    /// of `entra-daemon.toml`; a key given again replaces its earlier value,
    /// so a preset such as [`Self::short_timings`] can be adjusted.
    pub fn config(mut self, table: &str, lines: &str) -> Self {
        let at = match self.tables.iter().position(|(t, _)| t == table) {
            Some(at) => at,
            None => {
                self.tables.push((table.into(), Vec::new()));
                self.tables.len() - 1
            }
        };
        let key = |line: &str| line.split('=').next().unwrap_or(line).trim().to_owned();
        let have = &mut self.tables[at].1;
        for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match have.iter_mut().find(|l| key(l) == key(line)) {
                Some(old) => line.clone_into(old),
                None => have.push(line.into()),
            }
        }
        self
    }

    pub fn sync(self, lines: &str) -> Self {
        self.config("sync", lines)
    }

    pub fn http(self, lines: &str) -> Self {
        self.config("http", lines)
    }

    pub fn log(self, lines: &str) -> Self {
        self.config("log", lines)
    }

    pub fn pacing(self, lines: &str) -> Self {
        self.config("pacing", lines)
    }

    /// TOML appended as it is, after every table (for whole sections).
    pub fn toml(mut self, text: &str) -> Self {
        self.raw.push_str(text);
        self
    }

    /// A file only its owner may read, next to the configuration.
    pub fn private_file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// People Plumm held before the daemon was installed: written after the
    /// `users` table is created and before the migration adds the outbox
    /// triggers, so they leave no outbox rows.
    pub fn plumm_seed(
        mut self,
        seed: impl FnOnce(&mut rusqlite::Connection) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        self.seed = Some(Box::new(seed));
        self
    }

    /// The tests' timings: Plumm polled every 2 ms, Graph given 2 s, retries
    /// from 20 ms to 200 ms (4 attempts), requeues within 500 ms, 5 s for
    /// replication and 2 s to drain. Adjust any of them with [`Self::config`].
    pub fn short_timings(self) -> Self {
        self.config("plumm", "poll_interval = \"2ms\"")
            .config("entra", "request_timeout = \"2s\"")
            .sync(
                "retry_initial = \"20ms\"\nretry_max = \"200ms\"\nretry_attempts = 4\n\
                 requeue_max = \"500ms\"\nreplication_timeout = \"5s\"\ndrain_timeout = \"2s\"",
            )
    }

    /// The emulator's configuration this world runs: its tweaks, tenants,
    /// admins, and the app registered with the client secret.
    pub fn emulator_config(&self) -> EmulatorConfig {
        let mut config = self.emulator.clone();
        config.apps.push(AppRegistration {
            client_id: self.client_id.clone(),
            client_secret: self.secret.clone(),
        });
        config
    }

    /// Starts the emulator, writes the files and the configuration, loads
    /// it, and prepares both databases as an operator would.
    pub async fn build(self) -> anyhow::Result<World> {
        let dir = scratch(&self.scratch)
            .with_context(|| format!("creating a scratch folder for {}", self.scratch))?;
        let emu = serve(self.emulator_config()).await?;
        let entra = self.write_credential(dir.path())?;
        for (name, contents) in &self.files {
            write_private(&dir.path().join(name), contents)?;
        }
        let text = self.render(&emu, &entra);
        let config_path = dir.path().join("entra-daemon.toml");
        std::fs::write(&config_path, text)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let settings = Settings::load(&config_path)
            .with_context(|| format!("loading {}", config_path.display()))?;
        prepare_databases(&settings, self.seed)?;
        Ok(World {
            dir,
            control: emu.control(),
            emu,
            client_id: self.client_id,
            config_path,
            settings,
        })
    }

    /// Writes the credential's files; returns its `[entra]` lines.
    fn write_credential(&self, dir: &Path) -> anyhow::Result<String> {
        match &self.credential {
            Credential::Secret => {
                write_private(&dir.join("client-secret"), &self.secret)?;
                Ok("client_secret_file = \"client-secret\"".into())
            }
            Credential::Certificate(cert, key) => {
                write_private(&dir.join("cert.pem"), cert)?;
                write_private(&dir.join("key.pem"), key)?;
                Ok("client_certificate_file = \"cert.pem\"\n\
                    client_certificate_key_file = \"key.pem\""
                    .into())
            }
        }
    }

    /// `entra-daemon.toml`: the databases and the app first, then every
    /// table in the order first named, then the raw TOML.
    fn render(&self, emu: &RunningEmulator, credential: &str) -> String {
        let mut text = String::new();
        for (table, lines) in &self.tables {
            text.push_str(&format!("[{table}]\n"));
            match table.as_str() {
                "plumm" => text.push_str("database = \"plumm.db\"\n"),
                "state" => text.push_str("database = \"state.db\"\n"),
                "entra" => text.push_str(&format!(
                    "client_id = \"{}\"\n{credential}\nauthority_host = \"{}\"\n\
                     graph_base_url = \"{}\"\n",
                    self.client_id,
                    emu.authority_host(),
                    emu.graph_base_url()
                )),
                _ => {}
            }
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(&self.raw);
        text
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to its owner", path.display()))?;
    }
    Ok(())
}

/// Plumm's `users` table in the configured Plumm database (and whoever
/// Plumm already held), then both databases migrated.
fn prepare_databases(settings: &Settings, seed: Option<PlummSeed>) -> anyhow::Result<()> {
    let mut conn =
        rusqlite::Connection::open(&settings.plumm.database).context("opening Plumm's database")?;
    conn.execute_batch(PLUMM_USERS_FIXTURE)
        .context("creating Plumm's users table")?;
    if let Some(seed) = seed {
        seed(&mut conn).context("writing the people Plumm already held")?;
    }
    drop(conn);
    daemon::migrate(settings)?;
    Ok(())
}

/// A running world. The emulator serves, and the scratch folder lives, until
/// it is dropped.
pub struct World {
    pub dir: tempfile::TempDir,
    pub emu: RunningEmulator,
    pub control: EmulatorControl,
    pub client_id: String,
    pub config_path: PathBuf,
    /// As loaded when the world was built (a later `write_config` does not
    /// change them).
    pub settings: Settings,
}

impl World {
    pub fn builder() -> WorldBuilder {
        WorldBuilder {
            emulator: EmulatorConfig::default(),
            client_id: new_guid(),
            secret: format!("world~{}", new_guid()),
            credential: Credential::Secret,
            scratch: "entra-daemon-world".into(),
            tables: ["plumm", "state", "entra"]
                .map(|t| (t.to_owned(), Vec::new()))
                .into(),
            raw: String::new(),
            files: Vec::new(),
            seed: None,
        }
    }

    pub fn config_text(&self) -> anyhow::Result<String> {
        std::fs::read_to_string(&self.config_path)
            .with_context(|| format!("reading {}", self.config_path.display()))
    }

    pub fn write_config(&self, text: &str) -> anyhow::Result<()> {
        std::fs::write(&self.config_path, text)
            .with_context(|| format!("writing {}", self.config_path.display()))
    }

    /// Runs SQL in Plumm's database as Plumm's app would: one transaction,
    /// waiting out the daemon's locks as any concurrent writer must.
    pub fn plumm(&self, sql: &str) -> anyhow::Result<()> {
        let conn = rusqlite::Connection::open(&self.settings.plumm.database)
            .context("opening Plumm's database")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))
            .with_context(|| format!("running in Plumm: {sql}"))?;
        Ok(())
    }

    pub fn state(&self) -> anyhow::Result<StateDb> {
        Ok(StateDb::open(&self.settings.state.database)?)
    }

    /// Both databases, opened once for reading from the outside.
    pub fn observer(&self) -> anyhow::Result<Observer> {
        Ok(Observer {
            state: self.state()?,
            plumm: PlummDb::open(&self.settings.plumm.database)?,
        })
    }

    /// Connects a company through the CLI's code path (token and a Graph
    /// read verified); `by` is recorded as who did it.
    pub async fn connect(&self, company: i64, tenant: &str, by: &str) -> anyhow::Result<()> {
        let tenant = TenantId::parse(tenant)?;
        let silent = &crate::support::progress::Silent;
        daemon::connect(
            &self.settings,
            CompanyId(company),
            &tenant,
            true,
            by,
            silent,
        )
        .await?;
        Ok(())
    }

    /// Starts the daemon in this process, with the switch that stops it.
    /// Its connect server's callback (when `[http]` is configured) becomes
    /// a redirect URI of the app, as an operator registers it.
    pub async fn start_daemon(&self) -> anyhow::Result<(watch::Sender<bool>, Started)> {
        let (stop, stopped) = watch::channel(false);
        let started = daemon::start(daemon::Run::new(self.settings.clone(), stopped)).await?;
        if let Some(server) = &started.http {
            let callback = format!("{}/oauth/callback", server.public_base);
            self.control.add_redirect_uri(&self.client_id, &callback);
        }
        Ok((stop, started))
    }

    /// Waits until everything Plumm committed is in Entra, looking every
    /// `every`; how long that took.
    pub async fn converged(&self, timeout: Duration, every: Duration) -> anyhow::Result<Duration> {
        self.observer()?.converged(timeout, every).await
    }
}

/// Both databases read from the outside, as an operator would.
pub struct Observer {
    pub state: StateDb,
    pub plumm: PlummDb,
}

impl Observer {
    /// Outbox rows the daemon has not recorded yet, and changes still
    /// pending (group additions waiting for their batch included).
    pub fn backlog(&self) -> anyhow::Result<(i64, i64)> {
        let waiting = self.plumm.outbox_waiting(self.state.outbox_cursor()?)?;
        let pending = self.state.pending_total()? + self.state.queued_membership_count(None)?;
        Ok((waiting, pending))
    }

    /// Waits until the outbox is consumed and nothing is pending, looking
    /// every `every`; how long that took.
    pub async fn converged(&self, timeout: Duration, every: Duration) -> anyhow::Result<Duration> {
        // Probes, not counts: a bench polls this while the daemon works,
        // on the same two cores.
        let idle = || -> anyhow::Result<bool> {
            let cursor = self.state.outbox_cursor()?;
            Ok(!self.plumm.outbox_has_after(cursor)? && !self.state.has_pending_work()?)
        };
        if let Some(took) = poll(timeout, every, idle).await? {
            return Ok(took);
        }
        let (outbox, pending) = self.backlog()?;
        anyhow::bail!("not converged after {timeout:?}: {outbox} in the outbox, {pending} pending")
    }
}
