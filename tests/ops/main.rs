//! Running the daemon in production: signals, shutdown, reload, health,
//! metrics, status, the admin API and the secret scan.
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
