//! Plumm rows to Entra users: what maps, and what is refused and why.
use super::*;
use crate::domain::{CompanyId, PlummUserId};

fn ada() -> PlummUser {
    PlummUser {
        id: PlummUserId(7),
        company_id: CompanyId(1),
        email: "Ada.Lovelace@contoso.com".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        role: Some("Engineer".into()),
        department: None,
        location: Some("London".into()),
        country: Some("gb".into()),
        status: PlummStatus::Active,
        updated_at: None,
        extra: Default::default(),
    }
}

#[test]
fn default_mapping_fills_the_documented_properties() {
    let d = desired_user(&ada(), &Mapping::default(), UpnSource::EmailDomain).unwrap();
    assert_eq!(d.user_principal_name, "Ada.Lovelace@contoso.com");
    assert_eq!(d.mail, "Ada.Lovelace@contoso.com");
    assert_eq!(d.mail_nickname, "Ada.Lovelace");
    assert!(d.account_enabled);
    assert_eq!(d.profile["displayName"].as_deref(), Some("Ada Lovelace"));
    assert_eq!(d.profile["givenName"].as_deref(), Some("Ada"));
    assert_eq!(d.profile["surname"].as_deref(), Some("Lovelace"));
    assert_eq!(d.profile["jobTitle"].as_deref(), Some("Engineer"));
    assert_eq!(d.profile["department"], None);
    assert_eq!(d.profile["officeLocation"].as_deref(), Some("London"));
    assert_eq!(d.profile["usageLocation"].as_deref(), Some("GB"));
}

#[test]
fn inactive_users_are_disabled() {
    let mut u = ada();
    u.status = PlummStatus::Inactive;
    let d = desired_user(&u, &Mapping::default(), UpnSource::EmailDomain).unwrap();
    assert!(!d.account_enabled);
}

#[test]
fn fallback_domain_replaces_the_email_domain_in_the_upn_only() {
    let d = desired_user(
        &ada(),
        &Mapping::default(),
        UpnSource::Fallback("contoso.onmicrosoft.com"),
    )
    .unwrap();
    assert_eq!(
        d.user_principal_name,
        "Ada.Lovelace@contoso.onmicrosoft.com"
    );
    assert_eq!(d.mail, "Ada.Lovelace@contoso.com");
}

#[test]
fn every_problem_names_the_plumm_field_and_the_fix() {
    let mut u = ada();
    u.email = "ada+test@contoso.com".into();
    u.country = Some("UK".into());
    let err = desired_user(&u, &Mapping::default(), UpnSource::EmailDomain).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.0.len(), 2, "{text}");
    assert!(
        text.contains("email 'ada+test@contoso.com' has '+'"),
        "{text}"
    );
    assert!(
        text.contains("country (Entra usageLocation) 'UK'"),
        "{text}"
    );
    assert!(text.contains("'GB'"), "{text}");
}

#[test]
fn a_missing_name_is_refused_because_graph_requires_display_name() {
    let mut u = ada();
    u.first_name = " ".into();
    u.last_name = String::new();
    let err = desired_user(&u, &Mapping::default(), UpnSource::EmailDomain).unwrap_err();
    assert!(err.to_string().contains("displayName"), "{err}");
}

#[test]
fn mail_nickname_is_safe_even_for_odd_local_parts() {
    let e = Email::parse("o'brien!x@contoso.com").unwrap();
    assert_eq!(mail_nickname(&e, 9), "obrienx");
    let e = Email::parse("!!!@contoso.com").unwrap();
    assert_eq!(mail_nickname(&e, 9), "user9");
}

