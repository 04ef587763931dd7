//! The app roles (application permissions) each call needs, from the
//! permissions section of its page on learn.microsoft.com and
//! graph/permissions-reference. A token without one of them is refused with
//! 403 whatever the target.

use super::graph::Auth;
use super::groups::{is_assign_license, only_binds_members};
use super::users::Call;

/// graph/api/user-get, user-list: any user-reading role.
const USER_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// graph/api/user-post-users, user-update, user-delete.
const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
/// graph/api/user-revokesigninsessions.
const USER_REVOKE: &[&str] = &[
    "User.RevokeSessions.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// graph/api/group-get, group-list, group-list-members: GroupMember.Read.All
/// least privileged; the write roles include reading ("Allows the app to
/// list groups, read basic properties, read and update the membership",
/// permissions-reference, GroupMember.ReadWrite.All).
const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// graph/api/group-post-groups (application).
const GROUP_CREATE: &[&str] = &[
    "Group.Create",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// graph/api/group-update, group-delete.
const GROUP_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
/// graph/api/group-post-members, group-delete-members, and a PATCH that only
/// binds members.
const MEMBER_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// graph/api/group-assignlicense (application): LicenseAssignment.ReadWrite.All
/// least privileged, Directory.ReadWrite.All and Group.ReadWrite.All higher.
const LICENCE_WRITE: &[&str] = &[
    "LicenseAssignment.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Group.ReadWrite.All",
];
/// graph/api/subscribedsku-list (application): Organization.Read.All least
/// privileged, Directory.Read.All, Directory.ReadWrite.All and
/// Organization.ReadWrite.All higher.
const SKU_READ: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// "User.Read.All and User-LifeCycleInfo.ReadWrite.All", higher privileged
/// "Not available" (graph/tutorial-lifecycle-workflows-set-employeeleavedatetime,
/// linked from graph/api/resources/user, employeeLeaveDateTime): writing
/// the leave date needs this role on top of the usual write role.
const LIFECYCLE_WRITE: &[&str] = &["User-LifeCycleInfo.ReadWrite.All"];
/// Reading employeeLeaveDateTime (graph/api/resources/user: "requires
/// User-LifeCycleInfo.Read.All"; graph/permissions-reference).
const LIFECYCLE_READ: &[&str] = &[
    "User-LifeCycleInfo.Read.All",
    "User-LifeCycleInfo.ReadWrite.All",
];
/// graph/api/directory-deleteditems-list and -get, for users: User.Read.All
/// least privileged; User.DeleteRestore.All ("delete and restore all users",
/// permissions-reference) has to find what it restores.
const DELETED_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "User.DeleteRestore.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// graph/api/directory-deleteditems-restore and -delete, for users:
/// User.DeleteRestore.All least privileged, User.ReadWrite.All (the role
/// the older page named) and Directory.ReadWrite.All higher.
const DELETED_WRITE: &[&str] = &[
    "User.DeleteRestore.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// Whether the token may read employeeLeaveDateTime; without, Graph leaves
/// the property null rather than refusing the whole read.
pub(crate) fn reads_lifecycle(auth: &Auth) -> bool {
    holds(auth, LIFECYCLE_READ)
}

/// Whether the token may read users' properties: listing a group's members
/// without it shows each member's type and id only ("Member objects the app
/// lacks permission to read are returned with limited information",
/// graph/api/group-list-members).
pub(crate) fn reads_users(auth: &Auth) -> bool {
    holds(auth, USER_READ)
}

fn holds(auth: &Auth, any_of: &[&str]) -> bool {
    auth.roles
        .iter()
        .any(|r| any_of.iter().any(|n| n.eq_ignore_ascii_case(r)))
}

pub(crate) fn authorized(auth: &Auth, call: &Call) -> bool {
    let segs = call.segments;
    let seg = |i: usize, name: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(name));
    let get = call.method.eq_ignore_ascii_case("GET");
    if seg(0, "groups") {
        return holds(auth, group_roles(call, get));
    }
    if seg(0, "subscribedSkus") {
        return holds(auth, SKU_READ);
    }
    if seg(0, "directory") {
        return holds(auth, if get { DELETED_READ } else { DELETED_WRITE });
    }
    if !get && writes_leave_date(call) && !holds(auth, LIFECYCLE_WRITE) {
        return false;
    }
    if segs.len() == 3 && seg(2, "memberOf") {
        // user-list-memberof: "User.Read.All and GroupMember.Read.All" at least.
        return holds(auth, USER_READ) && holds(auth, GROUP_READ);
    }
    // Manager reads and writes (graph/api/user-list-manager, user-post-manager,
    // user-delete-manager) need the same roles as any user read or write.
    let revoke = segs
        .last()
        .is_some_and(|s| s.to_ascii_lowercase().ends_with("revokesigninsessions"));
    holds(
        auth,
        match (get, revoke) {
            (true, _) => USER_READ,
            (false, true) => USER_REVOKE,
            (false, false) => USER_WRITE,
        },
    )
}

fn group_roles(call: &Call, get: bool) -> &'static [&'static str] {
    let segs = call.segments;
    let post = call.method.eq_ignore_ascii_case("POST");
    let members = segs
        .get(2)
        .is_some_and(|s| s.eq_ignore_ascii_case("members"));
    if get {
        GROUP_READ
    } else if segs.len() == 3 && is_assign_license(&segs[2]) {
        LICENCE_WRITE
    } else if segs.len() == 1 && post {
        GROUP_CREATE
    } else if members || (segs.len() == 2 && only_binds_members(call.body)) {
        MEMBER_WRITE
    } else {
        GROUP_WRITE
    }
}

/// A user create or update that sets employeeLeaveDateTime (even to null).
fn writes_leave_date(call: &Call) -> bool {
    let users = call
        .segments
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("users"));
    users
        && call.segments.len() <= 2
        && call
            .body
            .and_then(|b| b.as_object())
            .is_some_and(|b| b.keys().any(|k| k == "employeeLeaveDateTime"))
}
