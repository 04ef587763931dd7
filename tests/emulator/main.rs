//! The Graph + login emulator, checked against Microsoft's documented
//! behaviour on its own (the daemon is not involved here).
mod batch_throttle;
mod faults_log;
mod helpers;
mod limiter;
mod login;
mod queries;
mod users;
