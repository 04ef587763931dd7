//! Plumm, the Graph + login emulator and the daemon with its connect server,
//! all on loopback with short timings, and the steps a Plumm admin's browser
//! takes through the connect flow.
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use entra_daemon::configuration::Settings;
use entra_daemon::daemon::{self, StartupError};
use entra_daemon::emulator::{
    self, AppRegistration, EmulatedUser, EmulatorConfig, EmulatorControl, RunningEmulator,
    SeedUser, TenantSize, TenantSpec,
};
use entra_daemon::engine::RunReport;
use entra_daemon::http::signed::sign_query;
use entra_daemon::http::StoreKey;
use entra_daemon::store::migrate::PLUMM_USERS_FIXTURE;
use entra_daemon::store::{AuditFilter, AuditRow, PlummDb, StateDb};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

pub const CONTOSO: i64 = 1;
pub const FABRIKAM: i64 = 2;
pub const T1: &str = "11111111-1111-4111-8111-111111111111";
pub const T2: &str = "22222222-2222-4222-8222-222222222222";
pub const SECRET: &str = "connect-test-secret~Vb7.qW3eR9tY1uI";
pub const STORE_KEY: &str = "5f2b8c1e9a7d4036b1e8c2f4a6d9e0b3";
pub const CONTOSO_ADMIN: &str = "admin@contoso.com";
pub const FABRIKAM_ADMIN: &str = "admin@fabrikam.com";
/// A Contoso user without an admin role.
pub const CONTOSO_USER: &str = "ada.lovelace@contoso.com";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/connect/fixtures")
        .join(name)
}

/// Everything the daemon and the emulator log, for the tests that check no
/// secret ever reaches a log line.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("entra_daemon=debug")
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

/// Knobs a test may turn before the app starts.
#[derive(Clone)]
pub struct Options {
    pub consent_propagation_ms: u64,
    pub consent_timeout: &'static str,
    pub state_ttl: &'static str,
    /// Authenticate with a certificate instead of the secret: (certificate,
    /// key) fixture names; `app-*.pem` is the one registered on the app.
    pub certificate: Option<(&'static str, &'static str)>,
    pub store_return_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            consent_propagation_ms: 0,
            consent_timeout: "10s",
            state_ttl: "10m",
            certificate: None,
            store_return_url: "http://127.0.0.1:9/store/apps/entra".into(),
        }
    }
}

type Daemon = (
    watch::Sender<bool>,
    JoinHandle<Result<RunReport, StartupError>>,
);

pub struct ConnectApp {
    _dir: tempfile::TempDir,
    pub emu: RunningEmulator,
    pub control: EmulatorControl,
    pub settings: Settings,
    pub config_path: PathBuf,
    pub client_id: String,
    pub base: String,
    pub key: StoreKey,
    pub http: reqwest::Client,
    daemon: Option<Daemon>,
    server: Option<entra_daemon::http::HttpServer>,
}

