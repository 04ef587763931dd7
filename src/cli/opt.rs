//! Command line.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::configuration::DEFAULT_CONFIG_PATH;

impl Opt {
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }
}

/// Makes Microsoft Entra ID follow Plumm: creates, updates, suspends and
/// reactivates Entra users as people change in Plumm.
#[derive(Debug, Parser)]
#[command(name = "entra-daemon", version, propagate_version = true)]
pub struct Opt {
    /// Configuration file [default: ./entra-daemon.toml]. For `emulator`,
    /// the emulator's own configuration file.
    #[arg(long, global = true, env = "ENTRA_DAEMON_CONFIG")]
    pub config: Option<PathBuf>,
    /// How often long work (resync, connect, backup) prints a progress line
    /// when stderr is not a terminal (a terminal gets a live bar).
    #[arg(long, global = true, env = "ENTRA_DAEMON_PROGRESS_EVERY", default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub progress_every: std::time::Duration,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations: the outbox and its triggers in Plumm's
    /// database, the daemon's own tables in the state database. Idempotent.
    Migrate,
    /// Run the daemon: follow Plumm's outbox and push every change to Entra.
    Run {
        /// Drain what is pending, then exit: 0 when everything converged,
        /// 2 when some users were parked or must be retried.
        #[arg(long)]
        once: bool,
    },
    /// Connect a company to its Entra tenant by hand and queue its users for
    /// an initial sync.
    Connect {
        /// Plumm's company id (`users.company_id`).
        #[arg(long)]
        company: i64,
        /// Directory (tenant) id, a GUID.
        #[arg(long)]
        tenant: String,
        /// Record the connection without proving the app can get a token and
        /// read the tenant.
        #[arg(long)]
        no_verify: bool,
    },
    /// Stop syncing a company. Pending work is dropped; nothing in Entra is
    /// deleted; links and history are kept for a later reconnect.
    Disconnect {
        /// Plumm's company id (`users.company_id`).
        #[arg(long)]
        company: i64,
    },
    /// Show the audit log: what was done in Entra, and why something was not.
    Audit(AuditArgs),
    /// Full resync: make each connected company's Entra tenant match Plumm
    /// now (drift made in Entra included). Asks the running daemon, or does
    /// the work itself when none runs. Exit 2 when the mass-deprovision
    /// brake held suspensions or deletions back.
    Resync(ResyncArgs),
    /// Copy the state database (links, pending work, intents, the audit
    /// log) to FILE while the daemon runs. Written beside FILE and renamed
    /// when complete, with the state database's permissions (owner only).
    Backup {
        /// Where the backup goes.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration file and exit.
    CheckConfig,
    /// One line per connected company: tenant, state (connected, or
    /// quarantined: needs re-consent, with the reason), pending changes, age
    /// of the oldest, parked users, last success, last error. Exits 0 when
    /// all is well, 2 when something needs attention (a quarantined tenant,
    /// parked users), 1 on error.
    Status {
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
        /// One person instead (Plumm's `users.id`): the groups the daemon
        /// manages for them, made or on their way.
        #[arg(long)]
        user: Option<i64>,
    },
    /// Serve the Microsoft Graph + login emulator on loopback. `--config`
    /// names the emulator's configuration (tenants, app, limits, faults).
    Emulator {
        #[arg(long, default_value = "127.0.0.1:8765")]
        listen: SocketAddr,
    },
    /// Play a realistic day against the built-in emulator and show the result.
    Demo,
    /// Measure pacing, latency, requests per change, memory and CPU against
    /// the emulator with Microsoft's documented limits, beside a naive
    /// baseline measured in the same run. Prints figures.
    Bench {
        /// Users of the one-tenant initial sync.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Tenants of the app-wide run.
        #[arg(long, default_value_t = 10)]
        tenants: usize,
        /// Users per tenant in the app-wide run.
        #[arg(long, default_value_t = 10_000)]
        users_per_tenant: usize,
        /// Run Microsoft's windows this much faster (emulator and pacer alike).
        #[arg(long, default_value_t = 10.0)]
        time_scale: f64,
        /// How long the naive baseline runs before its rate is projected.
        #[arg(long, default_value_t = 20.0)]
        naive_seconds: f64,
        /// Users of each run where another app takes part of the tenant's budget.
        #[arg(long, default_value_t = 6_000)]
        adaptive_users: usize,
        /// Only one section: `adaptive` (the runs where another app takes
        /// part of the tenant's budget), `groups` (group membership) or
        /// `app-wide` (every tenant's initial sync at once).
        #[arg(long, value_parser = ["adaptive", "groups", "app-wide"])]
        only: Option<String>,
        /// Internal: run as the naive baseline's worker process.
        #[arg(long, hide = true)]
        naive_worker: bool,
        #[arg(long, hide = true, default_value_t = 0)]
        company: i64,
        #[arg(long, hide = true, default_value = "")]
        tenant: String,
        #[arg(long, hide = true, default_value_t = 0.0)]
        seconds: f64,
        /// Internal: concurrent workers of the baseline (above 1: the
        /// client an SDK user writes).
        #[arg(long, hide = true, default_value_t = 1)]
        workers: usize,
    },
    /// Reliability campaigns against the emulator: faults during a drain,
    /// bad rows, Plumm's writers beside the daemon. Prints figures; exit 2
    /// when a campaign's verdict is not clean.
    Soak {
        #[arg(long, value_enum, default_value = "all")]
        campaign: SoakCampaign,
        /// Changes Plumm commits during the faults campaign.
        #[arg(long, default_value_t = 2_000)]
        changes: usize,
        /// The writer's commits per second.
        #[arg(long, default_value_t = 1_000.0)]
        writer_rate: f64,
        /// How long each writer run lasts, e.g. 20s.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        writer_duration: std::time::Duration,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// `entra-daemon audit`'s options.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only rows about this Plumm company id.
    #[arg(long)]
    pub company: Option<i64>,
    /// Only rows about this email (case-insensitive).
    #[arg(long)]
    pub email: Option<String>,
    /// Only failures: retries, failed attempts, parked users.
    #[arg(long)]
    pub failed: bool,
    /// Only rows newer than this, e.g. 30m, 24h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many rows (the newest).
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only full resyncs: one summary row per run (trigger, counts,
    /// duration, outcome).
    #[arg(long)]
    pub runs: bool,
}

/// `entra-daemon resync`'s options.
#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// Only this company (default: every connected company).
    #[arg(long)]
    pub company: Option<i64>,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The plan as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Release the company's mass-deprovision brake and apply its
    /// suspensions and deletions (needs --company).
    #[arg(long)]
    pub allow_mass_deprovision: bool,
}

/// `entra-daemon soak --campaign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SoakCampaign {
    All,
    Faults,
    BadRows,
    Writers,
}
