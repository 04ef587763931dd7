use serde::Deserialize;

use super::{CompanyId, PlummUserId};

/// One row of Plumm's `users` table, as the outbox triggers snapshot it.
///
/// Fields stay raw strings here: deciding whether they make a valid Entra
/// user is the mapping's job, which reports exactly which field is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct PlummUser {
    pub id: PlummUserId,
    pub company_id: CompanyId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub country: Option<String>,
    pub status: PlummStatus,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlummStatus {
    Active,
    Inactive,
}

#[derive(Debug, thiserror::Error)]
#[error("outbox snapshot is not a Plumm user row: {0}")]
pub struct SnapshotError(#[from] serde_json::Error);

impl PlummUser {
    pub fn from_snapshot(json: &str) -> Result<Self, SnapshotError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The value of a Plumm column by name, for mapping templates.
    pub fn column(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.0.to_string()),
            "company_id" => Some(self.company_id.0.to_string()),
            "email" => Some(self.email.clone()),
            "first_name" => Some(self.first_name.clone()),
            "last_name" => Some(self.last_name.clone()),
            "role" => self.role.clone(),
            "department" => self.department.clone(),
            "location" => self.location.clone(),
            "country" => self.country.clone(),
            "status" => Some(
                match self.status {
                    PlummStatus::Active => "active",
                    PlummStatus::Inactive => "inactive",
                }
                .to_string(),
            ),
            _ => None,
        }
    }

    pub const COLUMNS: &'static [&'static str] = &[
        "id",
        "company_id",
        "email",
        "first_name",
        "last_name",
        "role",
        "department",
        "location",
        "country",
        "status",
    ];
}
