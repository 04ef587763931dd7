//! The config file as written: strict serde structs with their defaults.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{LogFormat, TenantPacing};
use crate::pacing::limits::TenantSize;
use crate::plan::OnDelete;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub(super) plumm: RawPlumm,
    pub(super) state: RawState,
    pub(super) entra: RawEntra,
    #[serde(default)]
    pub(super) sync: RawSync,
    pub(super) mapping: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) pacing: RawPacing,
    #[serde(default)]
    pub(super) log: RawLog,
    pub(super) http: Option<super::http::RawHttp>,
    #[serde(default)]
    pub(super) audit: super::audit::RawAudit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPacing {
    #[serde(default)]
    pub(super) default_tenant_size: TenantSize,
    #[serde(default)]
    pub(super) tenants: BTreeMap<String, TenantPacing>,
    #[serde(default = "d_one")]
    pub(super) time_scale: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlumm {
    pub(super) database: PathBuf,
    #[serde(default = "d_poll")]
    pub(super) poll_interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) database: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntra {
    pub(super) client_id: String,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) client_certificate_file: Option<PathBuf>,
    pub(super) client_certificate_key_file: Option<PathBuf>,
    #[serde(default = "d_authority")]
    pub(super) authority_host: String,
    #[serde(default = "d_graph")]
    pub(super) graph_base_url: String,
    #[serde(default = "d_timeout")]
    pub(super) request_timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    #[serde(default = "d_on_delete")]
    pub(super) on_delete: OnDelete,
    #[serde(default = "d_true")]
    pub(super) revoke_sessions_on_suspend: bool,
    #[serde(default)]
    pub(super) upn_domain: String,
    #[serde(default = "d_realtime_workers")]
    pub(super) realtime_workers_per_tenant: usize,
    #[serde(default = "d_bulk_workers")]
    pub(super) bulk_workers_per_tenant: usize,
    #[serde(default = "d_retry_initial")]
    pub(super) retry_initial: String,
    #[serde(default = "d_retry_max")]
    pub(super) retry_max: String,
    #[serde(default = "d_retry_attempts")]
    pub(super) retry_attempts: usize,
    #[serde(default = "d_requeue_max")]
    pub(super) requeue_max: String,
    #[serde(default = "d_replication_timeout")]
    pub(super) replication_timeout: String,
    #[serde(default = "d_drain_timeout")]
    pub(super) drain_timeout: String,
    #[serde(default = "d_true")]
    pub(super) batch: bool,
    #[serde(default = "d_batch_linger")]
    pub(super) batch_linger: String,
    #[serde(default = "d_probe_first")]
    pub(super) quarantine_probe_first: String,
    #[serde(default = "d_probe_max")]
    pub(super) quarantine_probe_max: String,
    #[serde(default = "d_reconcile_schedule")]
    pub(super) reconcile_schedule: String,
    #[serde(default = "d_max_deprovision_count")]
    pub(super) max_deprovision_count: u64,
    #[serde(default = "d_max_deprovision_percent")]
    pub(super) max_deprovision_percent: u64,
    #[serde(default = "d_brake_window")]
    pub(super) brake_window: String,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            on_delete: d_on_delete(),
            revoke_sessions_on_suspend: true,
            upn_domain: String::new(),
            realtime_workers_per_tenant: d_realtime_workers(),
            bulk_workers_per_tenant: d_bulk_workers(),
            retry_initial: d_retry_initial(),
            retry_max: d_retry_max(),
            retry_attempts: d_retry_attempts(),
            requeue_max: d_requeue_max(),
            replication_timeout: d_replication_timeout(),
            drain_timeout: d_drain_timeout(),
            batch: true,
            batch_linger: d_batch_linger(),
            quarantine_probe_first: d_probe_first(),
            quarantine_probe_max: d_probe_max(),
            reconcile_schedule: d_reconcile_schedule(),
            max_deprovision_count: d_max_deprovision_count(),
            max_deprovision_percent: d_max_deprovision_percent(),
            brake_window: d_brake_window(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default = "d_level")]
    pub(super) level: String,
    #[serde(default = "d_format")]
    pub(super) format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: d_level(),
            format: d_format(),
        }
    }
}

fn d_poll() -> String {
    "5ms".into()
}
fn d_authority() -> String {
    "https://login.microsoftonline.com".into()
}
fn d_graph() -> String {
    "https://graph.microsoft.com/v1.0".into()
}
fn d_timeout() -> String {
    "30s".into()
}
fn d_on_delete() -> OnDelete {
    OnDelete::Suspend
}
impl Default for RawPacing {
    fn default() -> Self {
        Self {
            default_tenant_size: TenantSize::default(),
            tenants: BTreeMap::new(),
            time_scale: 1.0,
        }
    }
}

fn d_one() -> f64 {
    1.0
}
fn d_true() -> bool {
    true
}
fn d_realtime_workers() -> usize {
    8
}
fn d_bulk_workers() -> usize {
    40
}
fn d_retry_initial() -> String {
    "500ms".into()
}
fn d_retry_max() -> String {
    "60s".into()
}
fn d_retry_attempts() -> usize {
    6
}
fn d_requeue_max() -> String {
    "5m".into()
}
fn d_replication_timeout() -> String {
    "3m".into()
}
fn d_probe_first() -> String {
    "30s".into()
}
fn d_probe_max() -> String {
    "1h".into()
}
fn d_batch_linger() -> String {
    "250ms".into()
}
fn d_drain_timeout() -> String {
    "10s".into()
}
/// Nightly at 03:00 UTC (seconds, minutes, hours, day, month, weekday).
fn d_reconcile_schedule() -> String {
    "0 0 3 * * *".into()
}
fn d_max_deprovision_count() -> u64 {
    10
}
fn d_max_deprovision_percent() -> u64 {
    20
}
fn d_brake_window() -> String {
    "10m".into()
}
fn d_level() -> String {
    "info".into()
}
fn d_format() -> LogFormat {
    LogFormat::Text
}
