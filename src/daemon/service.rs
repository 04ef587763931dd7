//! Life under systemd (`Type=notify`, see deploy/entra-daemon.service):
//! `READY=1` once the databases are open and migrated and the HTTP ports are
//! bound, `WATCHDOG=1` while the state database answers, `STOPPING=1` when a
//! shutdown begins. Outside systemd (`NOTIFY_SOCKET` unset) each
//! notification is a no-op.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::configuration::{ConfigError, Settings};
use crate::engine::Policy;
use crate::store::StateDb;

use super::StartupError;

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// The daemon is ready: called once the databases are open and migrated,
/// after the HTTP server (if configured) is listening.
pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("syncing")]);
}

/// Pings the systemd watchdog (when `WatchdogSec=` is set) at half its
/// period while the state database answers, so a daemon whose database has
/// hung is restarted; says `STOPPING=1` when `shutdown` turns true.
pub fn supervise(state: Arc<StateDb>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let period = sd_notify::watchdog_enabled().map(|d| d / 2);
    tokio::spawn(async move {
        loop {
            let tick = async {
                match period {
                    Some(p) => tokio::time::sleep(p.max(Duration::from_millis(10))).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick => match state.data_version() {
                    Ok(_) => notify(&[NotifyState::Watchdog]),
                    Err(e) => tracing::error!("watchdog not fed, the state database does not answer: {e}"),
                },
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
            }
        }
        notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    })
}

/// A configuration for `SIGHUP`: the file must be valid, the credentials
/// it names must be readable (a reload that would fail at the next token
/// request is refused now, and the old configuration stays), and its
/// `[mapping]` and `[[groups]]` must read only columns Plumm's table has: the columns are
/// discovered again, and the outbox triggers follow a column Plumm added
/// since the start. Returns the new policy, and the sections outside it
/// that changed (they take effect on restart, and the log says so).
pub fn reload(
    path: &Path,
    running: &Settings,
) -> Result<(Policy, Vec<&'static str>), StartupError> {
    let new = Settings::load(path)?;
    new.credential()?;
    if let Some(http) = &new.http {
        http.signing_key().map_err(ConfigError::from)?;
    }
    let mut plumm = super::startup::open_plumm(running)?;
    super::startup::plumm_columns(&mut plumm, &new.policy)?;
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let fixed: [(&'static str, bool); 9] = [
        ("[plumm]", differs(&new.plumm, &running.plumm)),
        ("[state]", differs(&new.state, &running.state)),
        ("[entra]", differs(&new.entra, &running.entra)),
        (
            "[sync] pools, $batch and probes",
            differs(&new.sync, &running.sync),
        ),
        (
            "[sync] reconcile_schedule",
            differs(&new.resync, &running.resync),
        ),
        ("[pacing]", differs(&new.pacing, &running.pacing)),
        ("[log]", differs(&new.log, &running.log)),
        ("[http]", differs(&new.http, &running.http)),
        ("[metrics]", differs(&new.metrics, &running.metrics)),
    ];
    let changed = fixed.iter().filter(|(_, d)| *d).map(|(s, _)| *s).collect();
    Ok((new.policy, changed))
}
