//! An online backup of the state database with SQLite's backup API, while
//! the daemon runs.
//!
//! The state database runs in WAL mode, so the backup's reads never block
//! the daemon's writers. Copying a few pages per step still matters: each
//! step holds a read snapshot only briefly (a long one would hold back the
//! WAL checkpoint) and reports progress. SQLite restarts a backup whose
//! source another connection changed between steps; a busy daemon could
//! keep restarting it, so after [`MAX_RESTARTS`] the rest is copied in one
//! step, one snapshot (which still blocks no writer).
//!
//! The copy is written to a hidden temporary file beside the destination,
//! checked, flushed to disk and only then renamed into place: a half-written
//! backup never has the name of a finished one.
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use crate::support::progress::{Progress, Update};

/// Restarts (the source changed between steps) before the rest is copied
/// in one step.
pub const MAX_RESTARTS: u32 = 3;

/// How a backup is taken.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Replace an existing file at the destination.
    pub force: bool,
    /// Pages copied per step (4 KiB each by default).
    pub pages_per_step: i32,
    /// Wait between steps, and before retrying a busy source.
    pub pause: Duration,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            force: false,
            pages_per_step: 1024,
            pause: Duration::from_millis(1),
        }
    }
}

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub pages: u64,
    /// Times the copy started again because the daemon wrote meanwhile.
    pub restarts: u32,
    /// The last Plumm outbox row the backup has recorded: a state database
    /// restored from it is behind Plumm by the rows handed over since.
    pub outbox_cursor: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the copy failed its integrity check ({0}); nothing was written to the destination")]
    Check(String),
    #[error(
        "the state database stayed locked for {0:?}; nothing was written to the destination: \
         try again, or stop whatever holds it (a `VACUUM`, another backup)"
    )]
    Locked(Duration),
}

/// How long the source may stay locked (busy) before the backup gives up.
const LOCKED_AT_MOST: Duration = Duration::from_secs(60);

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> BackupError {
    move |error| StoreError::Sql { context, error }.into()
}

/// Copies the state database at `source` to `dest` (see the module doc).
pub fn backup_state(
    source: &Path,
    dest: &Path,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    if !opts.force && dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    // Created 0600 by tempfile, and removed if anything below fails.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io("creating a temporary file in", dir))?;
    // Never create a state database that is not there: that is a typo.
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(
        |error| StoreError::Open {
            path: source.display().to_string(),
            error,
        },
    )?;
    src.busy_timeout(Duration::from_secs(5))
        .map_err(sql("opening the state database"))?;
    let mut dst = Connection::open(tmp.path()).map_err(sql("opening the backup file"))?;
    let (pages, restarts) = copy(&src, &mut dst, opts, progress)?;
    let outbox_cursor = finish_copy(&dst)?;
    drop(dst);
    restrict_like(source, tmp.path())?;
    tmp.as_file()
        .sync_all()
        .map_err(io("flushing", tmp.path()))?;
    let bytes = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    let placed = if opts.force {
        tmp.persist(dest)
    } else {
        tmp.persist_noclobber(dest)
    };
    placed.map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(dest.to_path_buf()),
        _ => io("renaming the backup to", dest)(e.error),
    })?;
    // The rename is durable only once the folder is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flushing the folder", dir))?;
    Ok(BackupReport {
        path: dest.to_path_buf(),
        bytes,
        pages,
        restarts,
        outbox_cursor,
    })
}

/// The page-by-page copy; (pages copied, restarts).
fn copy(
    src: &Connection,
    dst: &mut Connection,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<(u64, u32), BackupError> {
    let backup = Backup::new(src, dst).map_err(sql("starting the backup"))?;
    let (mut step, mut restarts, mut last_remaining) = (opts.pages_per_step.max(1), 0, None);
    let mut locked_since: Option<std::time::Instant> = None;
    loop {
        let result = backup.step(step).map_err(sql("copying pages"))?;
        let p = backup.progress();
        let (total, remaining) = (p.pagecount.max(0) as u64, p.remaining.max(0) as u64);
        if last_remaining.is_some_and(|before| remaining > before) {
            restarts += 1;
            if restarts >= MAX_RESTARTS {
                step = -1;
            }
        }
        last_remaining = Some(remaining);
        progress.update(&Update {
            task: "backup",
            stage: "copying the state database",
            done: total - remaining.min(total),
            total: Some(total),
            unit: "pages",
        });
        match result {
            StepResult::Done => return Ok((total, restarts)),
            StepResult::More => {
                locked_since = None;
                std::thread::sleep(opts.pause)
            }
            StepResult::Busy | StepResult::Locked => {
                let since = *locked_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > LOCKED_AT_MOST {
                    return Err(BackupError::Locked(LOCKED_AT_MOST));
                }
                std::thread::sleep(opts.pause)
            }
            // The enum is non-exhaustive; anything new is worth a retry.
            _ => std::thread::sleep(opts.pause),
        }
    }
}

/// Makes the copy one self-contained file (no `-wal` beside it), checks it,
/// and reads its hand-over cursor.
fn finish_copy(dst: &Connection) -> Result<i64, BackupError> {
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sql("closing the backup's journal"))?;
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sql("checking the backup"))?;
    if check != "ok" {
        return Err(BackupError::Check(check));
    }
    dst.query_row(
        "SELECT outbox_cursor FROM daemon_meta WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .map_err(sql("reading the backup's outbox cursor"))
}

/// The backup holds the audit log: no wider access than the state
/// database's own, and never more than its owner's.
fn restrict_like(source: &Path, copy: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(source)
            .map_err(io("reading the permissions of", source))?
            .permissions()
            .mode();
        std::fs::set_permissions(copy, std::fs::Permissions::from_mode(mode & 0o600))
            .map_err(io("setting the permissions of", copy))?;
    }
    #[cfg(not(unix))]
    let _ = (source, copy);
    Ok(())
}
