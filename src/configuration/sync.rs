//! `[sync]`: the engine's pools and timings (fixed at start), the policy
//! part of the reloadable [`Policy`], the brake and the resync schedule.
use std::time::Duration;

use serde::Deserialize;

use super::parse::{at_least_one, bounded, ms, secs};
use super::ConfigError;
use crate::engine::brake::BrakeSettings;
use crate::engine::quarantine::ProbeSettings;
use crate::engine::retry::RetrySettings;
use crate::engine::{Policy, SyncSettings};
use crate::graph::batch::BatchSettings;
use crate::mapping::groups::{GroupRules, OnSuspendGroups};
use crate::mapping::Mapping;
use crate::plan::lifecycle::Lifecycle;
use crate::plan::OnDelete;
use crate::resync::ResyncSettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSync {
    on_delete: OnDelete,
    on_suspend_groups: OnSuspendGroups,
    revoke_sessions_on_suspend: bool,
    upn_domain: String,
    realtime_workers_per_tenant: usize,
    bulk_workers_per_tenant: usize,
    retry_initial: String,
    retry_max: String,
    retry_attempts: usize,
    requeue_max: String,
    replication_timeout: String,
    drain_timeout: String,
    batch: bool,
    batch_linger: String,
    membership_batch_wait: String,
    quarantine_probe_first: String,
    quarantine_probe_max: String,
    reconcile_schedule: String,
    max_deprovision_count: u64,
    max_deprovision_percent: u64,
    brake_window: String,
    time_zone: String,
    prehire_lead: String,
    suspend_after_leave: bool,
    schedule_check_interval: String,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            on_delete: OnDelete::Suspend,
            on_suspend_groups: OnSuspendGroups::Keep,
            revoke_sessions_on_suspend: true,
            upn_domain: String::new(),
            realtime_workers_per_tenant: 8,
            bulk_workers_per_tenant: 80,
            retry_initial: "500ms".into(),
            retry_max: "60s".into(),
            retry_attempts: 6,
            requeue_max: "5m".into(),
            replication_timeout: "3m".into(),
            drain_timeout: "10s".into(),
            batch: true,
            batch_linger: "250ms".into(),
            membership_batch_wait: "2s".into(),
            quarantine_probe_first: "30s".into(),
            quarantine_probe_max: "1h".into(),
            // Nightly at 03:00 UTC (seconds, minutes, hours, day, month, weekday).
            reconcile_schedule: "0 0 3 * * *".into(),
            max_deprovision_count: 10,
            max_deprovision_percent: 20,
            brake_window: "10m".into(),
            time_zone: "UTC".into(),
            prehire_lead: "0s".into(),
            suspend_after_leave: false,
            // Scheduled changes happen within a minute of their time.
            schedule_check_interval: "30s".into(),
        }
    }
}

/// `[sync]` validated, split by who reads it.
pub(super) struct Sync {
    pub(super) settings: SyncSettings,
    pub(super) policy: Policy,
    pub(super) resync: ResyncSettings,
}

