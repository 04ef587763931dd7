//! Where each company stands: `entra-daemon status`, `/metrics` and the
//! admin API all read it from here ([`gauges`] for `/metrics`, [`audit`]
//! for the audit log as a table).
//!
//! "Needs attention" is built from a list of [`SOURCES`], each looking at
//! one company; a new reason (e.g. a held mass-deprovision brake) is one
//! more function in that list.
use std::time::Duration;

use serde::Serialize;

pub mod audit;
pub mod gauges;
pub mod person;

use crate::domain::{CompanyId, LicenceError};
use crate::store::licences::licence_source;
use crate::store::reports::LastError;
use crate::store::{since, StateDb, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Connected,
    /// The tenant refuses the app: its changes are held until re-consent.
    Quarantined,
    NotConnected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connected => "connected",
            State::Quarantined => "quarantined",
            State::NotConnected => "not_connected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyStatus {
    pub company: i64,
    pub tenant: Option<String>,
    pub state: State,
    /// Why the tenant is quarantined ("needs re-consent: ...").
    pub reason: Option<String>,
    pub pending: i64,
    pub oldest_pending_at: Option<String>,
    pub oldest_pending_age_seconds: Option<u64>,
    pub parked: i64,
    /// Group additions waiting for their batch (bulk work).
    pub group_additions_queued: i64,
    /// Time-based changes waiting for their time (pre-hires, leave dates).
    pub scheduled: i64,
    pub next_scheduled_at: Option<String>,
    /// People with a licence Entra could not assign, as the last resync
    /// listed them.
    pub licence_errors: i64,
    pub last_success: Option<String>,
    pub last_error: Option<LastError>,
}

/// Something an operator or an admin should act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attention {
    pub company: i64,
    /// A stable word for scripts: `quarantined`, `parked_users`, ...
    pub kind: &'static str,
    pub message: String,
}

/// One source of "needs attention", looking at one company.
pub type Source = fn(&StateDb, &CompanyStatus) -> Result<Option<Attention>, StoreError>;

/// Every source consulted, in the order their findings are listed.
pub const SOURCES: &[Source] = &[quarantined, parked_users, held_brake, licence_errors];

fn quarantined(_: &StateDb, c: &CompanyStatus) -> Result<Option<Attention>, StoreError> {
    Ok((c.state == State::Quarantined).then(|| Attention {
        company: c.company,
        kind: "quarantined",
        message: format!(
            "tenant {} needs re-consent ({}); {} changes are held",
            c.tenant.as_deref().unwrap_or("?"),
            c.reason.as_deref().unwrap_or("no reason recorded"),
            c.pending
        ),
    }))
}

fn parked_users(_: &StateDb, c: &CompanyStatus) -> Result<Option<Attention>, StoreError> {
    Ok((c.parked > 0).then(|| Attention {
        company: c.company,
        kind: "parked_users",
        message: format!(
            "{} users are parked until corrected in Plumm (`entra-daemon audit --company {} --failed`)",
            c.parked, c.company
        ),
    }))
}

fn held_brake(state: &StateDb, c: &CompanyStatus) -> Result<Option<Attention>, StoreError> {
    let held = state
        .brake(CompanyId(c.company))?
        .filter(|b| b.status == "held");
    Ok(held.map(|b| Attention {
        company: c.company,
        kind: "mass_deprovision_held",
        message: format!(
            "{} suspensions, deletions or group removals are held by the mass-deprovision brake ({}); check Plumm, \
             then `entra-daemon resync --company {} --allow-mass-deprovision`",
            b.held_count.unwrap_or(0),
            b.reason.unwrap_or_default(),
            c.company
        ),
    }))
}

/// Licences Entra could not assign to the company's people: Entra's to
/// resolve (licensing-groups-resolve-problems), named with what to do.
fn licence_errors(state: &StateDb, c: &CompanyStatus) -> Result<Option<Attention>, StoreError> {
    if c.licence_errors == 0 {
        return Ok(None);
    }
    let (people, counts) = state.licence_error_counts(CompanyId(c.company))?;
    let plural = |n: i64| if n == 1 { "person" } else { "people" };
    let mut parts: Vec<String> = counts
        .iter()
        .take(3)
        .map(|k| {
            format!(
                "{}: {} for SKU {} {}, {} {}",
                k.error,
                LicenceError::advice(&k.error),
                k.sku_id,
                licence_source(k.group_id.as_deref(), k.group_name.as_deref()),
                k.people,
                plural(k.people)
            )
        })
        .collect();
    if counts.len() > 3 {
        parts.push(format!("{} more", counts.len() - 3));
    }
    Ok(Some(Attention {
        company: c.company,
        kind: "licence_errors",
        message: format!(
            "{people} {} licence errors in Entra ({}); Entra assigns the licences, the daemon only \
             the groups: see `entra-daemon status --user ID`",
            if people == 1 { "person has" } else { "people have" },
            parts.join("; ")
        ),
    }))
}

