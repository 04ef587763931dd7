//! What one user needs in Entra: the action and the exact property changes.
//! Pure: compares property maps, decides, and leaves the calling to others.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mapping::DesiredUser;

pub mod lifecycle;
pub mod membership;

/// What a person leaving Plumm (deleted, or moved away from a tenant) does
/// to their Entra account: `[sync] on_delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDelete {
    /// Disable the account (data kept, sign-in blocked), then revoke sessions.
    Suspend,
    /// Soft-delete it (restorable in Entra for 30 days).
    Delete,
    /// Leave Entra as it is.
    Ignore,
}

/// Graph property name -> value, as Graph writes it (strings, booleans, null).
pub type Props = BTreeMap<String, Value>;

/// The user's properties in the shape Graph reads and writes them.
pub fn props(d: &DesiredUser) -> Props {
    let mut p = Props::new();
    p.insert(
        "userPrincipalName".into(),
        Value::from(d.user_principal_name.clone()),
    );
    p.insert("mail".into(), Value::from(d.mail.clone()));
    p.insert("mailNickname".into(), Value::from(d.mail_nickname.clone()));
    p.insert("accountEnabled".into(), Value::Bool(d.account_enabled));
    for (k, v) in &d.profile {
        let value = match k.as_str() {
            // A string collection holding at most one number: none is `[]`,
            // as Graph answers an empty one.
            "businessPhones" => Value::Array(v.iter().cloned().map(Value::from).collect()),
            _ => v.clone().map(Value::from).unwrap_or(Value::Null),
        };
        p.insert(k.clone(), value);
    }
    p
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Link,
    Update,
    Suspend,
    Reactivate,
    Delete,
    Revoke,
    Lookup,
    /// Checking the Plumm record can become an Entra user.
    Validate,
    /// A decision to leave Entra as it is (unconnected company, already
    /// matching, on_delete = ignore...).
    Skip,
    Nothing,
    /// A person added to a group a `[[groups]]` rule names.
    #[serde(rename = "group_add")]
    GroupAdd,
    /// A person taken out of a group the daemon put them in.
    #[serde(rename = "group_remove")]
    GroupRemove,
    /// A group the daemon manages by name, created once per tenant.
    #[serde(rename = "group_create")]
    GroupCreate,
    /// The person's manager set, changed or removed.
    Manager,
    /// A soft-deleted account brought back for a rehire.
    Restore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Link => "link",
            Action::Update => "update",
            Action::Suspend => "suspend",
            Action::Reactivate => "reactivate",
            Action::Delete => "delete",
            Action::Revoke => "revoke",
            Action::Lookup => "lookup",
            Action::Validate => "validate",
            Action::Skip => "skip",
            Action::Nothing => "nothing",
            Action::GroupAdd => "group_add",
            Action::GroupRemove => "group_remove",
            Action::GroupCreate => "group_create",
            Action::Manager => "manager",
            Action::Restore => "restore",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One property that differs: what Entra has (or we last wrote) and what it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub property: String,
    pub old: Value,
    pub new: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    /// Properties to PATCH; empty means no write.
    pub changes: Vec<Change>,
    /// Revoke sign-in sessions after the PATCH.
    pub revoke: bool,
}

impl Plan {
    pub fn nothing() -> Self {
        Self {
            action: Action::Nothing,
            changes: Vec::new(),
            revoke: false,
        }
    }
}

/// Only the properties we manage and that differ. A property Entra has but
/// we do not manage is left alone: Plumm does not own it.
pub fn diff(current: &Props, desired: &Props) -> Vec<Change> {
    desired
        .iter()
        .filter_map(|(k, new)| {
            let old = current.get(k).cloned().unwrap_or(Value::Null);
            (old != *new).then(|| Change {
                property: k.clone(),
                old,
                new: new.clone(),
            })
        })
        .collect()
}

fn enabled(p: &Props) -> Option<bool> {
    p.get("accountEnabled").and_then(Value::as_bool)
}

/// Bring a known Entra user (`current`: what we last pushed, or what a
/// lookup read) to `desired`.
pub fn plan_update(current: &Props, desired: &DesiredUser, revoke_on_suspend: bool) -> Plan {
    let changes = diff(current, &props(desired));
    let was = enabled(current);
    let action = match (was, desired.account_enabled) {
        (Some(true) | None, false) if changes.iter().any(|c| c.property == "accountEnabled") => {
            Action::Suspend
        }
        (Some(false) | None, true) if changes.iter().any(|c| c.property == "accountEnabled") => {
            Action::Reactivate
        }
        _ if changes.is_empty() => Action::Nothing,
        _ => Action::Update,
    };
    Plan {
        revoke: action == Action::Suspend && revoke_on_suspend,
        action,
        changes,
    }
}

