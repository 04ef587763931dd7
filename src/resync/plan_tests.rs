use serde_json::json;

use super::*;
use crate::domain::{CompanyId, PlummUserId};

fn person(id: i64, email: &str, role: &str, active: bool) -> PlummUser {
    PlummUser {
        id: PlummUserId(id),
        company_id: CompanyId(1),
        email: email.into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        role: Some(role.into()),
        department: Some("Engineering".into()),
        location: Some("London".into()),
        country: Some("GB".into()),
        status: if active {
            PlummStatus::Active
        } else {
            PlummStatus::Inactive
        },
        updated_at: None,
        extra: Default::default(),
    }
}

/// What Entra would hold for `u` had the daemon written it.
fn listed_as(u: &PlummUser, m: &Mapping) -> Listed {
    let d = desired_user(u, m, UpnSource::EmailDomain).unwrap();
    Listed {
        id: "e-1".into(),
        props: props(&d),
    }
}

fn policy(m: &Mapping, on_delete: OnDelete) -> Rules<'_> {
    Rules {
        mapping: m,
        upn_domain: None,
        on_delete,
        revoke_on_suspend: true,
        lifecycle: Default::default(),
        now: chrono::Utc::now(),
    }
}

#[test]
fn a_linked_user_in_sync_needs_nothing() {
    let m = Mapping::default();
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    let e = listed_as(&ada, &m);
    let known = Known::Linked {
        user: &ada,
        upn_fallback: false,
    };
    let item = plan_listed(&e, known, &policy(&m, OnDelete::Suspend));
    assert_eq!(item.verdict, Verdict::Nothing);
    assert!(item.changes.is_empty());
}

#[test]
fn a_rename_made_in_entra_is_an_update_with_entras_value_as_old() {
    let m = Mapping::default();
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    let mut e = listed_as(&ada, &m);
    e.props
        .insert("displayName".into(), json!("Renamed In Entra"));
    let known = Known::Linked {
        user: &ada,
        upn_fallback: false,
    };
    let item = plan_listed(&e, known, &policy(&m, OnDelete::Suspend));
    assert_eq!(item.verdict, Verdict::Update);
    assert_eq!(
        item.changes,
        vec![Change {
            property: "displayName".into(),
            old: json!("Renamed In Entra"),
            new: json!("Ada Lovelace"),
        }]
    );
}

#[test]
fn an_account_disabled_in_entra_is_reactivated_and_an_inactive_person_suspended() {
    let m = Mapping::default();
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    let mut e = listed_as(&ada, &m);
    e.props.insert("accountEnabled".into(), json!(false));
    let p = policy(&m, OnDelete::Suspend);
    let linked = |u| Known::Linked {
        user: u,
        upn_fallback: false,
    };
    assert_eq!(
        plan_listed(&e, linked(&ada), &p).verdict,
        Verdict::Reactivate
    );
    let gone = person(7, "ada@contoso.com", "Engineer", false);
    let e = listed_as(&ada, &m);
    let item = plan_listed(&e, linked(&gone), &p);
    assert_eq!(item.verdict, Verdict::Suspend);
    assert!(item.deprovisions());
}

#[test]
fn strangers_are_unmanaged_and_same_email_links_with_its_changes() {
    let m = Mapping::default();
    let p = policy(&m, OnDelete::Suspend);
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    let mut e = listed_as(&ada, &m);
    e.props.insert("jobTitle".into(), json!("Intern"));
    let stranger = plan_listed(&e, Known::Stranger, &p);
    assert_eq!(stranger.verdict, Verdict::Unmanaged);
    assert!(!stranger.verdict.writes());
    let known = Known::SameEmail {
        user: &ada,
        linked_to: None,
    };
    let link = plan_listed(&e, known, &p);
    assert_eq!(link.verdict, Verdict::Link);
    assert_eq!(link.changes.len(), 1);
    assert!(!link.deprovisions());
    let dup = Known::SameEmail {
        user: &ada,
        linked_to: Some("e-2"),
    };
    assert_eq!(plan_listed(&e, dup, &p).verdict, Verdict::Unmanaged);
}

#[test]
fn an_orphaned_link_follows_on_delete() {
    let m = Mapping::default();
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    let e = listed_as(&ada, &m);
    let orphan = Known::Orphaned { user: 7 };
    let s = plan_listed(&e, orphan, &policy(&m, OnDelete::Suspend));
    assert_eq!((s.verdict, s.user), (Verdict::Suspend, Some(7)));
    let d = plan_listed(&e, orphan, &policy(&m, OnDelete::Delete));
    assert_eq!(d.verdict, Verdict::Delete);
    let i = plan_listed(&e, orphan, &policy(&m, OnDelete::Ignore));
    assert_eq!(i.verdict, Verdict::Nothing);
}

