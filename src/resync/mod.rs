//! Full resync: make Entra match Plumm *now*, after an outage, drift made
//! directly in Entra or a restored backup. Triggered by `SIGUSR1` (every
//! connected company), `entra-daemon resync`, and `[sync]
//! reconcile_schedule`; planned per user ([`plan`], pure), applied through
//! the engine ([`run`]), guarded by the mass-deprovision brake
//! ([`crate::engine::brake`]), and reported ([`report`]). The daemon serialises runs per company
//! ([`service`]); the CLI asks the daemon or does the work itself.
mod apply;
mod licences;
mod members;
pub mod members_plan;
mod page;
pub mod plan;
pub mod report;
pub mod run;
pub mod schedule;
pub mod service;

pub use report::{CompanyReport, Trigger};
pub use run::{Resync, RunOptions};
pub use schedule::ResyncSettings;
pub use service::Service;