/// The user was deleted in Plumm.
pub fn plan_removal(on_delete: OnDelete, current: &Props, revoke_on_suspend: bool) -> Plan {
    match on_delete {
        OnDelete::Ignore => Plan::nothing(),
        OnDelete::Delete => Plan {
            action: Action::Delete,
            changes: Vec::new(),
            revoke: false,
        },
        OnDelete::Suspend if enabled(current) == Some(false) => Plan::nothing(),
        OnDelete::Suspend => Plan {
            action: Action::Suspend,
            changes: vec![Change {
                property: "accountEnabled".into(),
                old: current
                    .get("accountEnabled")
                    .cloned()
                    .unwrap_or(Value::Null),
                new: Value::Bool(false),
            }],
            revoke: revoke_on_suspend,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(enabled: bool, title: Option<&str>) -> DesiredUser {
        DesiredUser {
            user_principal_name: "ada@contoso.com".into(),
            mail: "ada@contoso.com".into(),
            mail_nickname: "ada".into(),
            account_enabled: enabled,
            profile: [
                ("displayName".to_string(), Some("Ada L".to_string())),
                ("jobTitle".to_string(), title.map(str::to_string)),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn an_unchanged_user_needs_nothing() {
        let u = user(true, Some("Engineer"));
        let p = plan_update(&props(&u), &u, true);
        assert_eq!(p, Plan::nothing());
    }

    #[test]
    fn a_promotion_patches_only_the_job_title_with_old_and_new() {
        let before = user(true, Some("Engineer"));
        let after = user(true, Some("Lead Engineer"));
        let p = plan_update(&props(&before), &after, true);
        assert_eq!(p.action, Action::Update);
        assert_eq!(
            p.changes,
            vec![Change {
                property: "jobTitle".into(),
                old: "Engineer".into(),
                new: "Lead Engineer".into()
            }]
        );
        assert!(!p.revoke);
    }

    #[test]
    fn clearing_a_field_in_plumm_clears_it_in_entra() {
        let p = plan_update(&props(&user(true, Some("x"))), &user(true, None), true);
        assert_eq!(p.changes[0].new, Value::Null);
    }

    #[test]
    fn offboarding_suspends_and_revokes_when_configured() {
        let p = plan_update(&props(&user(true, None)), &user(false, None), true);
        assert_eq!(p.action, Action::Suspend);
        assert!(p.revoke);
        let p = plan_update(&props(&user(true, None)), &user(false, None), false);
        assert!(!p.revoke);
    }

    #[test]
    fn rehire_reactivates() {
        let p = plan_update(&props(&user(false, None)), &user(true, None), true);
        assert_eq!(p.action, Action::Reactivate);
        assert_eq!(p.changes.len(), 1);
    }

    #[test]
    fn properties_entra_has_but_we_do_not_manage_are_left_alone() {
        let u = user(true, None);
        let mut current = props(&u);
        current.insert("mobilePhone".into(), "+44 1".into());
        assert_eq!(plan_update(&current, &u, true).action, Action::Nothing);
    }

    #[test]
    fn business_phones_is_a_one_number_collection_and_a_change_patches_it_whole() {
        let with = |phone: Option<&str>| {
            let mut u = user(true, None);
            u.profile
                .insert("businessPhones".into(), phone.map(str::to_string));
            u
        };
        let desk = props(&with(Some("+44 20 7946 0958")));
        assert_eq!(
            desk["businessPhones"],
            serde_json::json!(["+44 20 7946 0958"])
        );
        assert_eq!(props(&with(None))["businessPhones"], serde_json::json!([]));
        let p = plan_update(&desk, &with(Some("+44 20 7946 0000")), true);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].new, serde_json::json!(["+44 20 7946 0000"]));
        assert_eq!(
            plan_update(&desk, &with(Some("+44 20 7946 0958")), true),
            Plan::nothing()
        );
    }

    #[test]
    fn removal_follows_on_delete() {
        let cur = props(&user(true, None));
        assert_eq!(plan_removal(OnDelete::Ignore, &cur, true), Plan::nothing());
        assert_eq!(
            plan_removal(OnDelete::Delete, &cur, true).action,
            Action::Delete
        );
        let s = plan_removal(OnDelete::Suspend, &cur, true);
        assert_eq!(s.action, Action::Suspend);
        assert!(s.revoke);
        let already = props(&user(false, None));
        assert_eq!(
            plan_removal(OnDelete::Suspend, &already, true),
            Plan::nothing()
        );
    }
}
