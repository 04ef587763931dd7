use std::fmt;

use serde::{Deserialize, Serialize};

/// A Plumm company (`users.company_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompanyId(pub i64);

/// A Plumm user (`users.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlummUserId(pub i64);

/// The Entra object id Graph returned for a user (`id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntraObjectId(pub String);

/// A Microsoft Entra tenant id: always the directory GUID, lower-case.
///
/// Domain names ("contoso.onmicrosoft.com") are also accepted by the login
/// endpoint, but a connection is recorded by GUID so one tenant can never be
/// connected twice under two names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a tenant id: expected a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47")]
pub struct TenantIdError(pub String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        let s = raw.trim().to_ascii_lowercase();
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups
                .iter()
                .zip(lens)
                .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
        if ok {
            Ok(Self(s))
        } else {
            Err(TenantIdError(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for PlummUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for EntraObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_guids_normalised_to_lower_case() {
        let t = TenantId::parse("72F988BF-86F1-41AF-91AB-2D7CD011DB47").unwrap();
        assert_eq!(t.as_str(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert!(TenantId::parse("contoso.onmicrosoft.com").is_err());
        assert!(TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db4").is_err());
        assert!(TenantId::parse("").is_err());
    }
}
