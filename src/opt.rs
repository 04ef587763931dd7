//! Command line.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        #[arg(long)]
        company: i64,
    },
    /// Show the audit log: what was done in Entra, and why something was not.
    Audit {
        #[arg(long)]
        company: Option<i64>,
        /// Only rows about this email (case-insensitive).
        #[arg(long)]
        email: Option<String>,
        /// Only failures: retries, failed attempts, parked users.
        #[arg(long)]
        failed: bool,
        /// Only rows newer than this, e.g. 30m, 24h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// At most this many rows (the newest).
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Only full resyncs: one summary row per run (trigger, counts,
        /// duration, outcome).
        #[arg(long)]
        runs: bool,
    },
    /// Full resync: make each connected company's Entra tenant match Plumm
    /// now (drift made in Entra included). Asks the running daemon, or does
    /// the work itself when none runs. Exit 2 when the mass-deprovision
    /// brake held suspensions or deletions back.
    Resync {
        /// Only this company (default: every connected company).
        #[arg(long)]
        company: Option<i64>,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The plan as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Release the company's mass-deprovision brake and apply its
        /// suspensions and deletions (needs --company).
        #[arg(long)]
        allow_mass_deprovision: bool,
    },
    /// Validate the configuration file and exit.
    CheckConfig,
    /// Serve the Microsoft Graph + login emulator on loopback. `--config`
    /// names the emulator's configuration (tenants, app, limits, faults).
    Emulator {
        #[arg(long, default_value = "127.0.0.1:8765")]
        listen: SocketAddr,
    },
    /// Play a realistic day against the built-in emulator and show the result.
    Demo,
}
