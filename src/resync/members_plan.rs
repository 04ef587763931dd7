//! Membership drift, planned: each managed group's members as Entra lists
//! them against what the rules say of each linked person. Pure.
//!
//! Only people the daemon links are ever considered: a guest, a service
//! account or anyone Plumm does not hold, put in a managed group by hand,
//! stays. A Plumm person put in a managed group by hand that the rules do
//! not give them is taken out again (Plumm is the source of truth for the
//! groups it manages); one taken out by hand is put back.
use std::collections::{BTreeMap, BTreeSet};

/// One linked person, as the plan needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub user: i64,
    pub email: String,
    pub entra_id: String,
    /// The group ids the rules give them.
    pub want: BTreeSet<String>,
    /// Whether every group the rules name for them is known: when not (a
    /// managed group not created yet), nothing of theirs is removed.
    pub complete: bool,
    /// Memberships the daemon recorded for them.
    pub recorded: BTreeSet<String>,
    /// Additions waiting for their batch.
    pub queued: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Not a member, and should be: queued for a batch.
    Add,
    /// A member, and should not be: one write.
    Remove,
    /// A member already, not recorded: recorded, no write.
    Adopt,
    /// Recorded, but not a member and not wanted: the record goes.
    Forget,
}

impl Change {
    /// Whether Entra changes (the others only bring the records in line).
    pub fn writes(self) -> bool {
        matches!(self, Change::Add | Change::Remove)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub person: usize,
    pub group_id: String,
    pub change: Change,
}

/// `listed`: each managed group whose members were read, with its member
/// ids. A group not listed (gone, unreadable) gets no change at all.
pub fn plan_members(
    listed: &BTreeMap<String, BTreeSet<String>>,
    people: &[Person],
) -> Vec<MemberChange> {
    let mut out = Vec::new();
    for (i, p) in people.iter().enumerate() {
        for (group, members) in listed {
            let is = members.contains(&p.entra_id);
            let want = p.want.contains(group);
            let recorded = p.recorded.contains(group);
            let change = match (want, is) {
                (true, false) if p.queued.contains(group) => None,
                (true, false) => Some(Change::Add),
                (true, true) if !recorded => Some(Change::Adopt),
                (false, true) if p.complete => Some(Change::Remove),
                (false, false) if recorded => Some(Change::Forget),
                _ => None,
            };
            if let Some(change) = change {
                out.push(MemberChange {
                    person: i,
                    group_id: group.clone(),
                    change,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn person(id: &str, want: &[&str], recorded: &[&str]) -> Person {
        Person {
            user: 1,
            email: format!("{id}@contoso.com"),
            entra_id: id.into(),
            want: set(want),
            complete: true,
            recorded: set(recorded),
            queued: set(&[]),
        }
    }

    fn changes(listed: &[(&str, &[&str])], people: &[Person]) -> Vec<(usize, String, Change)> {
        let listed = listed
            .iter()
            .map(|(g, m)| (g.to_string(), set(m)))
            .collect();
        plan_members(&listed, people)
            .into_iter()
            .map(|c| (c.person, c.group_id, c.change))
            .collect()
    }

    #[test]
    fn drift_made_by_hand_is_put_back_both_ways() {
        let people = [
            // Taken out of "all" by hand: put back.
            person("ada", &["all"], &["all"]),
            // Put in "finance" by hand, the rules say not: taken out.
            person("ben", &["all"], &["all"]),
        ];
        let got = changes(&[("all", &["ben"]), ("finance", &["ben"])], &people);
        assert_eq!(
            got,
            [
                (0, "all".into(), Change::Add),
                (1, "finance".into(), Change::Remove)
            ]
        );
    }

    #[test]
    fn members_plumm_does_not_hold_are_never_touched() {
        let people = [person("ada", &["all"], &[])];
        let got = changes(&[("all", &["ada", "guest", "service-account"])], &people);
        assert_eq!(
            got,
            [(0, "all".into(), Change::Adopt)],
            "ada is recorded, no write"
        );
    }

    #[test]
    fn records_follow_entra_and_queued_additions_are_not_doubled() {
        let mut queued = person("ada", &["all"], &[]);
        queued.queued = set(&["all"]);
        let stale = person("ben", &[], &["finance"]);
        let got = changes(&[("all", &[]), ("finance", &[])], &[queued, stale]);
        assert_eq!(got, [(1, "finance".into(), Change::Forget)]);
    }

    #[test]
    fn an_incomplete_want_removes_nothing_and_an_unlisted_group_changes_nothing() {
        let mut p = person("ada", &[], &["finance"]);
        p.complete = false;
        assert!(changes(&[("finance", &["ada"])], &[p.clone()]).is_empty());
        p.complete = true;
        assert!(
            changes(&[("all", &[])], &[p]).is_empty(),
            "finance was not listed"
        );
    }
}
