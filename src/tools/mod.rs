//! Tools beside the daemon: the demo and the benchmark, both against the
//! built-in emulator.
pub mod bench;
pub mod demo;
