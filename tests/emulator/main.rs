//! The Graph + login emulator, checked against Microsoft's documented
//! behaviour on its own (the daemon is not involved here).
// Test code: a panic is a failed test; helpers are `pub` for the test modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
mod batch_rules;
mod batch_throttle;
mod deleted_items;
mod employee;
mod faults_log;
mod foreign_load;
mod group_members;
mod groups;
mod helpers;
mod licences;
mod limiter;
mod login;
mod manager;
mod queries;
mod tls;
mod users;
