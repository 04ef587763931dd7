//! `$batch` envelope rules Graph enforces on the whole batch
//! (concepts/json-batching.md): a write item carries a body and its
//! `Content-Type`, and `dependsOn` names only earlier items.
use crate::helpers::*;
use serde_json::{json, Value};

async fn user_id(emu: &entra_daemon::emulator::RunningEmulator) -> String {
    emu.control()
        .seed_user(
            TENANT_A,
            entra_daemon::emulator::SeedUser {
                user_principal_name: "rita@contoso.com".into(),
                ..Default::default()
            },
        )
        .expect("seed")
}

fn refusal(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_bodyless_write_item_fails_the_whole_batch_and_an_empty_body_passes() {
    let emu = start(config()).await;
    let id = user_id(&emu).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let revoke = format!("/users/{id}/revokeSignInSessions");
    let bare = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{id}")},
        {"id": "2", "method": "POST", "url": revoke},
    ]});
    let (s, _, v) = g.post("/$batch", &bare).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(error_code(&v), "BadRequest");
    assert!(
        refusal(&v).contains("does not contain Content-Type header or body"),
        "{v}"
    );
    let no_type = json!({"requests": [{"id": "1", "method": "POST", "url": revoke, "body": {}}]});
    let (s, _, v) = g.post("/$batch", &no_type).await;
    assert_eq!(s, 400, "a body without its Content-Type: {v}");
    let no_body = json!({"requests": [{"id": "1", "method": "POST", "url": revoke,
        "headers": {"Content-Type": "application/json"}}]});
    let (s, _, v) = g.post("/$batch", &no_body).await;
    assert_eq!(s, 400, "a Content-Type without a body: {v}");
    let right = json!({"requests": [{"id": "1", "method": "POST", "url": revoke,
        "headers": {"Content-Type": "application/json"}, "body": {}}]});
    let (s, _, v) = g.post("/$batch", &right).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["responses"][0]["status"], 200, "{v}");
    // DELETE and GET need neither.
    let del = json!({"requests": [{"id": "1", "method": "DELETE", "url": format!("/users/{id}")}]});
    let (s, _, v) = g.post("/$batch", &del).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["responses"][0]["status"], 204, "{v}");
}

#[tokio::test]
async fn depends_on_may_name_only_an_earlier_item() {
    let emu = start(config()).await;
    let id = user_id(&emu).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let get = format!("/users/{id}");
    let forward = json!({"requests": [
        {"id": "1", "method": "GET", "url": get, "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": get},
    ]});
    let (s, _, v) = g.post("/$batch", &forward).await;
    assert_eq!(s, 400, "a forward reference: {v}");
    let backward = json!({"requests": [
        {"id": "1", "method": "GET", "url": get},
        {"id": "2", "method": "GET", "url": get, "dependsOn": ["1"]},
    ]});
    let (s, _, v) = g.post("/$batch", &backward).await;
    assert_eq!(s, 200, "{v}");
}
