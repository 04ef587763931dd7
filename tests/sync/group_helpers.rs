//! What the group membership tests share: the consent group sync needs,
//! seeded groups, a group's members, and the binary.
use std::collections::BTreeSet;

use entra_daemon::emulator::SeedGroup;

use crate::helpers::*;

/// What a tenant's admin consents to for group sync (the emulator's
/// default consent is `User.ReadWrite.All` alone).
pub fn grant_groups(app: &TestApp) {
    let roles = [
        "User.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "Group.Create",
    ];
    app.control
        .set_permissions(T1, roles.map(String::from).to_vec())
        .unwrap();
}

/// A group that exists in Contoso's tenant before the daemon runs.
pub fn seed_group(app: &TestApp, name: &str, members: Vec<String>) -> String {
    let g = SeedGroup {
        display_name: name.into(),
        members,
        ..SeedGroup::default()
    };
    app.control.seed_group(T1, g).unwrap()
}

/// A group's members in Contoso's tenant; nobody may be in it twice.
pub fn member_set(app: &TestApp, group: &str) -> BTreeSet<String> {
    let list = app.control.group_members(T1, group).unwrap();
    let set: BTreeSet<String> = list.iter().cloned().collect();
    assert_eq!(set.len(), list.len(), "nobody is a member twice");
    set
}