impl RawSync {
    /// `mapping`, `groups` and `audit_retention` come from their own
    /// sections and join the policy here.
    pub(super) fn validate(
        self,
        mapping: Mapping,
        groups: GroupRules,
        audit_retention: Duration,
    ) -> Result<Sync, ConfigError> {
        let upn_domain = self.upn_domain()?;
        let tz = self
            .time_zone
            .trim()
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ConfigError::Invalid {
                key: "sync.time_zone",
                reason: format!(
                    "'{}' is not an IANA time zone name such as Europe/London or UTC",
                    self.time_zone
                ),
            })?;
        let policy = Policy {
            mapping: mapping.with_time_zone(tz),
            groups,
            on_delete: self.on_delete,
            on_suspend_groups: self.on_suspend_groups,
            revoke_sessions_on_suspend: self.revoke_sessions_on_suspend,
            upn_domain,
            retry: self.retry()?,
            replication_timeout: bounded(
                "sync.replication_timeout",
                &self.replication_timeout,
                ms(10),
                secs(3600),
            )?,
            brake: self.brake()?,
            lifecycle: Lifecycle {
                prehire_lead: bounded(
                    "sync.prehire_lead",
                    &self.prehire_lead,
                    ms(0),
                    secs(366 * 86_400),
                )?,
                suspend_after_leave: self.suspend_after_leave,
            },
            audit_retention,
        };
        let schedule =
            crate::resync::schedule::parse(&self.reconcile_schedule).map_err(|reason| {
                ConfigError::Invalid {
                    key: "sync.reconcile_schedule",
                    reason,
                }
            })?;
        Ok(Sync {
            settings: self.engine()?,
            policy,
            resync: ResyncSettings {
                reconcile_schedule: schedule,
            },
        })
    }

    fn upn_domain(&self) -> Result<Option<String>, ConfigError> {
        let d = self.upn_domain.trim().to_string();
        if !d.is_empty() && (!d.contains('.') || d.contains('@')) {
            return Err(ConfigError::Invalid {
                key: "sync.upn_domain",
                reason: format!("'{d}' is not a domain name like contoso.onmicrosoft.com"),
            });
        }
        Ok((!d.is_empty()).then_some(d))
    }

    fn engine(&self) -> Result<SyncSettings, ConfigError> {
        for (key, n) in [
            (
                "sync.realtime_workers_per_tenant",
                self.realtime_workers_per_tenant,
            ),
            ("sync.bulk_workers_per_tenant", self.bulk_workers_per_tenant),
        ] {
            if !(1..=256).contains(&n) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{n} is outside 1..=256"),
                });
            }
        }
        let batch = match self.batch {
            false => None,
            true => Some(BatchSettings {
                linger: bounded("sync.batch_linger", &self.batch_linger, ms(0), secs(10))?,
                in_flight: 4,
            }),
        };
        Ok(SyncSettings {
            realtime_workers_per_tenant: self.realtime_workers_per_tenant,
            bulk_workers_per_tenant: self.bulk_workers_per_tenant,
            drain_timeout: bounded("sync.drain_timeout", &self.drain_timeout, ms(0), secs(3600))?,
            batch,
            schedule_check_interval: bounded(
                "sync.schedule_check_interval",
                &self.schedule_check_interval,
                ms(10),
                secs(60),
            )?,
            membership_batch_wait: bounded(
                "sync.membership_batch_wait",
                &self.membership_batch_wait,
                ms(0),
                secs(600),
            )?,
            probes: ProbeSettings {
                first: bounded(
                    "sync.quarantine_probe_first",
                    &self.quarantine_probe_first,
                    ms(10),
                    secs(86_400),
                )?,
                max: bounded(
                    "sync.quarantine_probe_max",
                    &self.quarantine_probe_max,
                    ms(10),
                    secs(7 * 86_400),
                )?,
            },
        })
    }

    fn retry(&self) -> Result<RetrySettings, ConfigError> {
        if self.retry_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "sync.retry_attempts",
                reason: "must be at least 1".into(),
            });
        }
        let retry = RetrySettings {
            initial: bounded("sync.retry_initial", &self.retry_initial, ms(1), secs(600))?,
            max: bounded("sync.retry_max", &self.retry_max, ms(1), secs(3600))?,
            max_attempts: self.retry_attempts,
            requeue_max: bounded("sync.requeue_max", &self.requeue_max, ms(1), secs(86_400))?,
        };
        if retry.initial > retry.max {
            return Err(ConfigError::Invalid {
                key: "sync.retry_initial",
                reason: format!(
                    "{} is longer than sync.retry_max ({})",
                    self.retry_initial, self.retry_max
                ),
            });
        }
        Ok(retry)
    }

    fn brake(&self) -> Result<BrakeSettings, ConfigError> {
        if self.max_deprovision_percent > 100 {
            return Err(ConfigError::Invalid {
                key: "sync.max_deprovision_percent",
                reason: format!("{} is outside 0..=100", self.max_deprovision_percent),
            });
        }
        Ok(BrakeSettings {
            max_count: at_least_one("sync.max_deprovision_count", self.max_deprovision_count)?,
            max_percent: self.max_deprovision_percent,
            window: bounded("sync.brake_window", &self.brake_window, ms(0), secs(86_400))?,
        })
    }
}