impl ConnectApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        capture_logs();
        let client_id = entra_daemon::new_guid();
        let mut config = EmulatorConfig {
            consent_propagation_ms: o.consent_propagation_ms,
            admins: vec![CONTOSO_ADMIN.into(), FABRIKAM_ADMIN.into()],
            ..EmulatorConfig::default()
        };
        config.apps.push(AppRegistration {
            client_id: client_id.clone(),
            client_secret: SECRET.into(),
        });
        for (id, domain) in [(T1, "contoso"), (T2, "fabrikam")] {
            config.tenants.push(TenantSpec {
                id: id.into(),
                domains: vec![format!("{domain}.com"), format!("{domain}.onmicrosoft.com")],
                size: TenantSize::Small,
                // Nobody has consented yet: that is what the flow is for.
                consented: false,
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let emu = emulator::spawn(config, listener).await.expect("emulator");
        let control = emu.control();
        control
            .add_app_certificate(
                &client_id,
                &std::fs::read_to_string(fixture("app-cert.pem")).expect("cert"),
            )
            .expect("register the certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let credential = match o.certificate {
            Some((cert, key)) => {
                copy_private(&fixture(cert), &dir.path().join("cert.pem"));
                copy_private(&fixture(key), &dir.path().join("key.pem"));
                "client_certificate_file = \"cert.pem\"\nclient_certificate_key_file = \"key.pem\""
                    .to_string()
            }
            None => {
                write_private(&dir.path().join("client-secret"), SECRET);
                "client_secret_file = \"client-secret\"".to_string()
            }
        };
        write_private(&dir.path().join("store.key"), STORE_KEY);
        let toml = format!(
            r#"[plumm]
database = "plumm.db"
poll_interval = "2ms"
[state]
database = "state.db"
[entra]
client_id = "{client_id}"
{credential}
authority_host = "{authority}"
graph_base_url = "{graph}"
request_timeout = "2s"
[sync]
retry_initial = "20ms"
retry_max = "200ms"
retry_attempts = 3
requeue_max = "500ms"
replication_timeout = "5s"
drain_timeout = "1s"
[http]
listen = "127.0.0.1:0"
store_return_url = "{ret}"
store_signing_key_file = "store.key"
state_ttl = "{ttl}"
consent_timeout = "{timeout}"
consent_retry_interval = "20ms"
"#,
            authority = emu.authority_host(),
            graph = emu.graph_base_url(),
            ret = o.store_return_url,
            ttl = o.state_ttl,
            timeout = o.consent_timeout,
        );
        let config_path = dir.path().join("entra-daemon.toml");
        std::fs::write(&config_path, toml).expect("config");
        let settings = Settings::load(&config_path).expect("settings");
        seed_plumm(&settings);
        daemon::migrate(&settings).expect("migrate");
        let (tx, rx) = watch::channel(false);
        let started = daemon::start(daemon::Run::new(settings.clone(), rx))
            .await
            .expect("start the daemon");
        let server = started.http.expect("the connect server runs");
        let base = server.public_base.clone();
        control.add_redirect_uri(&client_id, &format!("{base}/oauth/callback"));
        Self {
            _dir: dir,
            emu,
            control,
            settings,
            config_path,
            client_id,
            base,
            key: StoreKey::new(STORE_KEY).expect("key"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            daemon: Some((tx, started.daemon)),
            server: Some(server),
        }
    }

    pub async fn stop(&mut self) -> RunReport {
        let (tx, handle) = self.daemon.take().expect("daemon running");
        tx.send(true).expect("stop");
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        handle.await.expect("join").expect("daemon run")
    }

    /// A link as Plumm's Store signs it, valid for five minutes.
    pub fn signed(&self, company: i64, admin: &str) -> String {
        sign_query(&self.key, company, admin, now() + 300)
    }

    pub fn connect_url(&self, company: i64, admin: &str) -> String {
        format!("{}/connect?{}", self.base, self.signed(company, admin))
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.expect("GET")
    }

    /// Clicks Connect, then Accept or Cancel as `account` on the consent
    /// page; returns where the browser finally lands (the Store).
    pub async fn connect_flow(&self, company: i64, account: &str, accept: bool) -> Landing {
        let consent = self.start_connect(company).await;
        let callback = self.answer_consent(&consent, account, accept).await;
        self.follow_callback(&callback).await
    }

    /// The whole flow, accepted by `admin`; it must connect.
    pub async fn connect_ok(&self, company: i64, admin: &str) {
        let landing = self.connect_flow(company, admin, true).await;
        assert_eq!(landing.get("status"), "connected", "{landing:?}");
    }

    /// Clicks Connect; returns the consent URL at the emulator.
    pub async fn start_connect(&self, company: i64) -> Url {
        let r = self
            .get(&self.connect_url(company, "store.admin@plumm.example"))
            .await;
        assert_eq!(r.status(), 302, "connect answered {}", r.status());
        let consent = location(&r);
        assert!(
            consent.path().ends_with("/organizations/v2.0/adminconsent"),
            "{consent}"
        );
        let page = self.get(consent.as_str()).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("page");
        assert!(html.contains("id=\"accept\""), "{html}");
        consent
    }

    /// Submits the consent page's form; returns the callback URL Microsoft
    /// (the emulator) redirects to.
    pub async fn answer_consent(&self, consent: &Url, account: &str, accept: bool) -> Url {
        let q: HashMap<String, String> = consent.query_pairs().into_owned().collect();
        let mut form: Vec<(&str, &str)> = ["client_id", "redirect_uri", "scope", "state"]
            .iter()
            .map(|k| (*k, q.get(*k).map(String::as_str).unwrap_or_default()))
            .collect();
        form.push(("account", account));
        form.push(("action", if accept { "accept" } else { "cancel" }));
        let r = self
            .http
            .post(consent.as_str())
            .form(&form)
            .send()
            .await
            .expect("POST consent");
        assert_eq!(r.status(), 302, "consent page answered {}", r.status());
        let callback = location(&r);
        assert!(callback.as_str().starts_with(&self.base), "{callback}");
        callback
    }

    pub async fn follow_callback(&self, callback: &Url) -> Landing {
        let r = self.get(callback.as_str()).await;
        assert_eq!(r.status(), 303, "callback answered {}", r.status());
        Landing::from(location(&r))
    }

    pub fn state(&self) -> StateDb {
        StateDb::open(&self.settings.state.database).expect("state")
    }

    pub fn sql_count(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(&self.settings.state.database).expect("state");
        conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    pub fn audit(&self, action: &str) -> Vec<AuditRow> {
        self.state()
            .audit(&AuditFilter::default())
            .expect("audit")
            .into_iter()
            .filter(|r| r.action == action)
            .collect()
    }

    pub fn plumm(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.settings.plumm.database).expect("plumm");
        conn.busy_timeout(Duration::from_secs(5)).expect("busy");
        conn.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))
            .expect("plumm sql");
    }

    pub fn users(&self, tenant: &str) -> Vec<EmulatedUser> {
        self.control
            .users(tenant)
            .into_iter()
            .filter(|u| !u.deleted)
            .collect()
    }

    pub fn seed(&self, tenant: &str, upn: &str) -> String {
        self.control
            .seed_user(
                tenant,
                SeedUser {
                    user_principal_name: upn.into(),
                    mail: Some(upn.into()),
                    display_name: Some("Seeded".into()),
                    ..SeedUser::default()
                },
            )
            .expect("seed")
    }

    /// Waits until the outbox is consumed and nothing is pending.
    pub async fn converged(&self) {
        let state = self.state();
        let plumm = PlummDb::open(&self.settings.plumm.database).expect("plumm");
        wait_for("nothing pending", Duration::from_secs(15), || {
            plumm.outbox_depth().map(|d| d.0 == 0).unwrap_or(false)
                && state.pending_total().map(|n| n == 0).unwrap_or(false)
        })
        .await;
    }
}

