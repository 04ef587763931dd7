//! Group-based licensing: the tenant's subscribed SKUs, the licences a
//! group assigns (`POST /groups/{id}/assignLicense`), and what Entra made
//! of them on each member (`licenseAssignmentStates`, `assignedLicenses`).
//!
//! Entra assigns a group's licences in the background: "the errors can't be
//! communicated to you immediately. Instead, they're recorded on the user
//! object" (entra/identity/users/licensing-groups-resolve-problems). The
//! emulator processes after every write, in the order things happened: a
//! new member (or a licence new on the group) gets it while the SKU has
//! units left and is in `Error` with `CountViolation` beyond; an assignment
//! in error stays in error until the group is reprocessed ("if you free up
//! some licenses ... you need to trigger the processing of groups that
//! previously failed", same page), which buying or freeing units through
//! the control surface does, as the admin's Reprocess button. A member
//! leaving the group (or deleted) gives its unit back; a disabled account
//! keeps it: "If you don't want to pay for a license after someone leaves
//! your organization, you need to remove their Microsoft 365 license"
//! (microsoft-365/admin/add-users/remove-former-employee-step-6), and
//! "After the user account is deleted, any Exchange Online license
//! associated with the user account will be available" (same page).
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::errors::GraphResp;
use super::group_props::{self, DEFAULT_PROPS as GROUP_PROPS};
use super::state::{GroupRecord, Tenant, UserRecord};
use super::users::{body_object, Call, Env};

/// A commercial subscription of the tenant (graph/api/resources/subscribedsku).
#[derive(Debug, Clone)]
pub(crate) struct SkuRecord {
    pub sku_id: String,
    pub part_number: String,
    /// `prepaidUnits.enabled`: the licences bought.
    pub enabled_units: u32,
}

/// A licence a group assigns (graph/api/resources/assignedlicense).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupLicence {
    pub sku_id: String,
    pub disabled_plans: Vec<String>,
}

/// What Entra made of one group licence on one member
/// (graph/api/resources/licenseassignmentstate).
#[derive(Debug, Clone)]
pub(crate) struct Assignment {
    pub sku_id: String,
    /// The group it is inherited from.
    pub group_id: String,
    pub disabled_plans: Vec<String>,
    /// `Active` or `Error`.
    pub state: &'static str,
    pub error: Option<&'static str>,
    pub updated_at: DateTime<Utc>,
}

impl Assignment {
    fn active(&self) -> bool {
        self.state == "Active"
    }
}

/// "Not enough licenses ... PowerShell cmdlets report this error as
/// CountViolation" (licensing-groups-resolve-problems).
const COUNT_VIOLATION: &str = "CountViolation";
/// A group's other licences when one cannot be assigned: "If Microsoft
/// Entra ID can't assign one of the products ..., it won't assign the other
/// licenses in the group either" (same page). The page names no code for
/// those; the emulator says `Other`, one of the documented values.
const HELD_BACK: &str = "Other";

/// Brings every member's assignments in line with the groups: those whose
/// membership or group licence is gone are dropped (their units freed),
/// then each licensed group's members without one are processed in order.
pub(crate) fn reconcile(t: &mut Tenant) {
    if !t.licensing_used {
        return;
    }
    let licensed: Vec<(String, Vec<GroupLicence>, Vec<String>)> = {
        let mut groups: Vec<&GroupRecord> = t
            .groups
            .iter()
            .filter(|g| g.deleted_at.is_none() && !g.licences.is_empty())
            .collect();
        groups.sort_by_key(|g| g.seq);
        groups
            .into_iter()
            .map(|g| (g.id.clone(), g.licences.clone(), g.members.clone()))
            .collect()
    };
    let holds: HashSet<(&str, &str, &str)> = licensed
        .iter()
        .flat_map(|(g, ls, ms)| {
            ms.iter().flat_map(move |m| {
                ls.iter()
                    .map(move |l| (g.as_str(), m.as_str(), l.sku_id.as_str()))
            })
        })
        .collect();
    for u in &mut t.users {
        let (deleted, id) = (u.is_deleted(), u.id.clone());
        u.licences.retain(|a| {
            !deleted && holds.contains(&(a.group_id.as_str(), id.as_str(), a.sku_id.as_str()))
        });
    }
    let units: HashMap<String, u32> = t
        .skus
        .iter()
        .map(|s| (s.sku_id.clone(), s.enabled_units))
        .collect();
    let mut consumed = consumed_by_sku(&t.users);
    let index: HashMap<String, usize> = t
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.clone(), i))
        .collect();
    for (group, licences, members) in &licensed {
        for m in members {
            if let Some(&i) = index.get(m) {
                process(&mut t.users[i], group, licences, &units, &mut consumed);
            }
        }
    }
}

/// The users holding each SKU (one licence each, however many groups give it).
fn consumed_by_sku(users: &[UserRecord]) -> HashMap<String, u32> {
    let mut out: HashMap<String, u32> = HashMap::new();
    for u in users {
        let held: HashSet<&str> = u
            .licences
            .iter()
            .filter(|a| a.active())
            .map(|a| a.sku_id.as_str())
            .collect();
        for sku in held {
            *out.entry(sku.to_string()).or_default() += 1;
        }
    }
    out
}

