//! Plumm, the Graph + login emulator and the daemon with its connect server,
//! all on loopback with short timings, and the steps a Plumm admin's browser
//! takes through the connect flow.
use std::collections::HashMap;
use std::io::Write;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use entra_daemon::daemon::{Started, StartupError};
use entra_daemon::emulator::{SeedUser, TenantSpec};
use entra_daemon::engine::RunReport;
use entra_daemon::http::signed::sign_query;
use entra_daemon::http::StoreKey;
use entra_daemon::store::{AuditFilter, AuditRow};
use entra_daemon::tools::world::tenant;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::common::{builder, with_connect_server, TestWorld};
pub use crate::common::{wait_for, CONTOSO, CONTOSO_ADMIN, FABRIKAM, FABRIKAM_ADMIN, T1, T2};

pub const SECRET: &str = "connect-test-secret~Vb7.qW3eR9tY1uI";
pub const STORE_KEY: &str = "5f2b8c1e9a7d4036b1e8c2f4a6d9e0b3";
/// A Contoso user without an admin role.
pub const CONTOSO_USER: &str = "ada.lovelace@contoso.com";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/connect/fixtures")
        .join(name)
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture")
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

/// The world with two tenants nobody has consented for yet, and the daemon
/// with its connect server in this process.
pub struct ConnectApp {
    world: TestWorld,
    pub base: String,
    pub key: StoreKey,
    pub http: reqwest::Client,
    daemon: Option<Daemon>,
    server: Option<entra_daemon::http::HttpServer>,
}

impl Deref for ConnectApp {
    type Target = TestWorld;
    fn deref(&self) -> &TestWorld {
        &self.world
    }
}

impl ConnectApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        capture_logs();
        // Nobody has consented yet: that is what the flow is for.
        let unconsented = |id, domain| TenantSpec {
            consented: false,
            ..tenant(id, domain)
        };
        let mut world = builder()
            .client_secret(SECRET)
            .admin(CONTOSO_ADMIN)
            .admin(FABRIKAM_ADMIN)
            .tenant(unconsented(T1, "contoso.com"))
            .tenant(unconsented(T2, "fabrikam.com"))
            .emulator(|c| c.consent_propagation_ms = o.consent_propagation_ms)
            .sync("retry_attempts = 3\ndrain_timeout = \"1s\"");
        world = with_connect_server(world, STORE_KEY).http(&format!(
            "store_return_url = \"{}\"\nstate_ttl = \"{}\"\nconsent_timeout = \"{}\"",
            o.store_return_url, o.state_ttl, o.consent_timeout
        ));
        if let Some((cert, key)) = o.certificate {
            world = world.certificate(&read_fixture(cert), &read_fixture(key));
        }
        let world = TestWorld::build(world.plumm_seed(seed_plumm)).await;
        world
            .control
            .add_app_certificate(&world.client_id, &read_fixture("app-cert.pem"))
            .expect("register the certificate");
        let (tx, started) = world.start_daemon().await.expect("start the daemon");
        let Started { http, daemon, .. } = started;
        let server = http.expect("the connect server runs");
        Self {
            world,
            base: server.public_base.clone(),
            key: StoreKey::new(STORE_KEY).expect("key"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            daemon: Some((tx, daemon)),
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

/// Plumm's people, there before the daemon was installed.
fn seed_plumm(conn: &mut rusqlite::Connection) -> anyhow::Result<()> {
    for (company, email, first, last) in PEOPLE {
        conn.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES (?1, ?2, ?3, ?4, 'Engineer', 'Engineering', 'London', 'GB')",
            rusqlite::params![company, email, first, last],
        )?;
    }
    Ok(())
}
