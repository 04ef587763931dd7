//! Which memberships to add and remove: what the rules want against what
//! the daemon made. Pure. A group the daemon never put the person in is not
//! in `recorded`, so it is never removed: hand-made memberships stay.
use std::collections::BTreeSet;

/// The membership changes for one person, each list sorted by group id: a
/// later batcher can group them per group (`members@odata.bind`, 20 a write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipPlan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl MembershipPlan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// `desired` and `recorded` are group ids in one spelling (lower case).
/// `may_remove = false` (a group could not be resolved this time, so the
/// desired set is incomplete) keeps every recorded membership.
pub fn plan_memberships(
    desired: &BTreeSet<String>,
    recorded: &BTreeSet<String>,
    may_remove: bool,
) -> MembershipPlan {
    MembershipPlan {
        add: desired.difference(recorded).cloned().collect(),
        remove: match may_remove {
            true => recorded.difference(desired).cloned().collect(),
            false => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_the_difference_is_planned() {
        let p = plan_memberships(&set(&["all", "clinical"]), &set(&["all", "finance"]), true);
        assert_eq!(p.add, ["clinical"]);
        assert_eq!(p.remove, ["finance"]);
        assert!(plan_memberships(&set(&["all"]), &set(&["all"]), true).is_empty());
    }

    #[test]
    fn nothing_recorded_is_never_removed_and_an_incomplete_want_removes_nothing() {
        let p = plan_memberships(&set(&[]), &set(&[]), true);
        assert!(p.is_empty());
        let p = plan_memberships(&set(&["a"]), &set(&["b"]), false);
        assert_eq!(p.add, ["a"]);
        assert!(p.remove.is_empty());
    }
}