/// One member of a licensed group: its licences from this group that were
/// not processed yet, assigned all together or not at all.
fn process(
    u: &mut UserRecord,
    group: &str,
    licences: &[GroupLicence],
    units: &HashMap<String, u32>,
    consumed: &mut HashMap<String, u32>,
) {
    let missing: Vec<&GroupLicence> = licences
        .iter()
        .filter(|l| {
            !u.licences
                .iter()
                .any(|a| a.group_id == group && a.sku_id == l.sku_id)
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    // The same product from another group costs no second licence.
    let holds =
        |u: &UserRecord, sku: &str| u.licences.iter().any(|a| a.active() && a.sku_id == sku);
    let lacking: Vec<&str> = missing
        .iter()
        .map(|l| l.sku_id.as_str())
        .filter(|sku| {
            !holds(u, sku)
                && consumed.get(*sku).copied().unwrap_or(0) >= units.get(*sku).copied().unwrap_or(0)
        })
        .collect();
    let now = Utc::now();
    for l in missing {
        let (state, error) = match lacking.is_empty() {
            true => ("Active", None),
            false if lacking.contains(&l.sku_id.as_str()) => ("Error", Some(COUNT_VIOLATION)),
            false => ("Error", Some(HELD_BACK)),
        };
        if state == "Active" && !holds(u, &l.sku_id) {
            *consumed.entry(l.sku_id.clone()).or_default() += 1;
        }
        u.licences.push(Assignment {
            sku_id: l.sku_id.clone(),
            group_id: group.to_string(),
            disabled_plans: l.disabled_plans.clone(),
            state,
            error,
            updated_at: now,
        });
    }
}

/// Reprocessing after units changed: every assignment in error of a group
/// that assigns `sku` is processed again (those active keep their units).
pub(crate) fn reprocess(t: &mut Tenant, sku: &str) {
    let groups: HashSet<String> = t
        .groups
        .iter()
        .filter(|g| {
            g.licences
                .iter()
                .any(|l| l.sku_id.eq_ignore_ascii_case(sku))
        })
        .map(|g| g.id.clone())
        .collect();
    for u in &mut t.users {
        u.licences
            .retain(|a| a.active() || !groups.contains(&a.group_id));
    }
    reconcile(t);
}

fn date(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `licenseAssignmentStates`: one entry per group licence, with
/// `assignedByGroup` the group's id ("if inherited through a group
/// membership, this field contains the ID of the group") and `error` null
/// when assigned ("If the license is assigned successfully, this field is
/// Null", graph/api/resources/licenseassignmentstate).
pub(crate) fn states(u: &UserRecord) -> Value {
    Value::Array(
        u.licences
            .iter()
            .map(|a| {
                json!({
                    "assignedByGroup": a.group_id,
                    "disabledPlans": a.disabled_plans,
                    "error": a.error,
                    "lastUpdatedDateTime": date(a.updated_at),
                    "skuId": a.sku_id,
                    "state": a.state,
                })
            })
            .collect(),
    )
}

/// `assignedLicenses`: the products the user holds, once each.
pub(crate) fn assigned(u: &UserRecord) -> Value {
    let mut seen = HashSet::new();
    Value::Array(
        u.licences
            .iter()
            .filter(|a| a.active() && seen.insert(a.sku_id.clone()))
            .map(|a| json!({ "disabledPlans": a.disabled_plans, "skuId": a.sku_id }))
            .collect(),
    )
}

/// A group's `assignedLicenses`.
pub(crate) fn group_licences(g: &GroupRecord) -> Value {
    Value::Array(
        g.licences
            .iter()
            .map(|l| json!({ "disabledPlans": l.disabled_plans, "skuId": l.sku_id }))
            .collect(),
    )
}

fn not_a_company_licence(sku: &str) -> GraphResp {
    // As Graph words it for a SKU the tenant does not subscribe to (quoted
    // in pnp/cli-microsoft365's user license tests).
    GraphResp::error(
        400,
        "Request_BadRequest",
        format!("License {sku} does not correspond to a valid company License."),
    )
}

fn invalid(param: &str) -> GraphResp {
    GraphResp::error(
        400,
        "BadRequest",
        format!("Invalid value specified for parameter '{param}' of operation 'assignLicense'."),
    )
}

/// `addLicenses`: assignedLicense objects, each naming a subscribed SKU.
fn added(t: &Tenant, body: &Map<String, Value>) -> Result<Vec<GroupLicence>, GraphResp> {
    let Some(list) = body.get("addLicenses") else {
        return Ok(Vec::new());
    };
    let items = list.as_array().ok_or_else(|| invalid("addLicenses"))?;
    items
        .iter()
        .map(|item| {
            let sku = item
                .get("skuId")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("addLicenses"))?;
            let known = t.skus.iter().find(|s| s.sku_id.eq_ignore_ascii_case(sku));
            let sku = known
                .ok_or_else(|| not_a_company_licence(sku))?
                .sku_id
                .clone();
            let disabled_plans = match item.get("disabledPlans") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(p)) => p
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| invalid("addLicenses"))?,
                Some(_) => return Err(invalid("addLicenses")),
            };
            Ok(GroupLicence {
                sku_id: sku,
                disabled_plans,
            })
        })
        .collect()
}

