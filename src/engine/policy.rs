//! The reload contract: what `SIGHUP` changes, and what it does not.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::brake::BrakeSettings;
use super::quarantine::ProbeSettings;
use super::retry::RetrySettings;
use crate::graph::batch::BatchSettings;
use crate::mapping::groups::{GroupRules, OnSuspendGroups};
use crate::mapping::Mapping;
use crate::plan::lifecycle::Lifecycle;
use crate::plan::OnDelete;

/// The policy: every setting `systemctl reload` (`SIGHUP`) changes in a
/// running daemon. A valid new configuration's policy is sent on one watch
/// channel ([`PolicyRx`]) to every consumer: the workers (real-time
/// changes), the resyncs (`SIGUSR1`, the schedule, `entra-daemon resync`
/// asking the daemon), the mass-deprovision brake, the connect flow and the
/// audit retention job. Each reads the policy in force when its piece of
/// work starts (a user's change, a company's resync, a pruning pass), so
/// one piece of work never mixes two policies. Everything else in the
/// configuration (database paths, `[entra]`, `[pacing]`, worker pools,
/// `$batch`, quarantine probes, the resync schedule, `[http]`, `[log]`, the
/// credentials) is fixed at start and changes on restart.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `[mapping]`: Plumm's columns -> Entra's properties.
    pub mapping: Mapping,
    /// `[[groups]]`: Plumm columns -> the Entra groups a person belongs in.
    pub groups: GroupRules,
    /// `[sync] on_delete`: what a person leaving Plumm does to the account.
    pub on_delete: OnDelete,
    /// `[sync] on_suspend_groups`: what a suspension does to managed memberships.
    pub on_suspend_groups: OnSuspendGroups,
    /// `[sync] revoke_sessions_on_suspend`.
    pub revoke_sessions_on_suspend: bool,
    /// `[sync] upn_domain`: the fallback UPN domain.
    pub upn_domain: Option<String>,
    /// `[sync] retry_*`, `requeue_max`: how patient each Graph call is.
    pub retry: RetrySettings,
    /// `[sync] replication_timeout`: Graph's replication window (how long a
    /// duplicate may stay invisible, a 404 for a new account is lag, and a
    /// create whose answer was lost is looked for).
    pub replication_timeout: Duration,
    /// `[sync] max_deprovision_*`, `brake_window`: the mass-deprovision brake.
    pub brake: BrakeSettings,
    /// `[sync] prehire_lead`, `suspend_after_leave`: what a person's start
    /// and leave dates do to their account.
    pub lifecycle: Lifecycle,
    /// `[audit] retention_days`: how long audit rows are kept.
    pub audit_retention: Duration,
}

/// Where the policy in force is read from.
pub type PolicyRx = watch::Receiver<Arc<Policy>>;

impl Policy {
    /// A channel that will only ever hold this policy (a one-shot command,
    /// a test): the receiver keeps the value after the sender is gone.
    pub fn fixed(self) -> PolicyRx {
        watch::channel(Arc::new(self)).1
    }
}

/// `[sync]` settings fixed at start: the engine's pools and timings.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Users worked on at once per tenant, for real-time changes and for
    /// bulk work (initial sync): separate pools, so a bulk backlog never
    /// takes the slots a new hire needs. The pacer decides how fast they go.
    pub realtime_workers_per_tenant: usize,
    pub bulk_workers_per_tenant: usize,
    /// How long `SIGTERM` lets in-flight Graph calls finish.
    pub drain_timeout: Duration,
    /// `$batch` coalescing, or `None` to send every request alone.
    pub batch: Option<BatchSettings>,
    /// How often a quarantined tenant is asked whether it accepts the app again.
    pub probes: ProbeSettings,
    /// `membership_batch_wait`: how long bulk group additions wait for a
    /// fuller batch (20 members a write) while bulk work is under way.
    pub membership_batch_wait: Duration,
    /// `schedule_check_interval`: how often the scheduler looks for
    /// scheduled changes that fell due (at most a minute, so they happen
    /// within a minute of their time).
    pub schedule_check_interval: Duration,
}
