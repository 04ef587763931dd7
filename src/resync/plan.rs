//! What a full resync would do for each user. Pure: Plumm rows, Entra
//! users as listed and what the links say go in, one [`Item`] per user comes
//! out; reading, writing and calling are `run.rs`'s business.
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::domain::{PlummStatus, PlummUser};
use crate::mapping::dates::person_dates;
use crate::mapping::{desired_user, Mapping, UpnSource};
use crate::plan::lifecycle::{timing, Lifecycle, Timing};
use crate::plan::{diff, plan_removal, plan_update, props, Action, Change, OnDelete, Props};

/// What the resync does for one user (or one Entra user Plumm does not know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No Entra user has the email: create one.
    Create,
    /// The linked Entra user was deleted in Entra: create it again.
    Recreate,
    /// An Entra user has the email and no link yet: link it (then update
    /// what differs).
    Link,
    Update,
    Suspend,
    Reactivate,
    /// A linked Entra user whose Plumm user is gone, with on_delete = delete.
    Delete,
    Nothing,
    /// An Entra user that matches no Plumm user: reported, never touched.
    Unmanaged,
    /// Needs a person: invalid in Plumm, or deleted in Entra and not to be
    /// re-created. Reported, not applied.
    Reported,
}

impl Verdict {
    pub const ALL: [Verdict; 10] = [
        Verdict::Create,
        Verdict::Recreate,
        Verdict::Link,
        Verdict::Update,
        Verdict::Suspend,
        Verdict::Reactivate,
        Verdict::Delete,
        Verdict::Nothing,
        Verdict::Unmanaged,
        Verdict::Reported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Create => "create",
            Verdict::Recreate => "recreate",
            Verdict::Link => "link",
            Verdict::Update => "update",
            Verdict::Suspend => "suspend",
            Verdict::Reactivate => "reactivate",
            Verdict::Delete => "delete",
            Verdict::Nothing => "nothing",
            Verdict::Unmanaged => "unmanaged",
            Verdict::Reported => "reported",
        }
    }

    /// Whether applying it writes to Entra.
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Verdict::Nothing | Verdict::Unmanaged | Verdict::Reported
        )
    }
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub verdict: Verdict,
    /// The Plumm user, when there is one.
    pub user: Option<i64>,
    pub email: String,
    /// The Entra object, when one was listed (or linked).
    pub entra_id: Option<String>,
    /// The properties that would change, with Entra's value and Plumm's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Item {
    pub(crate) fn new(verdict: Verdict, user: Option<&PlummUser>, email: &str) -> Self {
        Self {
            verdict,
            user: user.map(|u| u.id.0),
            email: email.to_string(),
            entra_id: None,
            changes: Vec::new(),
            note: None,
        }
    }

    pub(crate) fn entra(mut self, id: &str) -> Self {
        self.entra_id = Some(id.to_string());
        self
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Takes an account away from someone: what the brake counts.
    pub fn deprovisions(&self) -> bool {
        match self.verdict {
            Verdict::Suspend | Verdict::Delete => true,
            // Linking an enabled account to an inactive Plumm user disables it.
            Verdict::Link => self
                .changes
                .iter()
                .any(|c| c.property == "accountEnabled" && c.new == Value::Bool(false)),
            _ => false,
        }
    }
}

/// The part of the policy in force ([`crate::engine::Policy`]) a plan
/// follows, borrowed for one company's run.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub mapping: &'a Mapping,
    pub upn_domain: Option<&'a str>,
    pub on_delete: OnDelete,
    pub revoke_on_suspend: bool,
    /// `[sync] prehire_lead`, `suspend_after_leave`, read at `now`, as
    /// the engine reads them: a pre-hire is neither created early nor
    /// enabled before the start date by a resync.
    pub lifecycle: Lifecycle,
    pub now: DateTime<Utc>,
}

impl Rules<'_> {
    pub fn timing(&self, user: &PlummUser) -> Timing {
        let (start, end) = person_dates(user, self.mapping);
        timing(&self.lifecycle, start, end, self.now)
    }
}

/// An Entra user as the listing returned it: its id and the managed properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: String,
    pub props: Props,
}

impl Listed {
    /// The address an admin recognises it by.
    pub fn email(&self) -> String {
        ["mail", "userPrincipalName"]
            .iter()
            .find_map(|p| self.props.get(*p).and_then(Value::as_str))
            .unwrap_or_default()
            .to_string()
    }
}

