//! `entra-daemon backup FILE`: an online copy of the state database (links,
//! pending work, intents, the audit log), safe while the daemon runs. One
//! function for every caller; the command line only parses and prints.
use std::path::Path;

use crate::configuration::Settings;
use crate::store::backup::{backup_state, BackupError, BackupOptions, BackupReport};
use crate::support::progress::Progress;

/// Copies the configured state database to `file` (see
/// [`crate::store::backup`]): refuses an existing `file` unless `force`.
pub fn backup(
    settings: &Settings,
    file: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    let opts = BackupOptions {
        force,
        ..BackupOptions::default()
    };
    let report = backup_state(&settings.state.database, file, &opts, progress)?;
    tracing::info!(
        file = %report.path.display(),
        bytes = report.bytes,
        restarts = report.restarts,
        outbox_cursor = report.outbox_cursor,
        "state database backed up"
    );
    Ok(report)
}
