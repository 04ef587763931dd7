//! Licences by hand, as an Entra administrator manages them in the portal
//! (Billing > Licenses, a group's Licenses page): no token, no throttling,
//! no request log.

use super::control::EmulatorControl;
use super::licensing::{self, GroupLicence, SkuRecord};
use super::state::Tenant;
use super::types::{EmulatedLicenceState, SeedSku};
use super::EmulatorError;

fn sku_index(t: &Tenant, sku: &str) -> Result<usize, EmulatorError> {
    t.skus
        .iter()
        .position(|s| s.sku_id.eq_ignore_ascii_case(sku))
        .ok_or_else(|| EmulatorError::UnknownSku(sku.into()))
}

impl EmulatorControl {
    /// The tenant, under the emulator's lock, for `f`.
    pub(super) fn tenant_mut<R>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut Tenant) -> Result<R, EmulatorError>,
    ) -> Result<R, EmulatorError> {
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        f(t)
    }

    /// The tenant buys a product: a new subscription with `units` licences,
    /// or more (or fewer) of one it has. Groups whose members are in error
    /// are then reprocessed, as the admin does after buying or freeing
    /// licences (the Reprocess button).
    pub fn set_sku(&self, tenant: &str, sku: SeedSku) -> Result<(), EmulatorError> {
        if uuid::Uuid::parse_str(&sku.sku_id).is_err() {
            return Err(EmulatorError::Invalid(format!(
                "skuId {} is not a GUID",
                sku.sku_id
            )));
        }
        self.tenant_mut(tenant, |t| {
            let id = sku.sku_id.to_ascii_lowercase();
            match t.skus.iter_mut().find(|s| s.sku_id == id) {
                Some(s) => {
                    s.enabled_units = sku.units;
                    if !sku.sku_part_number.is_empty() {
                        s.part_number = sku.sku_part_number;
                    }
                }
                None => t.skus.push(SkuRecord {
                    sku_id: id.clone(),
                    part_number: sku.sku_part_number,
                    enabled_units: sku.units,
                }),
            }
            licensing::reprocess(t, &id);
            Ok(())
        })
    }

    /// [`Self::set_sku`] for a product the tenant has: its licences now.
    pub fn set_sku_units(&self, tenant: &str, sku: &str, units: u32) -> Result<(), EmulatorError> {
        let part = self.tenant_mut(tenant, |t| {
            let i = sku_index(t, sku)?;
            Ok(t.skus[i].part_number.clone())
        })?;
        self.set_sku(
            tenant,
            SeedSku {
                sku_id: sku.into(),
                sku_part_number: part,
                units,
            },
        )
    }

    /// An administrator assigns a subscribed product to a group; its
    /// members are processed at once.
    pub fn assign_group_licence(
        &self,
        tenant: &str,
        group: &str,
        sku: &str,
    ) -> Result<(), EmulatorError> {
        self.tenant_mut(tenant, |t| {
            let sku_id = t.skus[sku_index(t, sku)?].sku_id.clone();
            let i = t
                .groups
                .iter()
                .position(|g| g.deleted_at.is_none() && g.id.eq_ignore_ascii_case(group))
                .ok_or_else(|| EmulatorError::UnknownGroup(group.into()))?;
            let licence = GroupLicence {
                sku_id,
                disabled_plans: Vec::new(),
            };
            licensing::set_group_licences(t, i, &[licence], &[]);
            licensing::reconcile(t);
            Ok(())
        })
    }

    /// A user's licence assignment states, as `licenseAssignmentStates`
    /// would list them.
    pub fn licence_states(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<Vec<EmulatedLicenceState>, EmulatorError> {
        self.tenant_mut(tenant, |t| {
            let u = t
                .users
                .iter()
                .find(|u| !u.is_deleted() && u.id.eq_ignore_ascii_case(user))
                .ok_or_else(|| EmulatorError::UnknownUser(user.into()))?;
            Ok(u.licences
                .iter()
                .map(|a| EmulatedLicenceState {
                    sku_id: a.sku_id.clone(),
                    assigned_by_group: a.group_id.clone(),
                    state: a.state.to_string(),
                    error: a.error.map(str::to_string),
                })
                .collect())
        })
    }

    /// The licences of `sku` assigned now (`consumedUnits`).
    pub fn consumed_units(&self, tenant: &str, sku: &str) -> Result<u32, EmulatorError> {
        self.tenant_mut(tenant, |t| {
            let i = sku_index(t, sku)?;
            Ok(licensing::consumed(t, &t.skus[i].sku_id))
        })
    }
}
