//! The sync engine's behaviour, checked end to end against the Graph
//! emulator: what reached Graph, what Entra holds, what the audit log says.
// Test code: a panic is a failed test; helpers are `pub` for the test modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
mod batch_writes;
mod campaigns;
mod cli;
#[path = "../common/mod.rs"]
mod common;
mod crash;
mod dates;
mod fail_closed;
mod forbidden;
mod group_bulk;
mod group_helpers;
mod group_history;
mod group_resync;
mod groups;
mod helpers;
mod licences;
mod lifecycle;
mod manager;
mod pacing;
mod person;
mod progress;
mod quarantine;
mod rehire;
mod resilience;
mod restore;
mod resync;
mod resync_brake;
mod scheduled;
mod soak;