#[test]
fn mapping_rejects_unknown_properties_columns_and_derived_ones() {
    let t = |k: &str, v: &str| {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        m.insert("displayName".into(), "{first_name}".into());
        m.insert(k.into(), v.into());
        Mapping::from_table(&m)
    };
    assert!(matches!(
        t("jobTitel", "{role}"),
        Err(MappingError::UnknownProperty(..))
    ));
    assert!(matches!(
        t("jobTitle", "{ |x}"),
        Err(MappingError::NoColumn { .. })
    ));
    assert!(matches!(
        t("mail", "{email}"),
        Err(MappingError::DerivedProperty(..))
    ));
    assert!(matches!(
        t("jobTitle", "{role"),
        Err(MappingError::Unclosed { .. })
    ));
    assert!(t("givenName", "{first_name}").is_ok());
}

#[test]
fn a_control_character_is_refused_naming_the_field_and_never_quoted_raw() {
    let mut u = ada();
    u.first_name = "Ada\0".into();
    u.location = Some("Lon\u{7}don".into());
    let err = desired_user(&u, &Mapping::default(), UpnSource::EmailDomain).unwrap_err();
    let text = err.to_string();
    // The first name feeds displayName and givenName: each is named.
    assert_eq!(err.0.len(), 3, "{text}");
    assert!(
        text.contains("first_name+last_name (Entra displayName)"),
        "{text}"
    );
    assert!(text.contains("first_name (Entra givenName)"), "{text}");
    assert!(text.contains("U+0000"), "{text}");
    assert!(text.contains("location (Entra officeLocation)"), "{text}");
    assert!(!text.contains('\0') && !text.contains('\u{7}'), "{text:?}");
}

#[test]
fn a_country_code_outside_iso_3166_is_refused_and_lower_case_is_upper_cased() {
    for code in ["XX", "ZZ", "GBR", "1"] {
        let mut u = ada();
        u.country = Some(code.into());
        let err = desired_user(&u, &Mapping::default(), UpnSource::EmailDomain).unwrap_err();
        assert!(
            err.to_string().contains("country (Entra usageLocation)"),
            "{err}"
        );
    }
    let mut u = ada();
    u.country = Some("fr".into());
    let d = desired_user(&u, &Mapping::default(), UpnSource::EmailDomain).unwrap();
    assert_eq!(d.profile["usageLocation"].as_deref(), Some("FR"));
}

#[test]
fn an_entra_property_leads_back_to_its_plumm_field() {
    let m = Mapping::default();
    assert_eq!(
        m.field_for("usageLocation"),
        "country (Entra usageLocation)"
    );
    assert_eq!(m.field_for("jobTitle"), "role (Entra jobTitle)");
    assert_eq!(
        m.field_for("userPrincipalName"),
        "email (Entra userPrincipalName)"
    );
    assert_eq!(
        m.field_for("accountEnabled"),
        "status (Entra accountEnabled)"
    );
    assert_eq!(m.field_for("city"), "Entra city");
}

#[test]
fn a_column_plumm_lacks_is_refused_listing_the_columns_it_has() {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("displayName".into(), "{first_name}".into());
    m.insert("jobTitle".into(), "{rank|Staff}".into());
    let mapping = Mapping::from_table(&m).unwrap();
    let columns: Vec<String> = ["id", "first_name", "role"].map(String::from).to_vec();
    let err = mapping.check_columns(&columns).unwrap_err();
    assert!(matches!(err, MappingError::UnknownColumn { .. }));
    let text = err.to_string();
    assert!(text.contains("{rank}"), "{text}");
    assert!(text.contains("id, first_name, role"), "{text}");
    let with_rank = [columns, vec!["rank".into()]].concat();
    assert_eq!(mapping.check_columns(&with_rank), Ok(()));
}

