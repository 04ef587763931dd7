//! Tools beside the daemon: the demo, the benchmark and the reliability
//! campaigns (soak), all against the built-in emulator, and the world they
//! (and the integration tests) run in.
pub mod bench;
pub mod demo;
pub mod soak;
pub mod world;
