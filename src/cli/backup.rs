//! `entra-daemon backup FILE [--force]`: parses, shows progress, prints the
//! result; the work is [`daemon::backup`].
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::configuration::Settings;
use crate::daemon;

pub fn command(
    settings: &Settings,
    file: &Path,
    force: bool,
    progress_every: Duration,
) -> anyhow::Result<ExitCode> {
    let progress = super::progress::stderr(progress_every);
    let report = daemon::backup(settings, file, force, progress.as_ref())?;
    drop(progress);
    let restarts = match report.restarts {
        0 => String::new(),
        n => format!("; restarted {n} times as the daemon wrote"),
    };
    println!(
        "backed up {} to {}: {} pages, {} bytes, Plumm's outbox recorded up to row {}{restarts}",
        settings.state.database.display(),
        report.path.display(),
        report.pages,
        report.bytes,
        report.outbox_cursor
    );
    Ok(ExitCode::SUCCESS)
}
