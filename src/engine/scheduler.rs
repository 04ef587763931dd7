//! The scheduler: scheduled changes (a pre-hire's create and enable, a
//! leave-date suspension) that fell due are queued through the normal
//! pending path, and the worker converges the person from Plumm's row as
//! for any change. The rows are in the state database, so a restart, or a
//! `run --once` from cron, carries out what fell due meanwhile.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::store::{StateDb, StoreError};

/// Queues what is due now and wakes the dispatcher if anything was.
pub fn queue_due(state: &StateDb, wake: &Notify) -> Result<usize, StoreError> {
    let n = state.queue_due_scheduled(chrono::Utc::now())?;
    if n > 0 {
        tracing::info!("{n} scheduled changes fell due and were queued");
        wake.notify_one();
    }
    Ok(n)
}

/// Checks every `every` until `shutdown`, once at start first: what fell
/// due while the daemon was stopped goes at once.
pub fn spawn(
    state: Arc<StateDb>,
    wake: Arc<Notify>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = queue_due(&state, &wake) {
                tracing::error!("scheduled changes: {e}; trying again at the next check");
            }
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}
