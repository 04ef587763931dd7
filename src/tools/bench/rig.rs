//! One benchmark setup: an emulator with Microsoft's documented limits (on
//! a time scale), a Plumm database, a config, and the daemon as a separate
//! process so its memory and CPU are its own.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::configuration::Settings;
use crate::domain::{CompanyId, TenantId};
use crate::emulator::{
    self, AppRegistration, EmulatorConfig, EmulatorControl, RunningEmulator, TenantSize, TenantSpec,
};
use crate::store::migrate::PLUMM_USERS_FIXTURE;
use crate::store::{PlummDb, StateDb};
use crate::support::scratch;
use crate::{daemon, new_guid};

pub(super) struct TenantPlan {
    pub company: i64,
    pub tenant: String,
    pub domain: String,
    pub size: TenantSize,
}

pub(super) struct Rig {
    _scratch: tempfile::TempDir,
    /// Serves until the rig is dropped.
    _emu: RunningEmulator,
    pub control: EmulatorControl,
    pub settings: Settings,
    pub config_path: PathBuf,
}

/// Tenant ids for the benchmark: deterministic, valid GUIDs.
pub(super) fn tenant_id(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", 0xbe00 + i, i + 1)
}

impl Rig {
    pub(super) async fn new(
        tenants: &[TenantPlan],
        time_scale: f64,
        latency_ms: (u64, u64),
    ) -> anyhow::Result<Self> {
        let scratch = scratch("entra-daemon-bench")?;
        let client_id = new_guid();
        let secret = format!("bench~{}", new_guid());
        let mut config = EmulatorConfig {
            time_scale,
            // Counts come from running totals; the log only needs a tail.
            log_capacity: 10_000,
            ..EmulatorConfig::default()
        };
        config.random_faults.latency_ms_min = latency_ms.0;
        config.random_faults.latency_ms_max = latency_ms.1;
        config.apps.push(AppRegistration {
            client_id: client_id.clone(),
            client_secret: secret.clone(),
        });
        for t in tenants {
            config.tenants.push(TenantSpec {
                id: t.tenant.clone(),
                domains: vec![t.domain.clone()],
                size: t.size,
                consented: true,
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let emu = emulator::spawn(config, listener).await?;
        let control = emu.control();
        let dir = scratch.path();
        std::fs::write(dir.join("client-secret"), &secret)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("client-secret"),
                std::fs::Permissions::from_mode(0o600),
            )?;
        }
        let mut pacing = format!("[pacing]\ntime_scale = {time_scale:?}\n");
        for t in tenants {
            let size = match t.size {
                TenantSize::Small => "small",
                TenantSize::Medium => "medium",
                TenantSize::Large => "large",
            };
            pacing.push_str(&format!(
                "[pacing.tenants.\"{}\"]\nsize = \"{size}\"\n",
                t.tenant
            ));
        }
        let toml = format!(
            "[plumm]\ndatabase = \"plumm.db\"\n[state]\ndatabase = \"state.db\"\n\
             [entra]\nclient_id = \"{client_id}\"\nclient_secret_file = \"client-secret\"\n\
             authority_host = \"{}\"\ngraph_base_url = \"{}\"\n\
             [sync]\nretry_initial = \"50ms\"\nretry_max = \"5s\"\n{pacing}[log]\nlevel = \"warn\"\n",
            emu.authority_host(),
            emu.graph_base_url()
        );
        let config_path = dir.join("entra-daemon.toml");
        std::fs::write(&config_path, toml)?;
        let settings = Settings::load(&config_path)?;
        let conn = rusqlite::Connection::open(&settings.plumm.database)?;
        conn.execute_batch(PLUMM_USERS_FIXTURE)?;
        drop(conn);
        daemon::migrate(&settings)?;
        Ok(Self {
            _scratch: scratch,
            _emu: emu,
            control,
            settings,
            config_path,
        })
    }

    /// `n` people of `company`, emails `p{i}@{domain}`.
    pub(super) fn seed(&self, company: i64, domain: &str, n: usize) -> anyhow::Result<()> {
        let mut conn = rusqlite::Connection::open(&self.settings.plumm.database)?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
                 VALUES (?1, ?2, 'Person', ?3, 'Staff', 'Operations', 'London', 'GB')",
            )?;
            for i in 0..n {
                stmt.execute(rusqlite::params![
                    company,
                    format!("p{i}@{domain}"),
                    format!("N{i}")
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) fn plumm_exec(&self, sql: &str) -> anyhow::Result<()> {
        let conn = rusqlite::Connection::open(&self.settings.plumm.database)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(sql)?;
        Ok(())
    }

    pub(super) async fn connect(&self, company: i64, tenant: &str) -> anyhow::Result<()> {
        let tenant = TenantId::parse(tenant)?;
        daemon::connect(&self.settings, CompanyId(company), &tenant, true, "bench").await?;
        Ok(())
    }

    pub(super) fn spawn_daemon(&self) -> anyhow::Result<tokio::process::Child> {
        let exe = std::env::current_exe().context("locating the entra-daemon binary")?;
        tokio::process::Command::new(exe)
            .arg("--config")
            .arg(&self.config_path)
            .arg("run")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the daemon")
    }

    /// Waits until the daemon has nothing pending and Plumm's outbox is empty.
    pub(super) async fn wait_idle(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let state = StateDb::open(&self.settings.state.database)?;
        let plumm = PlummDb::open(&self.settings.plumm.database)?;
        let start = Instant::now();
        loop {
            if plumm.outbox_depth()?.0 == 0 && state.pending_total()? == 0 {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                anyhow::bail!("not idle after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Changes `email`'s role and waits until Entra shows it; the latency.
    pub(super) async fn probe(
        &self,
        tenant: &str,
        email: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Option<Duration>> {
        let role = format!("Probe {n}");
        self.plumm_exec(&format!(
            "UPDATE users SET role = '{role}' WHERE email = '{email}'"
        ))?;
        let start = Instant::now();
        loop {
            if self
                .control
                .find_user(tenant, email)
                .is_some_and(|u| u.job_title.as_deref() == Some(role.as_str()))
            {
                return Ok(Some(start.elapsed()));
            }
            if start.elapsed() > timeout {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Peak resident memory (KiB) and CPU seconds of a process, from /proc.
pub(super) fn process_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux for every architecture the kernel exports.
    Some((hwm, (utime + stime) / 100.0))
}
