//! `entra-daemon demo`: the main job on an embedded default. Starts the
//! emulator in-process, builds a Plumm database with two companies, connects
//! both, runs the daemon, plays a day of HR changes, and shows that Entra
//! matches Plumm (and why the one bad record does not).
mod connect;
mod people;
mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rusqlite::params;
use tokio::sync::watch;

use crate::configuration::Settings;
use crate::domain::CompanyId;
use crate::emulator::{self, AppRegistration, EmulatorConfig, SeedUser, TenantSize, TenantSpec};
use crate::store::migrate::PLUMM_USERS_FIXTURE;
use crate::store::{PlummDb, StateDb};
use crate::support::scratch;
use crate::{daemon, new_guid};
use people::{CONTOSO, CONTOSO_TENANT, DAY, FABRIKAM, FABRIKAM_TENANT, PEOPLE};

pub async fn run() -> anyhow::Result<ExitCode> {
    let scratch = scratch("entra-daemon-demo").context("creating the demo's scratch folder")?;
    let dir = scratch.path().to_path_buf();

    println!(
        "entra-daemon demo: Plumm -> Microsoft Entra ID, against the built-in Graph emulator\n"
    );
    let client_id = new_guid();
    let secret = format!("demo~{}", new_guid());
    let mut config = EmulatorConfig {
        replication_delay_ms: 200,
        // Each tenant's Global Administrator, who grants consent below.
        admins: vec!["admin@contoso.com".into(), "admin@fabrikam.com".into()],
        consent_propagation_ms: 300,
        ..EmulatorConfig::default()
    };
    config.apps.push(AppRegistration {
        client_id: client_id.clone(),
        client_secret: secret.clone(),
    });
    for (id, domain) in [
        (CONTOSO_TENANT, "contoso.com"),
        (FABRIKAM_TENANT, "fabrikam.com"),
    ] {
        config.tenants.push(TenantSpec {
            id: id.into(),
            domains: vec![
                domain.into(),
                format!(
                    "{}.onmicrosoft.com",
                    domain.split('.').next().unwrap_or(domain)
                ),
            ],
            size: TenantSize::Small,
            // Not yet: each company's admin consents through the Store.
            consented: false,
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let emu = emulator::spawn(config, listener).await?;
    let control = emu.control();
    // Entra already holds a Plumm user (to be linked, not duplicated) and a
    // break-glass administrator Plumm does not manage (left alone).
    control.seed_user(
        CONTOSO_TENANT,
        SeedUser {
            user_principal_name: "megan.bowen@contoso.com".into(),
            mail: Some("megan.bowen@contoso.com".into()),
            display_name: Some("Megan Bowen".into()),
            job_title: Some("Marketing Lead".into()),
            ..SeedUser::default()
        },
    )?;
    control.seed_user(
        CONTOSO_TENANT,
        SeedUser {
            user_principal_name: "breakglass@contoso.onmicrosoft.com".into(),
            display_name: Some("Emergency Access".into()),
            privileged: true,
            ..SeedUser::default()
        },
    )?;
    println!(
        "emulator   {} (tenants: Contoso {CONTOSO_TENANT}, Fabrikam {FABRIKAM_TENANT})",
        emu.authority_host()
    );

    let config_path = write_files(
        &dir,
        &emu.authority_host(),
        &emu.graph_base_url(),
        &client_id,
        &secret,
    )?;
    let settings = Settings::load(&config_path)?;
    seed_plumm(&settings.plumm.database)?;
    daemon::migrate(&settings)?;
    println!(
        "plumm      {} people in 2 companies; outbox triggers installed",
        PEOPLE.len()
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let daemon = daemon::start(daemon::Run::new(settings.clone(), stop_rx)).await?;
    let server = daemon.http.as_ref().context("the demo configures [http]")?;
    let connect_base = server.public_base.clone();
    control.add_redirect_uri(&client_id, &format!("{connect_base}/oauth/callback"));
    println!("connect    server {connect_base} (redirect URI {connect_base}/oauth/callback)");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let key = settings
        .http
        .as_ref()
        .context("the demo configures [http]")?
        .signing_key()?;
    for (company, admin, tenant) in [
        (CONTOSO, "admin@contoso.com", CONTOSO_TENANT),
        (FABRIKAM, "admin@fabrikam.com", FABRIKAM_TENANT),
    ] {
        let t = Instant::now();
        connect::through_the_store(
            &browser,
            &connect_base,
            &key,
            company,
            "it.admin@plumm.example",
            admin,
        )
        .await?;
        println!(
            "connect    company {company}: Store -> consent by {admin} -> callback -> Store \"Connected\" \
             (tenant {tenant}, consent proven in {} ms)",
            t.elapsed().as_millis()
        );
    }
    let observer = Observer {
        state: StateDb::open(&settings.state.database)?,
        plumm: PlummDb::open(&settings.plumm.database)?,
        plumm_path: settings.plumm.database.clone(),
    };

    let started = Instant::now();
    observer.wait_converged(Duration::from_secs(60))?;
    println!("\n== Initial sync ({} ms)", started.elapsed().as_millis());
    let mut seen = 0;
    seen = report::print_actions(&observer.state, seen, true)?;

    for moment in DAY {
        println!("\n== {} {}", moment.time, moment.headline);
        let t = Instant::now();
        observer.plumm_exec(moment.sql)?;
        observer.wait_converged(Duration::from_secs(30))?;
        println!(
            "   (in Entra {} ms after Plumm committed)",
            t.elapsed().as_millis()
        );
        seen = report::print_actions(&observer.state, seen, false)?;
    }

    let _ = stop_tx.send(true);
    let report = daemon.wait().await?;
    tracing::debug!(?report, "daemon stopped");

    let tenants = [
        (CompanyId(CONTOSO), CONTOSO_TENANT),
        (CompanyId(FABRIKAM), FABRIKAM_TENANT),
    ];
    let verdict = report::final_table(&settings, &observer, &control, &tenants)?;
    report::print_failures(&observer.state)?;
    emu.shutdown().await;
    if verdict {
        println!("\nConverged: Entra matches Plumm for every valid user; the invalid one is parked with its reason.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nNOT converged: see the table above.");
        Ok(ExitCode::FAILURE)
    }
}

/// Reads both databases from the outside, as an operator would.
pub(crate) struct Observer {
    pub state: StateDb,
    pub plumm: PlummDb,
    pub plumm_path: PathBuf,
}

impl Observer {
    /// Runs SQL as Plumm's application would: one transaction.
    fn plumm_exec(&self, sql: &str) -> anyhow::Result<()> {
        let conn = rusqlite::Connection::open(&self.plumm_path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(&format!("BEGIN; {sql} COMMIT;"))?;
        Ok(())
    }

    /// Everything Plumm committed is in Entra: outbox consumed, nothing
    /// pending.
    fn wait_converged(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let (outbox, _) = self.plumm.outbox_depth()?;
            let pending = self.state.pending_total()?;
            if outbox == 0 && pending == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "not converged after {timeout:?}: {outbox} in the outbox, {pending} pending"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn write_files(
    dir: &Path,
    authority: &str,
    graph: &str,
    client_id: &str,
    secret: &str,
) -> anyhow::Result<PathBuf> {
    let secret_path = dir.join("client-secret");
    std::fs::write(&secret_path, secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let config = format!(
        r#"[plumm]
database = "plumm.db"
[state]
database = "state.db"
[entra]
client_id = "{client_id}"
client_secret_file = "client-secret"
authority_host = "{authority}"
graph_base_url = "{graph}"
[sync]
on_delete = "suspend"
revoke_sessions_on_suspend = true
retry_initial = "100ms"
retry_max = "2s"
[http]
listen = "127.0.0.1:0"
store_return_url = "http://127.0.0.1/plumm/store/apps/microsoft-entra-id"
store_signing_key_file = "store-signing.key"
consent_retry_interval = "50ms"
[log]
level = "warn"
"#
    );
    // The key Plumm's Store signs its Connect links with.
    let key_path = dir.join("store-signing.key");
    std::fs::write(&key_path, format!("{}{}", new_guid(), new_guid()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let path = dir.join("entra-daemon.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

fn seed_plumm(path: &Path) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(PLUMM_USERS_FIXTURE)?;
    let tx = conn.transaction()?;
    for (company, email, first, last, role, dept, loc, country, status) in PEOPLE {
        tx.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![company, email, first, last, role, dept, loc, country, status],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// `entra-daemon emulator`: serve until Ctrl-C.
pub async fn serve_emulator(listen: SocketAddr, config: Option<&Path>) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        anyhow::bail!("the emulator serves loopback only; use an address such as 127.0.0.1:8765");
    }
    let config = match config {
        Some(p) => EmulatorConfig::from_file(p)?,
        None => standalone_config(),
    };
    let apps = config.apps.clone();
    let tenants = config.tenants.clone();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let emu = emulator::spawn(config, listener).await?;
    println!("Graph + login emulator on {}", emu.authority_host());
    println!("  [entra] authority_host = \"{}\"", emu.authority_host());
    println!("  [entra] graph_base_url = \"{}\"", emu.graph_base_url());
    for a in &apps {
        println!(
            "  app client_id = \"{}\" (secret as configured)",
            a.client_id
        );
    }
    for t in &tenants {
        println!(
            "  tenant {} domains {:?} consented={}",
            t.id, t.domains, t.consented
        );
    }
    println!(
        "  inspection: {}/_emulator/...; Ctrl-C stops",
        emu.authority_host()
    );
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}

/// Without a file: one app and one tenant, printed at start, so a daemon
/// can be pointed at it straight away.
fn standalone_config() -> EmulatorConfig {
    let mut c = EmulatorConfig::default();
    c.apps.push(AppRegistration {
        client_id: "00000000-0000-4000-8000-00000000e1d0".into(),
        client_secret: "emulator-only-secret".into(),
    });
    // Signs in on the admin consent page (/{tenant}/v2.0/adminconsent).
    c.admins.push("admin@contoso.com".into());
    c.default_account = Some("admin@contoso.com".into());
    c.tenants.push(TenantSpec {
        id: CONTOSO_TENANT.into(),
        domains: vec!["contoso.com".into(), "contoso.onmicrosoft.com".into()],
        size: TenantSize::Small,
        consented: true,
    });
    c
}
