//! `entra-daemon status`: where each company stands.
use std::process::ExitCode;

use super::EXIT_ATTENTION;
use crate::configuration::Settings;
use crate::daemon;
use crate::status::{report, text};

/// `entra-daemon status [--json]`: exit 0 when all is well, 2 when something
/// needs attention.
pub fn command(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let state = daemon::open_state(settings)?;
    let r = report(&state)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", text(&r));
    }
    Ok(if r.needs_attention.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ATTENTION)
    })
}
