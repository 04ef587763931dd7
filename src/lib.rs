//! entra-daemon: provisions Plumm users into Microsoft Entra ID.
pub mod emulator;
