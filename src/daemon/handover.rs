//! The hand-over check at start (see [`crate::store::handover`]): what it
//! found, said once in the log where an operator looks after a restore.
use crate::store::handover::{reconcile, Handover};
use crate::store::{PlummDb, StateDb, StoreError};

/// Compares the watermarks of both databases, queues a resync when they
/// disagree, and logs what was found and what happens next. True when a
/// resync is owed.
pub(super) fn check(plumm: &mut PlummDb, state: &StateDb, once: bool) -> Result<bool, StoreError> {
    let found = reconcile(plumm, state)?;
    let companies = state.connections()?.len();
    let next = if once {
        "this run resyncs"
    } else {
        "resyncing"
    };
    let missed = |plumm_mark: i64, state_mark: i64| match companies {
        0 => "; no company is connected in this state database: reconnect each company \
              (`entra-daemon connect`, or the Store's Connect button; existing Entra users are \
              linked again by email), or stop the daemon and restore the latest backup"
            .to_string(),
        n => format!(
            "; {next} every connected company ({n}) now, so the changes in Plumm's outbox rows \
             {}..{} are not missed",
            plumm_mark.min(state_mark) + 1,
            plumm_mark.max(state_mark)
        ),
    };
    match found {
        Handover::InStep => {}
        Handover::Started { cursor } => {
            tracing::info!(cursor, "hand-over watermark recorded in Plumm's database");
        }
        Handover::StateBehind { state: s, plumm: p } => tracing::warn!(
            state_cursor = s,
            plumm_watermark = p,
            "the state database is behind Plumm's hand-over: it recorded Plumm's outbox up to \
             row {s}, but rows up to {p} were handed over to a newer state database and are gone \
             from the outbox (the state database was restored from a backup, or lost){}",
            missed(p, s)
        ),
        Handover::PlummBehind { state: s, plumm: p } => tracing::warn!(
            state_cursor = s,
            plumm_watermark = p,
            "Plumm's database is behind the state database: its outbox was handed over up to \
             row {p}, the state database recorded up to row {s} (Plumm's database was restored \
             from a backup?); reading Plumm's outbox after row {p} again{}",
            missed(p, s)
        ),
    }
    Ok(found.resyncs())
}
