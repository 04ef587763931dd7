//! Names and employee data on users in the emulator: set on create and
//! PATCH with Graph's validation, returned on `$select`, the leave date's
//! own permission, and `$filter` on employeeId.

use crate::groups::{config_with, seed_user};
use crate::helpers::*;
use serde_json::{json, Value};

const EMPLOYEE: &str = "id,givenName,surname,employeeId,employeeType,companyName,mobilePhone,businessPhones,employeeHireDate,employeeLeaveDateTime";
/// What an HR sync that also sets leave dates is granted.
const LIFECYCLE: &[&str] = &["User.ReadWrite.All", "User-LifeCycleInfo.ReadWrite.All"];

fn person(alias: &str) -> Value {
    let mut u = new_user(alias, "contoso.com");
    for (k, v) in [
        ("givenName", json!("Ann")),
        ("surname", json!("Smith")),
        ("employeeId", json!("E-0001")),
        ("employeeType", json!("Employee")),
        ("companyName", json!("Contoso Ltd")),
        ("mobilePhone", json!("+31 6 1234 5678")),
        ("businessPhones", json!(["+31 20 123 4567"])),
        ("employeeHireDate", json!("2024-03-01T08:00:00+01:00")),
    ] {
        u[k] = v;
    }
    u
}

#[tokio::test]
async fn employee_data_is_stored_and_returned_only_when_selected() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.post("/users", &person("ann")).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    // The default properties include the names and phones, not the rest.
    assert_eq!(v["givenName"], "Ann");
    assert_eq!(v["businessPhones"], json!(["+31 20 123 4567"]));
    assert!(v.get("employeeId").is_none(), "{v}");
    let (_, _, v) = g.get(&format!("/users/{id}")).await;
    for hidden in [
        "employeeId",
        "employeeType",
        "companyName",
        "employeeHireDate",
    ] {
        assert!(v.get(hidden).is_none(), "{hidden}: {v}");
    }
    let (s, _, v) = g.get(&format!("/users/{id}?$select={EMPLOYEE}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["surname"], "Smith");
    assert_eq!(v["employeeId"], "E-0001");
    assert_eq!(v["employeeType"], "Employee");
    assert_eq!(v["companyName"], "Contoso Ltd");
    assert_eq!(v["mobilePhone"], "+31 6 1234 5678");
    // Kept in UTC, as Graph answers it.
    assert_eq!(v["employeeHireDate"], "2024-03-01T07:00:00Z");
    assert_eq!(v["employeeLeaveDateTime"], Value::Null);

    let patch = json!({
        "givenName": "Anna", "surname": null, "employeeId": "E-0002",
        "companyName": "Fabrikam", "businessPhones": [], "employeeHireDate": null
    });
    assert_eq!(g.patch(&format!("/users/{id}"), &patch).await.0, 204);
    let (_, _, v) = g.get(&format!("/users/{id}?$select={EMPLOYEE}")).await;
    assert_eq!(v["givenName"], "Anna");
    assert_eq!(v["surname"], Value::Null);
    assert_eq!(v["employeeId"], "E-0002");
    assert_eq!(v["companyName"], "Fabrikam");
    assert_eq!(v["businessPhones"], json!([]));
    assert_eq!(v["employeeHireDate"], Value::Null);
}

#[tokio::test]
async fn lengths_phones_and_dates_are_validated_as_graph_does() {
    let emu = start(config()).await;
    let id = seed_user(&emu, "ann");
    let g = Graph::new(&emu, TENANT_A).await;
    let path = format!("/users/{id}");
    let refused = |body: Value, needle: &'static str| {
        let (g, path) = (&g, &path);
        async move {
            let (s, _, v) = g.patch(path, &body).await;
            assert_eq!(s, 400, "{body} -> {v}");
            assert!(error_message(&v).contains(needle), "{body} -> {v}");
        }
    };
    refused(json!({"employeeId": "E".repeat(17)}), "'employeeId'").await;
    refused(json!({"givenName": "g".repeat(65)}), "'givenName'").await;
    refused(json!({"surname": "s".repeat(65)}), "'surname'").await;
    refused(json!({"companyName": "c".repeat(65)}), "'companyName'").await;
    refused(json!({"businessPhones": ["1", "2"]}), "'businessPhones'").await;
    refused(json!({"employeeId": 42}), "'Edm.String'").await;
    for bad in [
        "2024-13-01T00:00:00Z",
        "yesterday",
        "2024-03-01",
        "2024-03-01T08:00:00",
    ] {
        refused(
            json!({"employeeHireDate": bad}),
            "to the expected type 'Edm.DateTimeOffset'",
        )
        .await;
    }
    let (_, _, v) = g.patch(&path, &json!({"employeeHireDate": "soon"})).await;
    assert_eq!(
        error_message(&v),
        "Cannot convert the literal 'soon' to the expected type 'Edm.DateTimeOffset'."
    );
    // Nothing of a refused write was kept; the limits themselves are fine.
    let user = emu.control().users(TENANT_A).remove(0);
    assert_eq!(user.employee_id, None);
    let ok = json!({"employeeId": "E".repeat(16), "givenName": "g".repeat(64)});
    assert_eq!(g.patch(&path, &ok).await.0, 204);
    let user = emu.control().users(TENANT_A).remove(0);
    assert_eq!(user.employee_id.as_deref(), Some("EEEEEEEEEEEEEEEE"));
}

