//! Public data types exchanged with the emulator's control surface.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user put straight into a tenant (immediately visible, never throttled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SeedUser {
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub usage_location: Option<String>,
    pub employee_id: Option<String>,
    /// Defaults to true.
    pub account_enabled: Option<bool>,
    /// Defaults to the UPN alias.
    pub mail_nickname: Option<String>,
    /// An administrator the app may not modify (needs a higher directory role).
    pub privileged: bool,
}

/// Everything the emulator knows about a user, for inspection. Never carries
/// the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmulatedUser {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub usage_location: Option<String>,
    pub employee_id: Option<String>,
    pub account_enabled: bool,
    pub mail_nickname: String,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub preferred_language: Option<String>,
    /// Other writable properties set through Graph (city, country, ...).
    pub other_properties: BTreeMap<String, serde_json::Value>,
    pub privileged: bool,
    pub deleted: bool,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When the user became (or becomes) readable through Graph.
    pub visible_at: DateTime<Utc>,
    pub revoke_sign_in_sessions_count: u32,
    pub password_set_count: u32,
    /// Whether created through Graph (false for seeded users).
    pub created_via_graph: bool,
    /// The manager's user id.
    pub manager: Option<String>,
}

/// Running totals of what reached the emulator for one tenant, kept
/// whatever the request log's capacity (benchmarks count millions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// HTTP requests to Graph (a `$batch` counts once).
    pub round_trips: u64,
    /// Graph operations: single requests plus each item of a batch.
    pub operations: u64,
    /// Operations that were writes (not GET).
    pub writes: u64,
    /// The writes to groups: creates and membership changes.
    pub group_writes: u64,
    /// Operations answered 429.
    pub throttled: u64,
    /// Token requests.
    pub tokens: u64,
}

/// One entry of the request log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// Arrival order.
    pub seq: u64,
    pub time: DateTime<Utc>,
    /// Graph: the tenant of the bearer token (None when it was not valid).
    /// Login: the tenant path segment as sent.
    pub tenant: Option<String>,
    /// The client id of the bearer token or of the token request.
    pub client_id: Option<String>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// 0 when the connection was dropped without a response.
    pub status: u16,
    pub client_request_id: Option<String>,
    pub request_id: String,
    pub throttle_priority: Option<String>,
    /// For an item of a JSON batch: the seq of its `$batch` request.
    pub batch_seq: Option<u64>,
    /// The batch item id.
    pub batch_item_id: Option<String>,
    /// Request body; passwords and client secrets are replaced by "***".
    pub body: Option<serde_json::Value>,
    /// Which injected or random fault answered, if any.
    pub fault: Option<String>,
}

/// A deterministic fault, matched in queue order and consumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    pub kind: FaultKind,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Answer with this status in Graph's (or the login endpoint's) error format.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<f64>,
    },
    /// Wait before handling the request normally.
    Delay { ms: u64 },
    /// Close the connection without answering.
    Drop,
    /// Carry the request out, then close the connection without answering:
    /// the write happened, the client never hears of it (a reset or a
    /// timeout after Graph applied it). In a `$batch` the items before and
    /// this one are applied and no answer of the batch arrives.
    DropAfter,
}

/// A security group put straight into a tenant by an administrator
/// (immediately visible, never throttled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SeedGroup {
    pub display_name: String,
    /// Defaults to the display name without the characters a mailNickname
    /// may not hold.
    pub mail_nickname: Option<String>,
    pub description: Option<String>,
    /// Ids of users (in the tenant, not deleted) who are members from the start.
    pub members: Vec<String>,
}

/// Everything the emulator knows about a group, for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmulatedGroup {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub mail: Option<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub group_types: Vec<String>,
    /// Member user ids, in the order they were added.
    pub members: Vec<String>,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    /// When the group became (or becomes) readable through Graph.
    pub visible_at: DateTime<Utc>,
    /// Whether created through Graph (false for seeded groups).
    pub created_via_graph: bool,
}

/// A commercial subscription put straight into a tenant, as a purchase
/// would (graph/api/resources/subscribedsku).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SeedSku {
    /// The product's id (a GUID, e.g. Office 365 E3's
    /// `6fd2c87f-b296-42f0-b197-1e91e994b900`).
    pub sku_id: String,
    /// e.g. `ENTERPRISEPACK`.
    pub sku_part_number: String,
    /// `prepaidUnits.enabled`: the licences bought.
    pub units: u32,
}

/// What Entra made of one group licence on one user, for inspection
/// (graph/api/resources/licenseassignmentstate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmulatedLicenceState {
    pub sku_id: String,
    pub assigned_by_group: String,
    /// `Active` or `Error`.
    pub state: String,
    /// `CountViolation`, ... or `None` when assigned.
    pub error: Option<String>,
}
