//! Small helpers every layer may use; this module imports nothing of the
//! daemon's.
use std::path::Path;

pub mod progress;
pub mod telemetry;

/// A random GUID (RFC 4122 version 4), as Graph's `client-request-id` and
/// the emulator's object ids use.
pub fn new_guid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// A scratch folder (demo, bench) that is removed however its owner ends.
pub fn scratch(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
}

/// A secret other users can read is a leak waiting to happen; say so, but
/// do not refuse (operators sometimes stage files before fixing modes).
pub fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "secret file is readable by group or others; run chmod 600 on it"
                );
            }
        }
    }
}