/// What the state database says about a listed Entra user.
#[derive(Debug, Clone, Copy)]
pub enum Known<'a> {
    /// Linked to this Plumm user, which Plumm still has (in this company).
    Linked {
        user: &'a PlummUser,
        upn_fallback: bool,
    },
    /// Linked to a Plumm user that Plumm no longer has (restored backup,
    /// missed deletion).
    Orphaned { user: i64 },
    /// Linked to a Plumm user who moved to another company: that company's
    /// sync moves it.
    Elsewhere,
    /// Not linked; a Plumm user of this company has its email.
    SameEmail {
        user: &'a PlummUser,
        /// That Plumm user is linked to another Entra object.
        linked_to: Option<&'a str>,
    },
    /// Not linked, no Plumm user of the company has its email, but this
    /// daemon sent a create with its UPN or mail for Plumm user `user`
    /// whose answer never arrived: an account of ours, never a stranger.
    /// `plumm`: that person's row, while Plumm still has them here (under
    /// another email, or the id reused).
    Intended {
        user: i64,
        plumm: Option<&'a PlummUser>,
    },
    /// Not linked, and no Plumm user of the company has its email.
    Stranger,
}

/// A listed Entra user -> its line of the plan.
pub fn plan_listed(entra: &Listed, known: Known<'_>, policy: &Rules<'_>) -> Item {
    match known {
        Known::Linked { user, upn_fallback } => {
            converge_item(Verdict::Update, user, entra, upn_fallback, policy)
        }
        Known::Orphaned { user } => {
            let plan = plan_removal(policy.on_delete, &entra.props, policy.revoke_on_suspend);
            let verdict = match plan.action {
                Action::Delete => Verdict::Delete,
                Action::Suspend => Verdict::Suspend,
                _ => Verdict::Nothing,
            };
            let mut item = Item::new(verdict, None, &entra.email())
                .entra(&entra.id)
                .note(format!(
                    "linked to Plumm user {user}, who is no longer in Plumm: on_delete = {}",
                    on_delete_name(policy.on_delete)
                ));
            item.user = Some(user);
            item.changes = plan.changes;
            item
        }
        Known::Elsewhere => Item::new(Verdict::Nothing, None, &entra.email())
            .entra(&entra.id)
            .note("its Plumm user moved to another company, whose sync handles it"),
        Known::SameEmail {
            user,
            linked_to: Some(other),
        } => Item::new(Verdict::Unmanaged, Some(user), &entra.email())
            .entra(&entra.id)
            .note(format!(
                "has the email of Plumm user {}, who is linked to Entra user {other}; left alone",
                user.id
            )),
        Known::SameEmail {
            user,
            linked_to: None,
        } => converge_item(Verdict::Link, user, entra, false, policy),
        Known::Intended {
            user: _,
            plumm: Some(u),
        } => {
            // Plumm still has the person under another address (an email
            // change since, or SQLite gave the id to someone new): which it
            // is cannot be told from here, so a person decides.
            Item::new(Verdict::Reported, Some(u), &entra.email())
                .entra(&entra.id)
                .note(format!(
                    "created by this daemon for Plumm user {} under this address (the create's \
                     answer never arrived), who is now {}: link or delete it in Entra",
                    u.id, u.email
                ))
        }
        Known::Intended { user, plumm: None } => {
            let mut item = plan_listed(entra, Known::Orphaned { user }, policy);
            item.note = Some(format!(
                "created by this daemon for Plumm user {user} (the create's answer never \
                 arrived), who is no longer in Plumm: on_delete = {}",
                on_delete_name(policy.on_delete)
            ));
            item
        }
        Known::Stranger => Item::new(Verdict::Unmanaged, None, &entra.email())
            .entra(&entra.id)
            .note("no Plumm user has this email: reported, never touched"),
    }
}

/// How a Plumm user the listing did not show relates to Entra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// No link in this tenant: nobody has created the account yet.
    NeverLinked,
    /// Linked, but the object is not in the listing: deleted in Entra.
    DeletedInEntra,
    /// Linked too recently for the listing to show it (created during the
    /// listing, or not yet replicated): the engine has it in hand.
    JustLinked,
}

