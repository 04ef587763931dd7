//! The daemon as a process: builds its parts from the settings and runs
//! them ([`startup`]) and lives under systemd ([`service`]).
pub mod backup;
mod handover;
pub mod service;
pub mod startup;

pub use backup::backup;
pub use startup::*;
