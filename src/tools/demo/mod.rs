//! `entra-daemon demo`: the main job on an embedded default. Starts the
//! emulator in-process, builds a Plumm database with two companies, connects
//! both, runs the daemon, plays a day of HR changes (hires, a team with its
//! manager, moves, offboarding, rehires, access through groups), and shows
//! that Entra matches Plumm (and why the one bad record does not).
mod access;
mod connect;
mod people;
mod report;
mod table;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::daemon::Started;
use crate::domain::CompanyId;
use crate::emulator::{self, AppRegistration, EmulatorConfig, SeedUser, TenantSize, TenantSpec};
use crate::new_guid;
use crate::tools::world::{tenant, Observer, World};
use people::{CONTOSO, CONTOSO_TENANT, DAY, FABRIKAM, FABRIKAM_TENANT};

/// The defaults, and the whole person: manager, employee number, start date.
const MAPPING: &str = "displayName = \"{first_name} {last_name}\"\n\
     givenName = \"{first_name}\"\nsurname = \"{last_name}\"\njobTitle = \"{role}\"\n\
     department = \"{department}\"\nofficeLocation = \"{location}\"\n\
     usageLocation = \"{country}\"\nmanager = \"{manager_id}\"\n\
     employeeId = \"{employee_number}\"\nemployeeHireDate = \"{start_date}\"";

/// How often the demo looks whether Entra caught up.
const LOOK_EVERY: Duration = Duration::from_millis(10);

pub async fn run() -> anyhow::Result<ExitCode> {
    println!(
        "entra-daemon demo: Plumm -> Microsoft Entra ID, against the built-in Graph emulator\n"
    );
    let world = set_up().await?;
    let (stop, daemon) = world.start_daemon().await?;
    connect_companies(&world, &daemon).await?;
    let observer = world.observer()?;
    play_the_day(&world, &observer).await?;

    let _ = stop.send(true);
    let report = daemon.wait().await?;
    tracing::debug!(?report, "daemon stopped");

    let tenants = [
        (CompanyId(CONTOSO), CONTOSO_TENANT),
        (CompanyId(FABRIKAM), FABRIKAM_TENANT),
    ];
    let verdict = table::final_table(&world, &observer, &tenants)?;
    report::print_failures(&observer.state)?;
    world.emu.shutdown().await;
    if verdict {
        println!("\nConverged: Entra matches Plumm for every valid user; the invalid one is parked with its reason.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nNOT converged: see the table above.");
        Ok(ExitCode::FAILURE)
    }
}

/// The emulator with two companies' tenants (neither consented yet), the
/// daemon's files, Plumm's people and what Entra already holds.
async fn set_up() -> anyhow::Result<World> {
    // Not yet: each company's admin consents through the Store.
    let unconsented = |id, domain| TenantSpec {
        consented: false,
        permissions: access::permissions(),
        ..tenant(id, domain)
    };
    let mut world = World::builder()
        .scratch("entra-daemon-demo")
        .client_secret(&format!("demo~{}", new_guid()))
        // Each tenant's Global Administrator, who grants consent below.
        .admin("admin@contoso.com")
        .admin("admin@fabrikam.com")
        .emulator(|c| {
            c.replication_delay_ms = 200;
            c.consent_propagation_ms = 300;
        })
        .tenant(unconsented(CONTOSO_TENANT, "contoso.com"))
        .tenant(unconsented(FABRIKAM_TENANT, "fabrikam.com"))
        // A rehire gets their old account back from Entra's deleted items,
        // which only on_delete = "delete" puts there; a suspension takes
        // the person out of the groups the rules gave.
        .sync(
            "on_delete = \"delete\"\non_suspend_groups = \"remove\"\n\
             revoke_sessions_on_suspend = true\ntime_zone = \"Europe/London\"\nprehire_lead = \"14d\"\n\
             retry_initial = \"100ms\"\nretry_max = \"2s\"\n\
             membership_batch_wait = \"500ms\"\nbatch_linger = \"20ms\"",
        )
        // A [mapping] replaces the defaults whole: they are repeated here.
        .config("mapping", MAPPING)
        .http(
            "listen = \"127.0.0.1:0\"\n\
             store_return_url = \"http://127.0.0.1/plumm/store/apps/microsoft-entra-id\"\n\
             store_signing_key_file = \"store-signing.key\"\nconsent_retry_interval = \"50ms\"",
        )
        .log("level = \"warn\"")
        // The key Plumm's Store signs its Connect links with.
        .private_file(
            "store-signing.key",
            &format!("{}{}", new_guid(), new_guid()),
        )
        .plumm_seed(seed_plumm)
        .toml(access::NAMED_RULES)
        .build()
        .await?;
    let megan = seed_entra(&world)?;
    println!(
        "emulator   {} (tenants: Contoso {CONTOSO_TENANT}, Fabrikam {FABRIKAM_TENANT})",
        world.emu.authority_host()
    );
    let obs = world.observer()?;
    let people = obs.plumm.company_users(CompanyId(CONTOSO))?.len()
        + obs.plumm.company_users(CompanyId(FABRIKAM))?.len();
    println!(
        "plumm      {people} people in 2 companies (with manager_id, employee_number, start_date); \
         outbox triggers installed"
    );
    access::seed_groups(&mut world, &megan)?;
    Ok(world)
}