/// A Plumm user the listing did not show -> its line of the plan.
pub fn plan_unlisted(user: &PlummUser, how: Unlisted, policy: &Rules<'_>) -> Item {
    if let Err(invalid) = desired_user(user, policy.mapping, UpnSource::EmailDomain) {
        return Item::new(Verdict::Reported, Some(user), &user.email)
            .note(format!("cannot be synced: {invalid}"));
    }
    match how {
        Unlisted::NeverLinked => match policy.timing(user) {
            Timing {
                hold_create: true,
                why,
                ..
            } => Item::new(Verdict::Nothing, Some(user), &user.email)
                .note(format!("not created yet: {}", why.unwrap_or_default())),
            _ => Item::new(Verdict::Create, Some(user), &user.email),
        },
        Unlisted::JustLinked => Item::new(Verdict::Nothing, Some(user), &user.email)
            .note("linked while the tenant was being listed"),
        Unlisted::DeletedInEntra if policy.on_delete == OnDelete::Ignore => {
            Item::new(Verdict::Reported, Some(user), &user.email).note(
                "its Entra user was deleted in Entra; on_delete = \"ignore\" leaves Entra's \
                 deletions alone: restore it in Entra or delete the person in Plumm",
            )
        }
        Unlisted::DeletedInEntra if user.status == PlummStatus::Inactive => {
            Item::new(Verdict::Reported, Some(user), &user.email).note(
                "its Entra user was deleted in Entra and the person is inactive in Plumm: \
                 nothing to re-create",
            )
        }
        Unlisted::DeletedInEntra => Item::new(Verdict::Recreate, Some(user), &user.email)
            .note("its Entra user was deleted in Entra; Plumm is the source of truth"),
    }
}

/// Update / suspend / reactivate / nothing for a linked user, or link (then
/// those changes) for one found by email. Compares with what Entra holds
/// now, not with what we last wrote: drift made in Entra shows.
fn converge_item(
    verdict: Verdict,
    user: &PlummUser,
    entra: &Listed,
    upn_fallback: bool,
    policy: &Rules<'_>,
) -> Item {
    let upn = match (policy.upn_domain, upn_fallback) {
        (Some(d), true) => UpnSource::Fallback(d),
        _ => UpnSource::EmailDomain,
    };
    let desired = match desired_user(user, policy.mapping, upn) {
        Ok(mut d) => {
            d.account_enabled &= !policy.timing(user).disabled;
            d
        }
        Err(invalid) => {
            return Item::new(Verdict::Reported, Some(user), &user.email)
                .entra(&entra.id)
                .note(format!("cannot be synced: {invalid}"))
        }
    };
    let mut item = Item::new(verdict, Some(user), &user.email).entra(&entra.id);
    if verdict == Verdict::Link {
        item.changes = diff(&entra.props, &props(&desired));
        return item.note("an Entra user already has this email");
    }
    let plan = plan_update(&entra.props, &desired, policy.revoke_on_suspend);
    item.verdict = match plan.action {
        Action::Suspend => Verdict::Suspend,
        Action::Reactivate => Verdict::Reactivate,
        Action::Update => Verdict::Update,
        _ => Verdict::Nothing,
    };
    item.changes = plan.changes;
    item
}

fn on_delete_name(o: OnDelete) -> &'static str {
    match o {
        OnDelete::Suspend => "suspend",
        OnDelete::Delete => "delete",
        OnDelete::Ignore => "ignore",
    }
}

/// The id of a listed user's manager, from `$expand=manager($select=id)`
/// (lower case, as links keep ids); `None`: no manager.
pub fn listed_manager(user: &Value) -> Option<String> {
    let id = user.get("manager")?.get("id")?.as_str()?;
    Some(id.to_ascii_lowercase())
}

/// A manager that differs between Entra (`entra`) and Plumm (`wanted`: the
/// manager's account; `None` when that is not known yet, as for a manager
/// without an account). A manager Plumm does not name is only removed if
/// the daemon set one on the account (`daemon_set`): one set by hand in
/// Entra for a person Plumm gives none stays.
pub fn manager_drift(
    entra: Option<&str>,
    wanted: Option<Option<&str>>,
    daemon_set: bool,
) -> Option<Change> {
    let wanted = wanted?;
    if wanted.is_none() && !daemon_set {
        return None;
    }
    let same = match (entra, wanted) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a.is_none() && b.is_none(),
    };
    (!same).then(|| Change {
        property: "manager".into(),
        old: entra.map_or(Value::Null, Value::from),
        new: wanted.map_or(Value::Null, Value::from),
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
