//! `entra-daemon status`: where each company stands.
use std::process::ExitCode;

use super::EXIT_ATTENTION;
use crate::configuration::Settings;
use crate::daemon;
use crate::domain::PlummUserId;
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

/// `entra-daemon status --user ID [--json]`: exit 0, or 1 when the person
/// has no linked Entra account.
pub fn person(settings: &Settings, user: i64, json: bool) -> anyhow::Result<ExitCode> {
    let state = daemon::open_state(settings)?;
    let Some(p) = crate::status::person::person(&state, None, PlummUserId(user))? else {
        anyhow::bail!("user {user} has no linked Entra account (not synced yet, or not in a connected company)");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", crate::status::person::text(&p));
    }
    Ok(ExitCode::SUCCESS)
}
