//! The connect flow end to end: Plumm's Store link, the emulator's admin
//! consent page, the OAuth callback, disconnect and reconnect, several
//! tenants at once, certificate credentials, and a real browser.
// Test code: a panic is a failed test; helpers are `pub` for the test modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
mod browser;
mod certificate;
#[path = "../common/mod.rs"]
mod common;
mod flow;
mod helpers;
mod lifecycle;
mod routes;
mod secrets;
