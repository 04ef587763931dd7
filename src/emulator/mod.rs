//! Graph + Microsoft login emulator (loopback only).