/// Where the browser lands: the Store's return URL and its parameters.
#[derive(Debug)]
pub struct Landing {
    pub url: Url,
    pub params: HashMap<String, String>,
}

impl Landing {
    fn from(url: Url) -> Self {
        let params = url.query_pairs().into_owned().collect();
        Self { url, params }
    }
    pub fn get(&self, k: &str) -> &str {
        self.params.get(k).map(String::as_str).unwrap_or_default()
    }
}

pub fn location(r: &reqwest::Response) -> Url {
    let raw = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header");
    Url::parse(raw).expect("an absolute Location")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Plumm people: three at Contoso (one already in Entra), two at Fabrikam.
pub const PEOPLE: &[(i64, &str, &str, &str)] = &[
    (CONTOSO, "megan.bowen@contoso.com", "Megan", "Bowen"),
    (CONTOSO, "alex.wilber@contoso.com", "Alex", "Wilber"),
    (CONTOSO, "diego.siciliani@contoso.com", "Diego", "Siciliani"),
    (FABRIKAM, "lidia.holloway@fabrikam.com", "Lidia", "Holloway"),
    (FABRIKAM, "nestor.wilke@fabrikam.com", "Nestor", "Wilke"),
];

fn seed_plumm(settings: &Settings) {
    let conn = rusqlite::Connection::open(&settings.plumm.database).expect("plumm");
    conn.execute_batch(PLUMM_USERS_FIXTURE)
        .expect("users table");
    for (company, email, first, last) in PEOPLE {
        conn.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES (?1, ?2, ?3, ?4, 'Engineer', 'Engineering', 'London', 'GB')",
            rusqlite::params![company, email, first, last],
        )
        .expect("person");
    }
}

fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

fn copy_private(from: &std::path::Path, to: &std::path::Path) {
    write_private(to, &std::fs::read_to_string(from).expect("fixture"));
}

pub use crate::common::wait_for;
