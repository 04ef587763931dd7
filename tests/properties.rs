//! Properties of the parsers input reaches first: the email (`domain`), the
//! outbox snapshot, the `[mapping]` templates and the mapping of a Plumm row
//! to its Entra user. Whatever Plumm or an operator writes, they never
//! panic; a refusal names the field to fix; what parses survives a round
//! trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use entra_daemon::domain::{CompanyId, Email, PlummStatus, PlummUser, PlummUserId};
use entra_daemon::mapping::{desired_user, Mapping, MappingError, UpnSource};
use proptest::prelude::*;

/// Text as Plumm may hold it: anything, and the awkward cases more often
/// than chance would pick them (at signs, dots, NULs, right-to-left marks,
/// emoji, accents, braces, very long runs).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 '@._!#^~+{}\u{0}\u{7}\t\u{202e}\u{05d0}\u{0645}é😀-]{0,40}",
        "[a-z]{1,20}@[a-z]{1,12}\\.(com|org|co\\.uk)",
        "[a-zA-Z ]{200,400}",
    ]
}

fn email() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "[a-zA-Z0-9][a-zA-Z0-9._'!#^~-]{0,70}@[a-zA-Z0-9-]{1,30}\\.[a-z]{2,6}",
        " *[A-Za-z]{1,10}@[A-Za-z]{1,10}\\.com *",
    ]
}

fn user() -> impl Strategy<Value = PlummUser> {
    let optional = || proptest::option::of(text());
    let country = proptest::option::of(prop_oneof![text(), "[A-Za-z]{2}"]);
    (
        (1i64..i64::MAX, 1i64..1000, email(), text(), text()),
        (optional(), optional(), optional(), country, any::<bool>()),
    )
        .prop_map(
            |((id, company, email, first, last), (role, dept, loc, country, active))| PlummUser {
                id: PlummUserId(id),
                company_id: CompanyId(company),
                email,
                first_name: first,
                last_name: last,
                role,
                department: dept,
                location: loc,
                country,
                status: if active {
                    PlummStatus::Active
                } else {
                    PlummStatus::Inactive
                },
                updated_at: None,
                extra: Default::default(),
            },
        )
}

