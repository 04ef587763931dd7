//! `[pacing]`: how hard the daemon may push each tenant. Pure.
use std::collections::BTreeMap;

use serde::Deserialize;

use super::limits::{AppLimits, Rate, TenantLimits, TenantSize};
use crate::domain::TenantId;

/// Graph's documented limits by tenant size, or the operator's numbers for
/// a tenant.
#[derive(Debug, Clone)]
pub struct PacingSettings {
    pub default_size: TenantSize,
    pub tenants: BTreeMap<TenantId, TenantPacing>,
    /// Divides every limit's window: 1.0 against Microsoft; the emulator's
    /// `time_scale` when it runs Microsoft's ratios faster (benchmarks, tests).
    pub time_scale: f64,
    /// Bulk writes on the wire in a tenant start at one `$batch` and grow
    /// with clean answers (`window.rs`, slow start).
    pub slow_start: bool,
}

impl Default for PacingSettings {
    fn default() -> Self {
        Self {
            default_size: TenantSize::default(),
            tenants: BTreeMap::new(),
            time_scale: 1.0,
            slow_start: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPacing {
    pub size: Option<TenantSize>,
    pub resource_units_per_10s: Option<f64>,
    pub writes_per_150s: Option<f64>,
}

impl PacingSettings {
    pub fn limits_for(&self, tenant: &TenantId) -> TenantLimits {
        let o = self.tenants.get(tenant);
        let size = o.and_then(|o| o.size).unwrap_or(self.default_size);
        let mut l = TenantLimits::documented(size);
        if let Some(ru) = o.and_then(|o| o.resource_units_per_10s) {
            l.resource_units = Rate::new(ru, 10.0);
        }
        if let Some(w) = o.and_then(|o| o.writes_per_150s) {
            l.writes = Rate::new(w, 150.0);
        }
        TenantLimits {
            resource_units: self.scaled(l.resource_units),
            writes: self.scaled(l.writes),
            tenant_writes: self.scaled(l.tenant_writes),
        }
    }

    pub fn app_limits(&self) -> AppLimits {
        let a = AppLimits::documented();
        AppLimits {
            resource_units: self.scaled(a.resource_units),
            writes: self.scaled(a.writes),
        }
    }

    fn scaled(&self, r: Rate) -> Rate {
        Rate::new(r.capacity, r.window_secs / self.time_scale)
    }
}
