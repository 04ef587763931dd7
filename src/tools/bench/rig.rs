//! One benchmark setup: an emulator with Microsoft's documented limits (on
//! a time scale), a Plumm database, a config, and the daemon as a separate
//! process so its memory and CPU are its own.
use std::future::Future;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::emulator::{TenantSize, TenantSpec, Traffic};
use crate::new_guid;
use crate::tools::world::{poll, World};

pub(super) struct TenantPlan {
    pub company: i64,
    pub tenant: String,
    pub domain: String,
    pub size: TenantSize,
}

/// The benchmark's world; it serves until the rig is dropped.
pub(super) struct Rig {
    pub world: World,
}

/// Tenant ids for the benchmark: deterministic, valid GUIDs.
pub(super) fn tenant_id(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", 0xbe00 + i, i + 1)
}

/// How often the rig looks whether the daemon is idle.
const IDLE_EVERY: Duration = Duration::from_millis(20);
/// How often a probe looks whether Entra shows its change: often, since
/// the look bounds the latency it measures.
const PROBE_EVERY: Duration = Duration::from_millis(1);

impl Rig {
    pub(super) async fn new(
        tenants: &[TenantPlan],
        time_scale: f64,
        latency_ms: (u64, u64),
    ) -> anyhow::Result<Self> {
        let mut world = World::builder()
            .scratch("entra-daemon-bench")
            .client_secret(&format!("bench~{}", new_guid()))
            .emulator(|c| {
                c.time_scale = time_scale;
                // Counts come from running totals; the log only needs a tail.
                c.log_capacity = 10_000;
                c.random_faults.latency_ms_min = latency_ms.0;
                c.random_faults.latency_ms_max = latency_ms.1;
            })
            .sync("retry_initial = \"50ms\"\nretry_max = \"5s\"")
            .pacing(&format!("time_scale = {time_scale:?}"));
        for t in tenants {
            let size = match t.size {
                TenantSize::Small => "small",
                TenantSize::Medium => "medium",
                TenantSize::Large => "large",
            };
            world = world
                .tenant(TenantSpec {
                    id: t.tenant.clone(),
                    domains: vec![t.domain.clone()],
                    size: t.size,
                    consented: true,
                    permissions: crate::emulator::default_permissions(),
                })
                .config(
                    &format!("pacing.tenants.\"{}\"", t.tenant),
                    &format!("size = \"{size}\""),
                );
        }
        let world = world.log("level = \"warn\"").build().await?;
        Ok(Self { world })
    }

    /// `n` people of `company`, emails `p{i}@{domain}`.
    pub(super) fn seed(&self, company: i64, domain: &str, n: usize) -> anyhow::Result<()> {
        let mut conn = rusqlite::Connection::open(&self.world.settings.plumm.database)?;
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

    pub(super) async fn connect(&self, company: i64, tenant: &str) -> anyhow::Result<()> {
        self.world.connect(company, tenant, "bench").await
    }

    pub(super) fn spawn_daemon(&self) -> anyhow::Result<tokio::process::Child> {
        let exe = std::env::current_exe().context("locating the entra-daemon binary")?;
        tokio::process::Command::new(exe)
            .arg("--config")
            .arg(&self.world.config_path)
            .arg("run")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the daemon")
    }

    /// Runs `probes` (real-time changes, one after another, until `stop`)
    /// while `tenant`'s initial sync of `users` runs; returns how long the
    /// sync took from `start` and the tenant's traffic then. The end is
    /// looked for every 20 ms, apart from the probes: their own pace (each
    /// waits for its change, then 100 ms) is not the daemon's. A probe made
    /// after the end is in neither figure.
    pub(super) async fn sync_with_probes(
        &self,
        (tenant, users): (&str, usize),
        start: Instant,
        stop: &AtomicBool,
        probes: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<(f64, Traffic)> {
        let end = async {
            let all_there = || Ok(self.world.control.user_count(tenant) >= users);
            let synced = poll(Duration::from_secs(3_600), IDLE_EVERY, all_there).await;
            let idle = match synced {
                Ok(Some(_)) => self.wait_idle(Duration::from_secs(600)).await.map(|_| ()),
                Ok(None) => Err(anyhow::anyhow!(
                    "the initial sync did not finish in an hour"
                )),
                Err(e) => Err(e),
            };
            let end = (
                start.elapsed().as_secs_f64(),
                self.world.control.traffic(tenant),
            );
            stop.store(true, Ordering::Relaxed);
            idle.map(|()| end)
        };
        let (end, probed) = tokio::join!(end, probes);
        probed?;
        end
    }

    /// Waits until the daemon has nothing pending and Plumm's outbox is empty.
    pub(super) async fn wait_idle(&self, timeout: Duration) -> anyhow::Result<Duration> {
        self.world.converged(timeout, IDLE_EVERY).await
    }

    /// A baseline (`naive.rs`) as its own process on `company`'s initial
    /// sync: `workers` at once, for at most `seconds`; its statistics.
    pub(super) async fn baseline(
        &self,
        company: i64,
        tenant: &str,
        seconds: f64,
        workers: usize,
    ) -> anyhow::Result<super::naive::NaiveStats> {
        let exe = std::env::current_exe()?;
        let out = tokio::process::Command::new(exe)
            .arg("--config")
            .arg(&self.world.config_path)
            .args(["bench", "--naive-worker", "--company"])
            .arg(company.to_string())
            .args(["--tenant", tenant, "--seconds"])
            .arg(seconds.to_string())
            .arg("--workers")
            .arg(workers.to_string())
            .env("RUST_LOG", "error")
            .output()
            .await?;
        if !out.status.success() {
            anyhow::bail!(
                "baseline worker failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
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
        self.world.plumm(&format!(
            "UPDATE users SET role = '{role}' WHERE email = '{email}'"
        ))?;
        let shows = || {
            let user = self.world.control.find_user(tenant, email);
            Ok(user.is_some_and(|u| u.job_title.as_deref() == Some(role.as_str())))
        };
        poll(timeout, PROBE_EVERY, shows).await
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
