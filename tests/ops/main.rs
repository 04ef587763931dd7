//! Running the daemon in production: signals, shutdown, reload, health,
//! metrics, status, the admin API and the secret scan.
// Test code: a panic is a failed test; helpers are `pub` for the test modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
mod api;
#[path = "../common/mod.rs"]
mod common;
mod health;
mod helpers;
mod metrics;
mod notify;
mod reload;
mod secrets;
mod shutdown;
mod status;
