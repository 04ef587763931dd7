/// A licence Entra could not (fully) assign to a user: one entry of the
/// user's `licenseAssignmentStates` in state `Error` or `ActiveWithError`
/// (graph/api/resources/licenseassignmentstate). Entra's to resolve, not
/// the daemon's: it is recorded so `status` can say so.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LicenceError {
    /// The product (`skuId`), lower-case.
    pub sku_id: String,
    /// The group the licence is inherited from (`assignedByGroup`);
    /// `None` for a licence assigned directly.
    pub group_id: Option<String>,
    /// `Error` or `ActiveWithError`.
    pub state: String,
    /// `CountViolation`, `MutuallyExclusiveViolation`, `DependencyViolation`,
    /// `ProhibitedInUsageLocationViolation`, `UniquenessViolation` or
    /// `Other` (also for an error Graph left out).
    pub error: String,
    /// `lastUpdatedDateTime`, as Graph wrote it.
    pub updated_at: Option<String>,
}

impl LicenceError {
    /// What an admin can do about it, from "Identify and resolve license
    /// assignment problems for a group" (entra/identity/users/licensing-groups-resolve-problems).
    pub fn advice(error: &str) -> &'static str {
        match error {
            "CountViolation" => "buy more licences or free some",
            "MutuallyExclusiveViolation" => {
                "a service plan conflicts with another licence the person has; remove one"
            }
            "DependencyViolation" => {
                "another licence depends on a plan being removed; keep it or remove that one first"
            }
            "ProhibitedInUsageLocationViolation" => {
                "the product is not offered in the person's usageLocation"
            }
            "UniquenessViolation" => "a proxy address is already in use (Exchange Online)",
            _ => "see the group's Licenses page in the Entra admin center",
        }
    }
}
