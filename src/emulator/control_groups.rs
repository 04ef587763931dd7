//! Groups by hand, as an Entra administrator edits them in the portal: no
//! token, no throttling, no request log, no replication delay.

use std::time::Instant;

use serde_json::{json, Map};

use super::control::{graph_error_text, EmulatorControl};
use super::group_props;
use super::groups::blank;
use super::state::{GroupRecord, Tenant};
use super::types::{EmulatedGroup, SeedGroup};
use super::util::new_guid;
use super::validate;
use super::EmulatorError;

/// A display name without the characters a mailNickname may not hold.
fn nickname_from(display_name: &str) -> String {
    let s: String = display_name
        .chars()
        .filter(|c| validate::mail_nickname(&c.to_string()).is_ok())
        .take(64)
        .collect();
    if s.is_empty() {
        "group".into()
    } else {
        s
    }
}

fn group_mut<'a>(t: &'a mut Tenant, id: &str) -> Result<&'a mut GroupRecord, EmulatorError> {
    t.groups
        .iter_mut()
        .find(|g| g.deleted_at.is_none() && g.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| EmulatorError::UnknownGroup(id.into()))
}

impl EmulatorControl {
    fn with_tenant<R>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut Tenant) -> Result<R, EmulatorError>,
    ) -> Result<R, EmulatorError> {
        self.tenant_mut(tenant, |t| {
            let out = f(t);
            // A membership made by hand is licensed as one made through Graph.
            super::licensing::reconcile(t);
            out
        })
    }

    /// Puts a security group straight into the directory (visible at once),
    /// with Graph's validation of its properties; its members must be users
    /// of the tenant that are not deleted. Returns the group's id.
    pub fn seed_group(&self, tenant: &str, group: SeedGroup) -> Result<String, EmulatorError> {
        let seq = self.shared.lock().next_user_seq();
        self.with_tenant(tenant, |t| {
            let nickname = group
                .mail_nickname
                .clone()
                .unwrap_or_else(|| nickname_from(&group.display_name));
            let mut body = Map::new();
            body.insert("displayName".into(), json!(group.display_name));
            body.insert("mailNickname".into(), json!(nickname));
            body.insert("mailEnabled".into(), json!(false));
            body.insert("securityEnabled".into(), json!(true));
            if let Some(d) = &group.description {
                body.insert("description".into(), json!(d));
            }
            let mut g = group_props::apply(&blank(seq, new_guid()), &body, "", true)
                .map_err(|r| EmulatorError::Invalid(graph_error_text(&r)))?;
            for m in &group.members {
                let user = t
                    .users
                    .iter()
                    .find(|u| !u.is_deleted() && u.id.eq_ignore_ascii_case(m))
                    .ok_or_else(|| EmulatorError::UnknownUser(m.clone()))?;
                if !g.members.contains(&user.id) {
                    g.members.push(user.id.clone());
                }
            }
            let id = g.id.clone();
            t.groups.push(g);
            Ok(id)
        })
    }

    /// Every group of the tenant, deleted (Microsoft 365) and not yet
    /// replicated ones included (empty for an unknown tenant).
    pub fn groups(&self, tenant: &str) -> Vec<EmulatedGroup> {
        let inner = self.shared.lock();
        inner
            .tenant_by_id(tenant)
            .map(|t| t.groups.iter().map(group_props::to_public).collect())
            .unwrap_or_default()
    }

    /// Groups readable through Graph right now.
    pub fn visible_groups(&self, tenant: &str) -> Vec<EmulatedGroup> {
        let now = Instant::now();
        let inner = self.shared.lock();
        inner
            .tenant_by_id(tenant)
            .map(|t| {
                t.groups
                    .iter()
                    .filter(|g| g.is_visible(now))
                    .map(group_props::to_public)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The member user ids of a group, in the order they were added.
    pub fn group_members(&self, tenant: &str, group: &str) -> Result<Vec<String>, EmulatorError> {
        self.with_tenant(tenant, |t| Ok(group_mut(t, group)?.members.clone()))
    }

    /// An administrator adds a user (any that is not deleted) to a group.
    pub fn add_group_member(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<(), EmulatorError> {
        self.with_tenant(tenant, |t| {
            let user_id = t
                .users
                .iter()
                .find(|u| !u.is_deleted() && u.id.eq_ignore_ascii_case(user))
                .map(|u| u.id.clone())
                .ok_or_else(|| EmulatorError::UnknownUser(user.into()))?;
            let g = group_mut(t, group)?;
            if g.members.contains(&user_id) {
                return Err(EmulatorError::Invalid(format!(
                    "{user} is already a member of {group}"
                )));
            }
            g.members.push(user_id);
            Ok(())
        })
    }

    /// An administrator removes a member from a group.
    pub fn remove_group_member(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<(), EmulatorError> {
        self.with_tenant(tenant, |t| {
            let g = group_mut(t, group)?;
            let before = g.members.len();
            g.members.retain(|m| !m.eq_ignore_ascii_case(user));
            if g.members.len() == before {
                return Err(EmulatorError::UnknownUser(user.into()));
            }
            Ok(())
        })
    }

    /// An administrator deletes a group: for good (a security group), or
    /// into the deleted items (a Microsoft 365 group), as Graph would.
    pub fn delete_group(&self, tenant: &str, group: &str) -> Result<(), EmulatorError> {
        self.with_tenant(tenant, |t| {
            let g = group_mut(t, group)?;
            if g.is_unified() {
                g.deleted_at = Some(chrono::Utc::now());
            } else {
                let id = g.id.clone();
                t.groups.retain(|g| g.id != id);
            }
            Ok(())
        })
    }
}