/// Entra already holds a Plumm user (to be linked, not duplicated) and a
/// break-glass administrator Plumm does not manage (left alone); returns
/// the Plumm user's Entra id.
fn seed_entra(world: &World) -> anyhow::Result<String> {
    let megan = world.control.seed_user(
        CONTOSO_TENANT,
        SeedUser {
            user_principal_name: "megan.bowen@contoso.com".into(),
            mail: Some("megan.bowen@contoso.com".into()),
            display_name: Some("Megan Bowen".into()),
            job_title: Some("Marketing Lead".into()),
            ..SeedUser::default()
        },
    )?;
    world.control.seed_user(
        CONTOSO_TENANT,
        SeedUser {
            user_principal_name: "breakglass@contoso.onmicrosoft.com".into(),
            display_name: Some("Emergency Access".into()),
            privileged: true,
            ..SeedUser::default()
        },
    )?;
    Ok(megan)
}

/// Each company's admin connects it through Plumm's Store and Microsoft's
/// consent page, as in production.
async fn connect_companies(world: &World, daemon: &Started) -> anyhow::Result<()> {
    let server = daemon.http.as_ref().context("the demo configures [http]")?;
    let connect_base = server.public_base.clone();
    println!("connect    server {connect_base} (redirect URI {connect_base}/oauth/callback)");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let key = world
        .settings
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
    Ok(())
}

/// The initial sync, then each moment of the day: Plumm commits, Entra
/// follows, and what the daemon did is printed.
async fn play_the_day(world: &World, observer: &Observer) -> anyhow::Result<()> {
    let took = observer
        .converged(Duration::from_secs(60), LOOK_EVERY)
        .await?;
    println!("\n== Initial sync ({} ms)", took.as_millis());
    let tenants = [CONTOSO_TENANT, FABRIKAM_TENANT];
    let names = || access::Names::now(&world.control, &tenants);
    let mut seen = report::print_actions(&observer.state, 0, true, &names())?;
    let m = access::membership_writes(&world.control, &tenants, 0);
    println!(
        "   memberships: {} into {} groups in {} writes (members@odata.bind, up to 20 a write; \
         the fullest carried {})",
        m.members, m.groups, m.writes, m.fullest
    );
    for moment in DAY {
        println!("\n== {} {}", moment.time, moment.headline);
        let t = Instant::now();
        world.plumm(moment.sql)?;
        observer
            .converged(Duration::from_secs(30), LOOK_EVERY)
            .await?;
        println!(
            "   (in Entra {} ms after Plumm committed)",
            t.elapsed().as_millis()
        );
        seen = report::print_actions(&observer.state, seen, false, &names())?;
    }
    Ok(())
}

/// Plumm's people, in before the daemon was installed.
fn seed_plumm(conn: &mut rusqlite::Connection) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(people::SEED)?;
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
        permissions: crate::emulator::default_permissions(),
    });
    c
}
