//! What the config file accepts and how it says no.
use std::path::{Path, PathBuf};

use super::*;
use crate::plan::OnDelete;

const MINIMAL: &str = r#"
[plumm]
database = "plumm.db"
[state]
database = "/var/lib/entra-daemon/state.db"
[entra]
client_id = "11111111-2222-3333-4444-555555555555"
"#;

#[test]
fn minimal_config_gets_microsoft_endpoints_and_documented_defaults() {
    let s = Settings::parse(MINIMAL, Path::new("/etc/entra/entra-daemon.toml")).unwrap();
    assert_eq!(
        s.entra.authority_host.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(
        s.entra.graph_base_url.as_str(),
        "https://graph.microsoft.com/v1.0"
    );
    assert_eq!(s.plumm.database, PathBuf::from("/etc/entra/plumm.db"));
    assert_eq!(s.policy.on_delete, OnDelete::Suspend);
    assert!(s.policy.revoke_sessions_on_suspend);
    assert_eq!(s.policy.upn_domain, None);
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let text = format!("{MINIMAL}\n[sync]\non_delet = \"suspend\"\n");
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("on_delet"), "{err}");
}

#[test]
fn a_parse_error_names_the_position_but_never_quotes_the_line() {
    let text = MINIMAL.replace(
        "[entra]",
        "[entra]\nclient_secret = \"hunter2-very-secret\"",
    );
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 7"), "{err}");
    assert!(err.contains("client_secret"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn durations_must_be_sane() {
    let text = format!("{MINIMAL}\n[sync]\nretry_initial = \"2m\"\nretry_max = \"1s\"\n");
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sync.retry_initial"), "{err}");
    let text = MINIMAL.replace("[plumm]", "[plumm]\npoll_interval = \"0s\"");
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plumm.poll_interval"), "{err}");
}

#[test]
fn bad_values_name_the_key_and_the_reason() {
    let text = format!("{MINIMAL}\n[sync]\non_delete = \"purge\"\n");
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("purge"), "{err}");

    let text = MINIMAL.replace(
        "[entra]",
        "[entra]\ngraph_base_url = \"http://graph.example.com/v1.0\"",
    );
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("entra.graph_base_url"), "{err}");

    let text = format!("{MINIMAL}\n[mapping]\njobTitel = \"{{role}}\"\n");
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("jobTitel"), "{err}");
}

#[test]
fn group_rules_and_the_suspension_policy_join_the_policy() {
    let text = format!(
        "{MINIMAL}\n[sync]\non_suspend_groups = \"remove\"\n\n[[groups]]\nname = \"All staff\"\n\n\
         [[groups]]\ncompany = 1\ngroup_id = \"b5b1f3c0-1d2e-4f30-8a41-5b6c7d8e9f01\"\n\
         when = {{ department = \"Clinical\", role = \"*Lead*\" }}\n"
    );
    let s = Settings::parse(&text, Path::new("x.toml")).unwrap();
    assert_eq!(
        s.policy.on_suspend_groups,
        crate::mapping::groups::OnSuspendGroups::Remove
    );
    assert!(!s.policy.groups.is_empty());
    let plain = Settings::parse(MINIMAL, Path::new("x.toml")).unwrap();
    assert!(plain.policy.groups.is_empty(), "no rules: no memberships");
    assert_eq!(
        plain.policy.on_suspend_groups,
        crate::mapping::groups::OnSuspendGroups::Keep
    );
}

#[test]
fn a_bad_group_rule_is_refused_with_its_position() {
    let text = format!(
        "{MINIMAL}\n[[groups]]\nname = \"All staff\"\n\n[[groups]]\ngroup_id = \"b5b1f3c0-1d2e-4f30-8a41-5b6c7d8e9f01\"\n"
    );
    let err = Settings::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[[groups]] rule 2: "), "{err}");
    assert!(err.contains("needs a company"), "{err}");
}
