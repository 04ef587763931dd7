//! The command line: what `entra-daemon` accepts ([`opt`]) and each
//! command, in words an operator can act on, with its exit code.
pub mod backup;
pub mod commands;
mod dispatch;
pub mod opt;
mod progress;
pub mod resync;
pub mod status;

pub use dispatch::{dispatch, load};

/// `run --once` exit code when some users were parked or must be retried.
pub const EXIT_INCOMPLETE: u8 = 2;
/// `status` exit code when something needs attention (1 is an error).
pub const EXIT_ATTENTION: u8 = 2;
