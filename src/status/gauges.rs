//! The per-company gauges of `/metrics`, read from the databases at scrape
//! time and handed to [`crate::metrics`].
use super::{all_companies, State};
use crate::metrics::{stored_figures, CompanyFigures};
use crate::store::{PlummDb, StateDb, StoreError};

/// Reads the stored figures (and the outbox depth, given Plumm's database)
/// into the metrics.
pub fn refresh(state: &StateDb, plumm: Option<&PlummDb>) -> Result<(), StoreError> {
    // Rows not yet recorded: recorded ones wait a moment for their delete.
    let cursor = state.outbox_cursor()?;
    let outbox = plumm.map(|p| p.outbox_waiting(cursor)).transpose()?;
    let companies: Vec<CompanyFigures> = all_companies(state)?
        .into_iter()
        .map(|c| CompanyFigures {
            company: c.company,
            quarantined: c.state == State::Quarantined,
            pending: c.pending,
            oldest_pending_age_seconds: c.oldest_pending_age_seconds.unwrap_or(0),
            parked: c.parked,
            last_success: c
                .last_success
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis() as f64 / 1000.0),
        })
        .collect();
    stored_figures(outbox, &companies);
    Ok(())
}
