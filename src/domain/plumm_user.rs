use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

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
    /// Every other column of Plumm's table (`employee_number`, `phone`, ...,
    /// whatever Plumm has), as text: templates read them by name. `None` is
    /// SQL NULL (or a BLOB, which no Entra property can hold).
    #[serde(flatten, deserialize_with = "extra_columns")]
    pub extra: BTreeMap<String, Option<String>>,
}

/// SQLite's dynamic typing reaches the snapshot as JSON numbers, strings
/// and nulls; a template sees them as the text Plumm would show.
fn extra_columns<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                other => Some(other.to_string()),
            };
            (k, text)
        })
        .collect())
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
            "updated_at" => self.updated_at.clone(),
            other => self.extra.get(other).cloned().flatten(),
        }
    }

    /// Whether `name` is one of the contract's own columns (a named field
    /// here), rather than one of Plumm's others (in `extra`).
    pub fn is_contract_column(name: &str) -> bool {
        Self::COLUMNS.contains(&name) || name == "updated_at"
    }

    /// The contract's columns: Plumm's table must have every one of them.
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
