//! `[[groups]]` rules: which are refused and why, and who lands where.
use super::*;
use crate::domain::{PlummStatus, PlummUserId};

const CLINICAL: &str = "b5b1f3c0-1d2e-4f30-8a41-5b6c7d8e9f01";

fn nia() -> PlummUser {
    PlummUser {
        id: PlummUserId(3),
        company_id: CompanyId(1),
        email: "nia@contoso.com".into(),
        first_name: "Nia".into(),
        last_name: "Okafor".into(),
        role: Some("Ward Lead".into()),
        department: Some("Clinical".into()),
        location: Some("Leeds".into()),
        country: Some("GB".into()),
        status: PlummStatus::Active,
        updated_at: None,
        extra: Default::default(),
    }
}

fn spec(
    company: Option<i64>,
    id: Option<&str>,
    name: Option<&str>,
    when: &[(&str, &str)],
) -> GroupRuleSpec {
    GroupRuleSpec {
        company,
        group_id: id.map(str::to_string),
        name: name.map(str::to_string),
        when: when
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn groups_of(user: &PlummUser, specs: &[GroupRuleSpec]) -> Vec<GroupTarget> {
    let rules = GroupRules::new(specs).expect("valid rules");
    desired_groups(user, &rules).into_iter().collect()
}

fn name(n: &str) -> GroupTarget {
    GroupTarget::Name(n.into())
}

#[test]
fn every_matching_rule_adds_its_group() {
    let specs = [
        spec(None, None, Some("All staff"), &[]),
        spec(Some(1), Some(CLINICAL), None, &[("department", "clinical")]),
        spec(None, None, Some("Managers"), &[("role", "*lead*")]),
        spec(None, None, Some("{location} office"), &[]),
        spec(
            None,
            None,
            Some("Dept {department}"),
            &[("location", "London")],
        ),
    ];
    assert_eq!(
        groups_of(&nia(), &specs),
        [
            GroupTarget::Id(CLINICAL.into()),
            name("All staff"),
            name("Leeds office"),
            name("Managers"),
        ]
    );
}

#[test]
fn all_conditions_must_hold_and_a_company_rule_only_covers_its_company() {
    let specs = [
        spec(
            None,
            None,
            Some("Leeds leads"),
            &[("role", "*Lead"), ("location", "Leeds")],
        ),
        spec(
            None,
            None,
            Some("London leads"),
            &[("role", "*Lead"), ("location", "London")],
        ),
        spec(Some(2), None, Some("Fabrikam staff"), &[]),
    ];
    assert_eq!(groups_of(&nia(), &specs), [name("Leeds leads")]);
    let mut moved = nia();
    moved.company_id = CompanyId(2);
    assert_eq!(
        groups_of(&moved, &specs),
        [name("Fabrikam staff"), name("Leeds leads")]
    );
}

#[test]
fn patterns_are_whole_value_case_insensitive_wildcards() {
    let cases = [
        ("Ward Lead", "ward lead", true),
        ("Ward Lead", "WARD*", true),
        ("Ward Lead", "*LEAD", true),
        ("Ward Lead", "w*d*l*d", true),
        ("Ward Lead", "Lead", false),
        ("Ward Lead", "*Leads", false),
        ("Ward Lead", "*", true),
        ("Ward Lead", "**a**", true),
        ("Ward Lead", "Ward Lead?", false),
    ];
    for (role, pattern, hit) in cases {
        let mut u = nia();
        u.role = Some(role.into());
        let got = groups_of(&u, &[spec(None, None, Some("G"), &[("role", pattern)])]);
        assert_eq!(got.len() == 1, hit, "{role:?} against {pattern:?}");
    }
    // A blank column holds the empty value: only a bare '*' matches it.
    let mut u = nia();
    u.role = None;
    assert_eq!(
        groups_of(&u, &[spec(None, None, Some("G"), &[("role", "*")])]).len(),
        1
    );
    assert!(groups_of(&u, &[spec(None, None, Some("G"), &[("role", "*a*")])]).is_empty());
}

#[test]
fn a_name_that_renders_empty_names_no_group() {
    let mut u = nia();
    u.department = None;
    let specs = [spec(None, None, Some("{department}"), &[])];
    assert!(groups_of(&u, &specs).is_empty());
}

#[test]
fn bad_rules_are_refused_with_their_position_and_reason() {
    let ok = spec(None, None, Some("All staff"), &[]);
    let cases = [
        (spec(None, None, None, &[]), "neither group_id nor name"),
        (
            spec(Some(1), Some(CLINICAL), Some("X"), &[]),
            "both group_id and name",
        ),
        (spec(None, Some(CLINICAL), None, &[]), "needs a company"),
        (
            spec(Some(1), Some("not-a-guid"), None, &[]),
            "is not an Entra object id",
        ),
        (spec(None, None, Some("Dept {department"), &[]), "unclosed"),
    ];
    for (bad, reason) in cases {
        let err = GroupRules::new(&[ok.clone(), bad]).expect_err(reason);
        assert_eq!(err.position, 2, "{err}");
        assert!(err.to_string().starts_with("rule 2: "), "{err}");
        assert!(err.reason.contains(reason), "{err}");
    }
}

#[test]
fn group_ids_are_compared_in_one_spelling() {
    let upper = CLINICAL.to_uppercase();
    let got = groups_of(&nia(), &[spec(Some(1), Some(&upper), None, &[])]);
    assert_eq!(got, [GroupTarget::Id(CLINICAL.into())]);
}

#[test]
fn nicknames_are_stable_valid_and_tell_names_apart() {
    let a = group_mail_nickname("Dept Clinical");
    assert_eq!(
        a,
        group_mail_nickname("dept clinical "),
        "case and edges fold"
    );
    assert!(a.starts_with("plumm-deptclinical-"), "{a}");
    assert_ne!(group_mail_nickname("R&D"), group_mail_nickname("RD"));
    let long = group_mail_nickname(&"Très long nom d'équipe ".repeat(10));
    assert!(long.len() <= 64, "{long}");
    assert!(
        long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{long}"
    );
}

#[test]
fn rules_over_columns_plumm_lacks_are_refused_with_the_columns_it_has() {
    let columns: Vec<String> = ["id", "company_id", "department", "employee_type"]
        .map(String::from)
        .to_vec();
    let ok = spec(
        None,
        None,
        Some("Dept {department}"),
        &[("employee_type", "Contractor")],
    );
    let rules = GroupRules::new(std::slice::from_ref(&ok)).unwrap();
    assert!(
        rules.check_columns(&columns).is_ok(),
        "a column Plumm added is usable"
    );
    let cases = [
        (
            spec(None, None, Some("X"), &[("team", "a")]),
            "when uses 'team', which is not a Plumm users column; columns: id, company_id, department, employee_type",
        ),
        (
            spec(None, None, Some("Dept {dept}"), &[]),
            "name uses '{dept}', which is not a Plumm users column",
        ),
    ];
    for (bad, reason) in cases {
        let rules = GroupRules::new(&[ok.clone(), bad]).expect("well formed");
        let err = rules.check_columns(&columns).expect_err(reason);
        assert_eq!(err.position, 2, "{err}");
        assert!(err.reason.contains(reason), "{err}");
    }
}