/// A problem's field is Plumm's: `email`, columns joined by `+` with the
/// Entra property, or the `[mapping]` entry for a column-less template.
fn names_a_plumm_field(field: &str) -> bool {
    let columns = field.split(" (Entra ").next().unwrap_or("");
    field == "email"
        || field.starts_with("[mapping] ")
        || (field.ends_with(')') && columns.split('+').all(|c| PlummUser::COLUMNS.contains(&c)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_email_that_parses_round_trips(raw in email()) {
        if let Ok(e) = Email::parse(&raw) {
            prop_assert_eq!(e.as_str(), raw.trim());
            prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            prop_assert_eq!(format!("{}@{}", e.local_part(), e.domain()), e.as_str());
            prop_assert_eq!(e.key(), e.as_str().to_lowercase());
            prop_assert!(e.same_as(e.as_str()));
            prop_assert!(!e.local_part().is_empty() && e.domain().contains('.'));
        }
    }

    #[test]
    fn a_plain_address_always_parses(raw in " *[a-z][a-z0-9.]{0,20}[a-z0-9]@[a-z][a-z0-9-]{0,20}\\.[a-z]{2,6} *") {
        // Dots never doubled: the round trip above is not vacuous.
        prop_assume!(!raw.contains(".."));
        prop_assert!(Email::parse(&raw).is_ok(), "{raw:?} refused");
    }

    #[test]
    fn an_email_refusal_says_why(raw in email()) {
        if let Err(e) = Email::parse(&raw) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn a_snapshot_round_trips(u in user()) {
        let json = serde_json::to_string(&u).unwrap();
        prop_assert_eq!(PlummUser::from_snapshot(&json).unwrap(), u);
    }

    #[test]
    fn a_snapshot_that_is_not_a_row_is_an_error_not_a_panic(raw in text()) {
        let _ = PlummUser::from_snapshot(&raw);
    }

    #[test]
    fn mapping_a_row_never_panics_and_every_refusal_names_the_field(u in user()) {
        let mapping = Mapping::default();
        match desired_user(&u, &mapping, UpnSource::EmailDomain) {
            Err(invalid) => {
                prop_assert!(!invalid.0.is_empty());
                let text = invalid.to_string();
                for p in &invalid.0 {
                    prop_assert!(names_a_plumm_field(&p.field), "field {:?}", p.field);
                    prop_assert!(text.contains(&p.field));
                    prop_assert!(!p.value.chars().any(char::is_control), "raw control in {:?}", p.value);
                    prop_assert!(p.value.chars().count() <= 43 + 10 * 40, "value quoted whole");
                    prop_assert!(!p.reason.is_empty());
                }
            }
            Ok(d) => {
                let email = u.email.trim();
                prop_assert_eq!(&d.user_principal_name, email);
                prop_assert_eq!(&d.mail, email);
                prop_assert_eq!(d.account_enabled, u.status == PlummStatus::Active);
                let nick = &d.mail_nickname;
                prop_assert!(!nick.is_empty() && nick.len() <= 64 && nick.is_ascii());
                prop_assert!(!nick.contains(['@', '(', ')', '\\', '[', ']', '"', ';', ':', '<', '>', ' ', ',']));
                let display = d.profile["displayName"].as_deref().unwrap_or("");
                prop_assert!(!display.is_empty() && display.chars().count() <= 256);
                for v in d.profile.values().flatten() {
                    prop_assert!(!v.chars().any(char::is_control), "control in {:?}", v);
                    prop_assert_eq!(v.split_whitespace().collect::<Vec<_>>().join(" "), v.clone());
                }
                if let Some(code) = d.profile["usageLocation"].as_deref() {
                    prop_assert!(code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()));
                }
            }
        }
    }

    #[test]
    fn mapping_is_deterministic_and_the_fallback_domain_never_panics(u in user(), domain in text()) {
        let m = Mapping::default();
        prop_assert_eq!(
            desired_user(&u, &m, UpnSource::EmailDomain),
            desired_user(&u, &m, UpnSource::EmailDomain)
        );
        if let Ok(d) = desired_user(&u, &m, UpnSource::Fallback(&domain)) {
            let suffix = format!("@{domain}");
            prop_assert!(d.user_principal_name.ends_with(&suffix));
        }
    }

    #[test]
    fn a_template_never_panics_and_a_refusal_names_its_property(
        property in prop_oneof![Just("displayName".to_owned()), Just("jobTitle".to_owned()), text()],
        template in text(),
    ) {
        let mut table = BTreeMap::new();
        table.insert("displayName".to_owned(), "{first_name} {last_name}".to_owned());
        table.insert(property.clone(), template);
        if let Err(e) = Mapping::from_table(&table) {
            let text = e.to_string();
            match e {
                MappingError::NoDisplayName => prop_assert!(text.contains("displayName")),
                _ => prop_assert!(text.contains(&property), "{} does not name {:?}", text, property),
            }
        }
    }

    #[test]
    fn a_literal_template_renders_as_written_with_its_spaces_collapsed(
        literal in "[A-Za-z0-9 '.,;:!?()\u{e9}\u{05d0}\u{0645}😀-]{1,200}", u in user(),
    ) {
        prop_assume!(!literal.trim().is_empty());
        let mut table = BTreeMap::new();
        table.insert("displayName".to_owned(), literal.clone());
        let m = Mapping::from_table(&table).unwrap();
        let mut u = u;
        u.email = "ada@contoso.com".into();
        let d = desired_user(&u, &m, UpnSource::EmailDomain).unwrap();
        let want = literal.split_whitespace().collect::<Vec<_>>().join(" ");
        prop_assert_eq!(d.profile["displayName"].as_deref(), Some(want.as_str()));
    }

    #[test]
    fn a_column_template_renders_the_column_trimmed_and_collapsed(
        role in "[A-Za-z \u{e9}\u{05d0}😀]{1,100}", u in user(),
    ) {
        let mut table = BTreeMap::new();
        table.insert("displayName".to_owned(), "Person".to_owned());
        table.insert("jobTitle".to_owned(), "{ role }".to_owned());
        let m = Mapping::from_table(&table).unwrap();
        let mut u = u;
        u.email = "ada@contoso.com".into();
        u.role = Some(role.clone());
        let d = desired_user(&u, &m, UpnSource::EmailDomain).unwrap();
        let want = role.split_whitespace().collect::<Vec<_>>().join(" ");
        prop_assert_eq!(d.profile["jobTitle"].clone(), (!want.is_empty()).then_some(want));
    }

    #[test]
    fn a_fallback_renders_exactly_when_the_column_is_null_or_blank(
        value in proptest::option::of("[A-Za-z ]{0,20}"),
        number in proptest::option::of("[A-Z0-9-]{1,12}"),
        fallback in "[A-Za-z]{1,10}",
        u in user(),
    ) {
        let mut table = BTreeMap::new();
        table.insert("displayName".to_owned(), "Person".to_owned());
        table.insert("jobTitle".to_owned(), format!("{{role|{fallback}}}"));
        table.insert("employeeId".to_owned(), format!("{{employee_number|{fallback}}}"));
        let m = Mapping::from_table(&table).unwrap();
        let mut u = u;
        u.email = "ada@contoso.com".into();
        u.role = value.clone();
        u.extra.insert("employee_number".into(), number.clone());
        let d = desired_user(&u, &m, UpnSource::EmailDomain).unwrap();
        let want = |v: Option<String>| match v.map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")) {
            Some(v) if !v.is_empty() => v,
            _ => fallback.clone(),
        };
        prop_assert_eq!(d.profile["jobTitle"].clone(), Some(want(value)));
        prop_assert_eq!(d.profile["employeeId"].clone(), Some(want(number)));
    }
}
