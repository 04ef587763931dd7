//! `[pacing]`: tenant sizes, per-tenant limits, the time scale.
use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;
use crate::domain::TenantId;
use crate::pacing::limits::TenantSize;
use crate::pacing::{PacingSettings, TenantPacing};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPacing {
    #[serde(default)]
    default_tenant_size: TenantSize,
    #[serde(default)]
    tenants: BTreeMap<String, TenantPacing>,
    #[serde(default = "d_one")]
    time_scale: f64,
    #[serde(default = "d_true")]
    slow_start: bool,
}

impl Default for RawPacing {
    fn default() -> Self {
        Self {
            default_tenant_size: TenantSize::default(),
            tenants: BTreeMap::new(),
            time_scale: 1.0,
            slow_start: true,
        }
    }
}

fn d_one() -> f64 {
    1.0
}

fn d_true() -> bool {
    true
}

impl RawPacing {
    pub(super) fn validate(self) -> Result<PacingSettings, ConfigError> {
        let scale = self.time_scale;
        if !(scale.is_finite() && (0.001..=1000.0).contains(&scale)) {
            return Err(ConfigError::Invalid {
                key: "pacing.time_scale",
                reason: format!("{scale} is outside 0.001..=1000 (1.0 is Microsoft's timing)"),
            });
        }
        let mut pacing = PacingSettings {
            default_size: self.default_tenant_size,
            tenants: BTreeMap::new(),
            time_scale: scale,
            slow_start: self.slow_start,
        };
        for (tenant, o) in self.tenants {
            let id = TenantId::parse(&tenant).map_err(|e| ConfigError::Invalid {
                key: "pacing.tenants",
                reason: e.to_string(),
            })?;
            let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
            if !positive(o.resource_units_per_10s) || !positive(o.writes_per_150s) {
                return Err(ConfigError::Invalid {
                    key: "pacing.tenants",
                    reason: format!("tenant {tenant}: limits must be positive numbers"),
                });
            }
            pacing.tenants.insert(id, o);
        }
        Ok(pacing)
    }
}