#[test]
fn a_fallback_stands_in_for_a_null_or_blank_column_only() {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("displayName".into(), "{first_name}".into());
    m.insert("usageLocation".into(), "{country|GB}".into());
    m.insert("employeeId".into(), "{employee_number|none yet}".into());
    let mapping = Mapping::from_table(&m).unwrap();
    let mut u = ada();
    u.country = None;
    u.extra.insert("employee_number".into(), Some("  ".into()));
    let d = desired_user(&u, &mapping, UpnSource::EmailDomain).unwrap();
    assert_eq!(d.profile["usageLocation"].as_deref(), Some("GB"));
    assert_eq!(d.profile["employeeId"].as_deref(), Some("none yet"));
    u.country = Some("fr".into());
    u.extra
        .insert("employee_number".into(), Some("E-42".into()));
    let d = desired_user(&u, &mapping, UpnSource::EmailDomain).unwrap();
    assert_eq!(d.profile["usageLocation"].as_deref(), Some("FR"));
    assert_eq!(d.profile["employeeId"].as_deref(), Some("E-42"));
}

#[test]
fn any_other_plumm_column_is_a_template_column_and_numbers_read_as_text() {
    let snapshot = r#"{"id":7,"company_id":1,"email":"ada@contoso.com","first_name":"Ada",
        "last_name":"Lovelace","role":null,"department":null,"location":null,"country":"GB",
        "status":"active","updated_at":null,"employee_number":"E-7","manager_id":3,"phone":null}"#;
    let u = PlummUser::from_snapshot(snapshot).unwrap();
    assert_eq!(u.column("employee_number").as_deref(), Some("E-7"));
    assert_eq!(u.column("manager_id").as_deref(), Some("3"));
    assert_eq!(u.column("phone"), None);
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert(
        "displayName".into(),
        "{first_name} ({employee_number})".into(),
    );
    let d = desired_user(
        &u,
        &Mapping::from_table(&m).unwrap(),
        UpnSource::EmailDomain,
    )
    .unwrap();
    assert_eq!(d.profile["displayName"].as_deref(), Some("Ada (E-7)"));
    let again = PlummUser::from_snapshot(&serde_json::to_string(&u).unwrap()).unwrap();
    assert_eq!(again, u);
}

fn employee_mapping() -> Mapping {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("displayName".into(), "{first_name}".into());
    m.insert("employeeId".into(), "{employee_number}".into());
    m.insert("mobilePhone".into(), "{phone}".into());
    m.insert("businessPhones".into(), "{desk_phone}".into());
    Mapping::from_table(&m).unwrap()
}

#[test]
fn an_employee_id_over_sixteen_characters_is_refused_naming_the_plumm_column() {
    let mut u = ada();
    u.extra
        .insert("employee_number".into(), Some("E-1234567890123456".into()));
    let err = desired_user(&u, &employee_mapping(), UpnSource::EmailDomain).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.0.len(), 1, "{text}");
    assert_eq!(err.0[0].field, "employee_number (Entra employeeId)");
    assert!(text.contains("16 characters"), "{text}");
    u.extra
        .insert("employee_number".into(), Some("E-12345678901234".into()));
    assert!(desired_user(&u, &employee_mapping(), UpnSource::EmailDomain).is_ok());
}

#[test]
fn a_value_that_is_no_phone_number_is_refused_naming_the_plumm_column() {
    let mut u = ada();
    u.extra.insert("phone".into(), Some("n/a".into()));
    u.extra
        .insert("desk_phone".into(), Some("ada@contoso.com".into()));
    let err = desired_user(&u, &employee_mapping(), UpnSource::EmailDomain).unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "desk_phone (Entra businessPhones)",
            "phone (Entra mobilePhone)"
        ]
    );
    assert!(err
        .to_string()
        .contains("correct the phone number in Plumm"));
    u.extra
        .insert("phone".into(), Some("+44 7700 900123".into()));
    u.extra
        .insert("desk_phone".into(), Some("+44 20 7946 0958 x12".into()));
    let d = desired_user(&u, &employee_mapping(), UpnSource::EmailDomain).unwrap();
    assert_eq!(d.profile["mobilePhone"].as_deref(), Some("+44 7700 900123"));
    assert_eq!(
        d.profile["businessPhones"].as_deref(),
        Some("+44 20 7946 0958 x12")
    );
}
