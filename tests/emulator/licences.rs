//! Group-based licensing in the emulator: a group's licences
//! (`assignLicense`), what Entra made of them on each member
//! (`licenseAssignmentStates`, only on `$select`), `subscribedSkus`, and
//! the units: a member beyond them is in error until the group is
//! reprocessed, a disabled account keeps its licence, a deleted one frees it.

use crate::groups::{config_with, seed_group, seed_user};
use crate::helpers::*;
use entra_daemon::emulator::{RunningEmulator, SeedSku};
use serde_json::{json, Value};

const E3: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
const LICENSING: &[&str] = &[
    "User.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "LicenseAssignment.ReadWrite.All",
    "Organization.Read.All",
];

fn buy(emu: &RunningEmulator, units: u32) {
    emu.control()
        .set_sku(
            TENANT_A,
            SeedSku {
                sku_id: E3.into(),
                sku_part_number: "ENTERPRISEPACK".into(),
                units,
            },
        )
        .expect("sku");
}

async fn states(g: &Graph, user: &str) -> Value {
    let (s, _, v) = g
        .get(&format!("/users/{user}?$select=id,licenseAssignmentStates"))
        .await;
    assert_eq!(s, 200, "{v}");
    v["licenseAssignmentStates"].clone()
}

/// The one state of E3 on the user: (state, error).
async fn e3(g: &Graph, user: &str) -> (String, Value) {
    let list = states(g, user).await;
    let list = list.as_array().expect("a collection");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["skuId"], E3);
    (
        list[0]["state"].as_str().unwrap().to_string(),
        list[0]["error"].clone(),
    )
}

async fn consumed(g: &Graph) -> Value {
    let (s, _, v) = g.get("/subscribedSkus").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["value"][0]["skuPartNumber"], "ENTERPRISEPACK");
    json!([
        v["value"][0]["consumedUnits"],
        v["value"][0]["prepaidUnits"]["enabled"]
    ])
}

