//! entra-daemon: makes Microsoft Entra ID follow Plumm.
//!
//! The pipeline, one module per stage:
//! outbox ([`store::plumm`]) -> desired user ([`mapping`]) -> plan ([`plan`])
//! -> Graph request ([`graph::request`]) -> audit row ([`store::audit`]),
//! driven by the [`engine`].
// Tests may unwrap: a panic there is a failed test, not a failed daemon.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
pub mod cli;
pub mod configuration;
pub mod connections;
pub mod daemon;
pub mod domain;
pub mod emulator;
pub mod engine;
pub mod graph;
pub mod http;
pub mod mapping;
pub mod metrics;
pub mod pacing;
pub mod plan;
pub mod resync;
pub mod status;
pub mod store;
pub mod support;
pub mod tools;

pub use support::new_guid;