/// What every source says about `c`.
pub fn needs_attention(state: &StateDb, c: &CompanyStatus) -> Result<Vec<Attention>, StoreError> {
    let mut out = Vec::new();
    for source in SOURCES {
        out.extend(source(state, c)?);
    }
    Ok(out)
}

/// One company, connected or not.
pub fn company(state: &StateDb, id: CompanyId) -> Result<CompanyStatus, StoreError> {
    let quarantine = state.quarantined()?.into_iter().find(|q| q.company == id);
    let connection = state.connection(id)?;
    let connected = connection.is_some();
    let (pending, oldest) = state.pending_summary(id)?;
    let (scheduled, next_scheduled_at) = state.scheduled_summary(id)?;
    Ok(CompanyStatus {
        company: id.0,
        tenant: connection.map(|c| c.tenant.as_str().to_string()),
        state: match (connected, &quarantine) {
            (false, _) => State::NotConnected,
            (true, Some(_)) => State::Quarantined,
            (true, None) => State::Connected,
        },
        reason: quarantine.map(|q| q.reason),
        pending,
        oldest_pending_age_seconds: oldest.as_deref().and_then(since).map(|d| d.as_secs()),
        oldest_pending_at: oldest,
        parked: state.parked_count(id)?,
        group_additions_queued: state.queued_membership_count(Some(id))?,
        scheduled,
        next_scheduled_at,
        licence_errors: state.licence_error_people(id)?,
        last_success: state.last_success(id)?,
        last_error: state.last_error(id)?,
    })
}

/// Every connected company, by id.
pub fn all_companies(state: &StateDb) -> Result<Vec<CompanyStatus>, StoreError> {
    state
        .connections()?
        .into_iter()
        .map(|c| company(state, c.company))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub companies: Vec<CompanyStatus>,
    pub needs_attention: Vec<Attention>,
}

pub fn report(state: &StateDb) -> Result<Report, StoreError> {
    let companies = all_companies(state)?;
    let mut attention = Vec::new();
    for c in &companies {
        attention.extend(needs_attention(state, c)?);
    }
    Ok(Report {
        companies,
        needs_attention: attention,
    })
}

fn age(secs: Option<u64>) -> String {
    secs.map(|s| humantime::format_duration(Duration::from_secs(s)).to_string())
        .unwrap_or_else(|| "-".into())
}

/// One line per company, then what needs attention.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    if r.companies.is_empty() {
        out.push_str("no company is connected\n");
    }
    for c in &r.companies {
        let state = match (&c.state, &c.reason) {
            (State::Quarantined, Some(why)) => format!("quarantined (needs re-consent: {why})"),
            (s, _) => s.as_str().to_string(),
        };
        let last_error = c
            .last_error
            .as_ref()
            .map(|e| format!("{} {} {}: {}", e.at, e.action, e.outcome, e.message))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "company {}  tenant {}  {}  pending {}  oldest pending {}  parked {}{}{}{}  last success {}  last error {}\n",
            c.company,
            c.tenant.as_deref().unwrap_or("-"),
            state,
            c.pending,
            age(c.oldest_pending_age_seconds),
            c.parked,
            match c.group_additions_queued {
                0 => String::new(),
                n => format!("  group additions queued {n}"),
            },
            match (c.scheduled, &c.next_scheduled_at) {
                (0, _) => String::new(),
                (n, next) => format!(
                    "  {n} scheduled changes, next at {}",
                    next.as_deref().unwrap_or("-")
                ),
            },
            match c.licence_errors {
                0 => String::new(),
                n => format!("  licence errors {n}"),
            },
            c.last_success.as_deref().unwrap_or("-"),
            last_error,
        ));
    }
    for a in &r.needs_attention {
        out.push_str(&format!(
            "needs attention: company {} {}: {}\n",
            a.company, a.kind, a.message
        ));
    }
    out
}