#[tokio::test]
async fn a_licensed_group_gives_its_members_the_units_there_are_and_the_rest_count_violation() {
    let emu = start(config_with(LICENSING)).await;
    buy(&emu, 2);
    let people: Vec<String> = ["ann", "bob", "cy"]
        .iter()
        .map(|a| seed_user(&emu, a))
        .collect();
    let group = seed_group(&emu, "Licence E3", people.clone());
    let g = Graph::new(&emu, TENANT_A).await;

    let body = json!({"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []});
    let (s, _, v) = g
        .post(&format!("/groups/{group}/assignLicense"), &body)
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["id"], group, "the target group object");
    let (s, _, v) = g
        .get(&format!("/groups/{group}?$select=assignedLicenses"))
        .await;
    assert_eq!(
        (s, v["assignedLicenses"][0]["skuId"].clone()),
        (200, json!(E3))
    );

    let list = states(&g, &people[0]).await;
    assert_eq!(list[0]["assignedByGroup"], group);
    assert_eq!(list[0]["error"], Value::Null, "null when assigned");
    assert_eq!((e3(&g, &people[1]).await.0.as_str()), "Active");
    assert_eq!(
        e3(&g, &people[2]).await,
        ("Error".into(), json!("CountViolation"))
    );
    assert_eq!(consumed(&g).await, json!([2, 2]));
    // The listing carries it too; neither read shows it unselected.
    let (_, _, v) = g.get("/users?$select=id,licenseAssignmentStates").await;
    let errors: Vec<&Value> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["licenseAssignmentStates"][0]["state"] == "Error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["id"], people[2].as_str());
    let (_, _, v) = g.get(&format!("/users/{}", people[2])).await;
    assert!(v.get("licenseAssignmentStates").is_none(), "{v}");
    let (_, _, v) = g.get("/users").await;
    assert!(v["value"][0].get("licenseAssignmentStates").is_none());

    // A licence is the users', not the group's: one who leaves frees it,
    // but the one in error waits for the group to be reprocessed.
    let leave = format!("/groups/{group}/members/{}/$ref", people[0]);
    assert_eq!(g.delete(&leave).await.0, 204);
    assert_eq!(states(&g, &people[0]).await, json!([]));
    assert_eq!(consumed(&g).await, json!([1, 2]));
    assert_eq!(e3(&g, &people[2]).await.0, "Error");
    emu.control()
        .set_sku_units(TENANT_A, E3, 2)
        .expect("reprocess");
    assert_eq!(e3(&g, &people[2]).await, ("Active".into(), Value::Null));
    assert_eq!(consumed(&g).await, json!([2, 2]));
}

#[tokio::test]
async fn a_disabled_account_keeps_its_licence_and_a_deleted_one_frees_it() {
    let emu = start(config_with(LICENSING)).await;
    buy(&emu, 1);
    let (ann, bob) = (seed_user(&emu, "ann"), seed_user(&emu, "bob"));
    let group = seed_group(&emu, "Licence E3", vec![ann.clone()]);
    let ctl = emu.control();
    ctl.assign_group_licence(TENANT_A, &group, E3)
        .expect("licence");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(e3(&g, &ann).await.0, "Active");

    let off = json!({"accountEnabled": false});
    assert_eq!(g.patch(&format!("/users/{ann}"), &off).await.0, 204);
    let refs = format!("/groups/{group}/members/$ref");
    let bob_ref = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{bob}")});
    assert_eq!(g.post(&refs, &bob_ref).await.0, 204);
    assert_eq!(e3(&g, &ann).await.0, "Active", "disabled, still licensed");
    assert_eq!(e3(&g, &bob).await.1, json!("CountViolation"));
    assert_eq!(ctl.consumed_units(TENANT_A, E3).unwrap(), 1);

    assert_eq!(g.delete(&format!("/users/{ann}")).await.0, 204);
    assert_eq!(ctl.consumed_units(TENANT_A, E3).unwrap(), 0, "freed");
    let bob_states = ctl.licence_states(TENANT_A, &bob).unwrap();
    assert_eq!(bob_states[0].error.as_deref(), Some("CountViolation"));
    ctl.set_sku_units(TENANT_A, E3, 1).expect("reprocess");
    assert_eq!(e3(&g, &bob).await.0, "Active");
}

#[tokio::test]
async fn licences_are_read_only_on_a_user_and_assign_license_needs_its_permission() {
    let emu = start(config_with(LICENSING)).await;
    buy(&emu, 5);
    let ann = seed_user(&emu, "ann");
    let group = seed_group(&emu, "Licence E3", vec![ann.clone()]);
    let g = Graph::new(&emu, TENANT_A).await;
    for prop in ["licenseAssignmentStates", "assignedLicenses"] {
        let (s, _, v) = g
            .patch(&format!("/users/{ann}"), &json!({ prop: [] }))
            .await;
        assert_eq!((s, error_code(&v)), (400, "Request_BadRequest"));
        assert_eq!(
            error_message(&v),
            format!("Property '{prop}' is read-only and cannot be set.")
        );
    }
    let path = format!("/groups/{group}/assignLicense");
    let unknown = "11111111-2222-4333-8444-555555555555";
    let body = json!({"addLicenses": [{"skuId": unknown}], "removeLicenses": []});
    let (s, _, v) = g.post(&path, &body).await;
    assert_eq!(s, 400);
    assert_eq!(
        error_message(&v),
        format!("License {unknown} does not correspond to a valid company License.")
    );
    assert_eq!(states(&g, &ann).await, json!([]), "nothing assigned");

    let emu = start(config_with(&[
        "User.ReadWrite.All",
        "GroupMember.ReadWrite.All",
    ]))
    .await;
    buy(&emu, 5);
    let group = seed_group(&emu, "Licence E3", vec![]);
    let g = Graph::new(&emu, TENANT_A).await;
    let body = json!({"addLicenses": [{"skuId": E3}], "removeLicenses": []});
    let (s, _, v) = g
        .post(&format!("/groups/{group}/assignLicense"), &body)
        .await;
    assert_eq!((s, error_code(&v)), (403, "Authorization_RequestDenied"));
    assert_eq!(
        g.get("/subscribedSkus").await.0,
        403,
        "Organization.Read.All"
    );
}
