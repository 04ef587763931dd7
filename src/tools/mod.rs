//! Tools beside the daemon: the demo and the benchmark, both against the
//! built-in emulator, and the world they (and the integration tests) run in.
pub mod bench;
pub mod demo;
pub mod world;