#[tokio::test]
async fn the_leave_date_needs_the_lifecycle_permission_to_be_written() {
    let emu = start(config()).await;
    let id = seed_user(&emu, "ann");
    let g = Graph::new(&emu, TENANT_A).await;
    let path = format!("/users/{id}");
    let body = json!({"jobTitle": "Clerk", "employeeLeaveDateTime": "2025-09-30T23:59:59Z"});
    let (s, _, v) = g.patch(&path, &body).await;
    assert_eq!(
        (s, error_code(&v)),
        (403, "Authorization_RequestDenied"),
        "{v}"
    );
    // The whole request is refused, clearing the date included.
    assert_eq!(
        g.patch(&path, &json!({"employeeLeaveDateTime": null}))
            .await
            .0,
        403
    );
    let mut create = new_user("bob", "contoso.com");
    create["employeeLeaveDateTime"] = json!("2025-09-30T23:59:59Z");
    assert_eq!(g.post("/users", &create).await.0, 403);
    let ctl = emu.control();
    assert_eq!(ctl.user_count(TENANT_A), 1);
    assert_eq!(ctl.users(TENANT_A)[0].job_title, None);

    let emu = start(config_with(LIFECYCLE)).await;
    let id = seed_user(&emu, "ann");
    let g = Graph::new(&emu, TENANT_A).await;
    let path = format!("/users/{id}");
    assert_eq!(g.patch(&path, &body).await.0, 204);
    let (_, _, v) = g
        .get(&format!("{path}?$select=employeeLeaveDateTime,jobTitle"))
        .await;
    assert_eq!(v["employeeLeaveDateTime"], "2025-09-30T23:59:59Z");
    assert_eq!(v["jobTitle"], "Clerk");
    let (s, _, v) = g
        .patch(&path, &json!({"employeeLeaveDateTime": "30/09/2025"}))
        .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn the_leave_date_reads_as_null_without_a_lifecycle_role() {
    let emu = start(config_with(&[
        "User.ReadWrite.All",
        "User-LifeCycleInfo.Read.All",
    ]))
    .await;
    let id = seed_user(&emu, "ann");
    let ctl = emu.control();
    ctl.edit_user(
        TENANT_A,
        &id,
        json!({"employeeLeaveDateTime": "2025-01-31T17:00:00Z"}),
    )
    .expect("leave date");
    let path = format!("/users/{id}?$select=id,employeeLeaveDateTime");
    let g = Graph::new(&emu, TENANT_A).await;
    let (_, _, v) = g.get(&path).await;
    assert_eq!(v["employeeLeaveDateTime"], "2025-01-31T17:00:00Z");
    // A token issued after the admin withdrew the role sees null, not a 403.
    ctl.set_permissions(TENANT_A, vec!["User.ReadWrite.All".into()])
        .expect("permissions");
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.get(&path).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["employeeLeaveDateTime"], Value::Null);
    let (_, _, v) = g.get("/users?$select=id,employeeLeaveDateTime").await;
    assert_eq!(v["value"][0]["employeeLeaveDateTime"], Value::Null);
    assert_eq!(
        ctl.users(TENANT_A)[0].other_properties["employeeLeaveDateTime"],
        "2025-01-31T17:00:00Z"
    );
}

#[tokio::test]
async fn users_are_found_by_employee_id() {
    let emu = start(config()).await;
    let ctl = emu.control();
    for (alias, eid) in [("ann", "E-1"), ("bob", "E-2"), ("cat", "E-10")] {
        let id = seed_user(&emu, alias);
        ctl.edit_user(TENANT_A, &id, json!({"employeeId": eid}))
            .expect("employeeId");
    }
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g
        .get("/users?$filter=employeeId eq 'e-1'&$select=userPrincipalName,employeeId")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["value"],
        json!([{"userPrincipalName": "ann@contoso.com", "employeeId": "E-1"}])
    );
    let (_, _, v) = g
        .get("/users?$filter=employeeId in ('E-2', 'E-10')&$select=id")
        .await;
    assert_eq!(v["value"].as_array().map(Vec::len), Some(2), "{v}");
}