#[test]
fn deleted_in_entra_is_recreated_unless_on_delete_ignore_or_inactive() {
    let m = Mapping::default();
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    let how = Unlisted::DeletedInEntra;
    let suspend = policy(&m, OnDelete::Suspend);
    assert_eq!(
        plan_unlisted(&ada, how, &suspend).verdict,
        Verdict::Recreate
    );
    let delete = policy(&m, OnDelete::Delete);
    assert_eq!(plan_unlisted(&ada, how, &delete).verdict, Verdict::Recreate);
    let ignore = policy(&m, OnDelete::Ignore);
    assert_eq!(plan_unlisted(&ada, how, &ignore).verdict, Verdict::Reported);
    let left = person(7, "ada@contoso.com", "Engineer", false);
    assert_eq!(
        plan_unlisted(&left, how, &suspend).verdict,
        Verdict::Reported
    );
}

#[test]
fn never_linked_is_created_and_invalid_is_reported() {
    let m = Mapping::default();
    let p = policy(&m, OnDelete::Suspend);
    let ada = person(7, "ada@contoso.com", "Engineer", true);
    assert_eq!(
        plan_unlisted(&ada, Unlisted::NeverLinked, &p).verdict,
        Verdict::Create
    );
    assert_eq!(
        plan_unlisted(&ada, Unlisted::JustLinked, &p).verdict,
        Verdict::Nothing
    );
    let bad = person(8, "bad+one@contoso.com", "X", true);
    let item = plan_unlisted(&bad, Unlisted::NeverLinked, &p);
    assert_eq!(item.verdict, Verdict::Reported);
    assert!(item.note.unwrap().contains("email"));
}

#[test]
fn an_account_a_lost_create_left_for_someone_who_left_is_deprovisioned_not_unmanaged() {
    let m = Mapping::default();
    let gone = person(7, "left@contoso.com", "Nurse", true);
    let e = listed_as(&gone, &m);
    let known = Known::Intended {
        user: 7,
        plumm: None,
    };
    let s = plan_listed(&e, known, &policy(&m, OnDelete::Suspend));
    assert_eq!(s.verdict, Verdict::Suspend);
    assert_eq!(s.user, Some(7));
    assert!(s.deprovisions(), "the brake counts it");
    let d = plan_listed(&e, known, &policy(&m, OnDelete::Delete));
    assert_eq!(d.verdict, Verdict::Delete);
}

#[test]
fn an_account_a_lost_create_left_for_someone_now_under_another_email_needs_a_person() {
    let m = Mapping::default();
    let now = person(7, "renamed@contoso.com", "Nurse", true);
    let e = listed_as(&person(7, "old@contoso.com", "Nurse", true), &m);
    let item = plan_listed(
        &e,
        Known::Intended {
            user: 7,
            plumm: Some(&now),
        },
        &policy(&m, OnDelete::Suspend),
    );
    assert_eq!(item.verdict, Verdict::Reported);
    assert!(item.note.unwrap().contains("renamed@contoso.com"));
}

#[test]
fn manager_drift_is_what_differs_and_a_hand_set_manager_plumm_does_not_name_stays() {
    let listed =
        json!({"id": "u1", "manager": {"@odata.type": "#microsoft.graph.user", "id": "M-1"}});
    assert_eq!(listed_manager(&listed).as_deref(), Some("m-1"));
    assert_eq!(listed_manager(&json!({"id": "u1"})), None);
    assert_eq!(manager_drift(Some("m-1"), Some(Some("M-1")), true), None);
    let changed = manager_drift(Some("m-1"), Some(Some("m-2")), true).unwrap();
    assert_eq!((changed.old, changed.new), (json!("m-1"), json!("m-2")));
    let lost = manager_drift(None, Some(Some("m-2")), false).unwrap();
    assert_eq!(lost.old, Value::Null);
    // Plumm names none: removed only if the daemon had set one.
    assert_eq!(manager_drift(Some("m-1"), Some(None), false), None);
    assert!(manager_drift(Some("m-1"), Some(None), true).is_some());
    // The manager has no account yet: nothing to compare with.
    assert_eq!(manager_drift(Some("m-1"), None, true), None);
}
