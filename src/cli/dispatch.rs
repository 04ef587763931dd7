//! From the parsed command line to the command that runs it.
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::commands;
use super::opt::{Command, Opt};
use crate::configuration::Settings;
use crate::support::telemetry;

/// Runs the daemon command `opt` names (the tools, `demo`, `bench` and
/// `emulator`, are dispatched by `main`); the exit code is the command's.
pub async fn dispatch(opt: Opt) -> anyhow::Result<ExitCode> {
    let config_path = opt.config_path();
    let settings = load(&config_path)?;
    telemetry::init(&settings.log.level, settings.log.format);
    warn_if_root();
    daemon_command(opt.command, settings, &config_path, opt.progress_every).await
}

/// The configuration file, or an error that says where it was looked for.
pub fn load(config_path: &Path) -> anyhow::Result<Settings> {
    Settings::load(config_path).with_context(|| {
        format!(
            "loading {} (set --config or ENTRA_DAEMON_CONFIG; entra-daemon.toml in the \
             source tree is an annotated example)",
            config_path.display()
        )
    })
}

/// The commands that work on a configured daemon's databases and tenants.
async fn daemon_command(
    command: Command,
    settings: Settings,
    config_path: &Path,
    progress_every: Duration,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => commands::migrate(&settings).map(|_| ExitCode::SUCCESS),
        Command::Run { once } => commands::run(settings, config_path.to_path_buf(), once).await,
        Command::Connect {
            company,
            tenant,
            no_verify,
        } => commands::connect(&settings, company, &tenant, !no_verify, progress_every)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Disconnect { company } => commands::disconnect(&settings, company),
        Command::Audit(a) => commands::audit(&settings, a).map(|_| ExitCode::SUCCESS),
        Command::Status { json, user: None } => super::status::command(&settings, json),
        Command::Status {
            json,
            user: Some(user),
        } => super::status::person(&settings, user, json),
        Command::Resync(a) => super::resync::command(settings, a, progress_every).await,
        Command::Backup { file, force } => {
            super::backup::command(&settings, &file, force, progress_every)
        }
        Command::CheckConfig => {
            println!("{}: valid", config_path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Emulator { .. } | Command::Demo | Command::Bench { .. } | Command::Soak { .. } => {
            anyhow::bail!("{command:?} is a tool, not a daemon command: `main` runs it")
        }
    }
}

/// The daemon needs no privileges; running as root works but widens the
/// damage of any bug. Warn, do not refuse (containers and CI run as root).
fn warn_if_root() {
    #[cfg(unix)]
    {
        // The effective uid of this process, read from /proc (no libc call).
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let euid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2));
            if euid == Some("0") {
                tracing::warn!("running as root: a dedicated user (see deploy/) is safer");
            }
        }
    }
}