/// `removeLicenses`: SKU ids, each a subscribed SKU.
fn removed(t: &Tenant, body: &Map<String, Value>) -> Result<Vec<String>, GraphResp> {
    let Some(list) = body.get("removeLicenses") else {
        return Ok(Vec::new());
    };
    let items = list.as_array().ok_or_else(|| invalid("removeLicenses"))?;
    items
        .iter()
        .map(|v| {
            let sku = v.as_str().ok_or_else(|| invalid("removeLicenses"))?;
            t.skus
                .iter()
                .find(|s| s.sku_id.eq_ignore_ascii_case(sku))
                .map(|s| s.sku_id.clone())
                .ok_or_else(|| not_a_company_licence(sku))
        })
        .collect()
}

/// `POST /groups/{id}/assignLicense` with `addLicenses` and
/// `removeLicenses` (https://learn.microsoft.com/graph/api/group-assignlicense):
/// "202 Accepted ... and a target group object in the response body". The
/// members get their licences in the background (processed after the write).
pub(crate) fn assign_license(t: &mut Tenant, env: &Env, call: &Call, i: usize) -> GraphResp {
    let body = match body_object(call) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let (add, remove) = match added(t, body).and_then(|a| removed(t, body).map(|r| (a, r))) {
        Ok(both) => both,
        Err(e) => return e,
    };
    set_group_licences(t, i, &add, &remove);
    let g = &t.groups[i];
    let mut obj = Map::new();
    obj.insert(
        "@odata.context".into(),
        json!(format!("{}/$metadata#groups/$entity", env.graph_base)),
    );
    obj.extend(group_props::project(g, GROUP_PROPS));
    GraphResp::json(202, Value::Object(obj))
}

/// Adds (or replaces the disabled plans of) and removes a group's licences.
pub(crate) fn set_group_licences(
    t: &mut Tenant,
    i: usize,
    add: &[GroupLicence],
    remove: &[String],
) {
    let g = &mut t.groups[i];
    g.licences.retain(|l| !remove.contains(&l.sku_id));
    for l in add {
        match g.licences.iter_mut().find(|x| x.sku_id == l.sku_id) {
            Some(x) => x.disabled_plans = l.disabled_plans.clone(),
            None => g.licences.push(l.clone()),
        }
    }
    t.licensing_used |= !add.is_empty();
}

/// The users holding `sku` now.
pub(crate) fn consumed(t: &Tenant, sku: &str) -> u32 {
    consumed_by_sku(&t.users).get(sku).copied().unwrap_or(0)
}

/// `GET /subscribedSkus` (https://learn.microsoft.com/graph/api/subscribedsku-list):
/// the tenant's subscriptions with `prepaidUnits` and `consumedUnits` ("The
/// number of licenses that have been assigned", resources/subscribedsku);
/// `$select` is the only query option.
pub(crate) fn subscribed_skus(t: &Tenant, env: &Env, call: &Call) -> GraphResp {
    if call.segments.len() != 1 {
        return super::users::segment_not_found(&call.segments[call.segments.len() - 1]);
    }
    if !call.method.eq_ignore_ascii_case("GET") {
        return super::users::method_not_allowed();
    }
    if let Some((k, _)) = call
        .query
        .iter()
        .find(|(k, _)| k.starts_with('$') && !k.eq_ignore_ascii_case("$select"))
    {
        return GraphResp::error(
            400,
            "BadRequest",
            format!("Query option '{k}' is not supported."),
        );
    }
    let value: Vec<Value> = t
        .skus
        .iter()
        .map(|s| {
            json!({
                "accountId": t.spec.id,
                "accountName": t.spec.domains.first().cloned().unwrap_or_default(),
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": consumed(t, &s.sku_id),
                "id": format!("{}_{}", t.spec.id, s.sku_id),
                "prepaidUnits": {"enabled": s.enabled_units, "lockedOut": 0, "suspended": 0, "warning": 0},
                "servicePlans": [],
                "skuId": s.sku_id,
                "skuPartNumber": s.part_number,
                "subscriptionIds": [],
            })
        })
        .collect();
    let selected: Vec<Value> = match super::users::q(call, "$select") {
        None => value,
        Some(sel) => {
            let keep: Vec<&str> = sel.split(',').map(str::trim).collect();
            value
                .into_iter()
                .map(|v| match v {
                    Value::Object(m) => Value::Object(
                        m.into_iter()
                            .filter(|(k, _)| keep.iter().any(|p| p.eq_ignore_ascii_case(k)))
                            .collect(),
                    ),
                    other => other,
                })
                .collect()
        }
    };
    GraphResp::json(
        200,
        json!({
            "@odata.context": format!("{}/$metadata#subscribedSkus", env.graph_base),
            "value": selected,
        }),
    )
}
