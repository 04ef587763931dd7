//! Microsoft's own Graph SDK for Python (`msgraph-sdk`, `azure-identity`,
//! pinned in `requirements.txt`) against the emulator over https: a second,
//! independent reading of Microsoft's docs beside the daemon's. The script
//! (`graph_sdk.py`) takes a token, creates, reads, filters, pages, patches,
//! batches and deletes users, meets a duplicate and a 429; this side checks
//! what reached the emulator, not only the script's word.
// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]
mod python;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use entra_daemon::emulator::{EmulatorControl, LoggedRequest, RunningEmulator, SeedUser};
use entra_daemon::tools::world::{self, tenant, World};
use serde_json::Value;

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const DOMAIN: &str = "contoso.com";
const CLIENT_ID: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const SECRET: &str = "sdk~Secret.Value-42";
const PASSWORD: &str = "xWwvJ]6NMw+bWH-d";
/// Seeded users the script pages through five at a time: three pages.
const PAGING_USERS: usize = 12;
/// The whole script, SDK import included, takes a few seconds.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn microsofts_python_sdk_works_against_the_emulator() {
    let provisioned = tokio::task::spawn_blocking(python::interpreter).await;
    // A provisioning failure fails the test with its own message.
    let provisioned = provisioned.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let Some(python) = provisioned else {
        return; // outside CI with no package index: the reason was printed
    };
    let config = World::builder()
        .client_id(CLIENT_ID)
        .client_secret(SECRET)
        .tenant(tenant(TENANT, DOMAIN))
        .emulator_config();
    let emu = world::serve_tls(config).await.expect("emulator over https");
    assert!(emu.authority_host().starts_with("https://127.0.0.1:"));
    let ctl = emu.control();
    for n in 1..=PAGING_USERS {
        let user = SeedUser {
            user_principal_name: format!("paging{n:02}@{DOMAIN}"),
            display_name: Some(format!("Paging {n:02}")),
            ..SeedUser::default()
        };
        ctl.seed_user(TENANT, user).expect("seed");
    }
    let stdout = run_script(&python, &emu).await;
    let steps = steps(&stdout);
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "token",
            "create",
            "get",
            "filter",
            "patch",
            "paging",
            "duplicate",
            "throttled",
            "batch_absolute_urls",
            "batch",
            "delete",
            "done"
        ]
    );
    let by_step: HashMap<&str, &Value> = names.iter().copied().zip(&steps).collect();
    let ada = by_step["create"]["id"].as_str().unwrap().to_owned();
    let grace = by_step["batch"]["created"].as_str().unwrap().to_owned();
    let log = ctl.requests();
    tokens_were_taken_and_kept(&log);
    users_calls_arrived(&log, &ada);
    throttled_then_served(&log, &ada);
    batches_arrived(&log, &ada);
    directory_shows_it(&ctl, &ada, &grace);
    assert_eq!(by_step["duplicate"]["status"], 400);
}

/// Runs `graph_sdk.py` against `emu`, trusting its CA: the script's
/// stdout, once it exited 0 having printed no secret.
async fn run_script(python: &Path, emu: &RunningEmulator) -> String {
    let scratch = tempfile::tempdir().expect("scratch");
    let ca = scratch.path().join("emulator-ca.pem");
    std::fs::write(&ca, emu.ca_pem().expect("a TLS emulator has a CA")).expect("write CA");
    let run = tokio::process::Command::new(python)
        .arg(python::here().join("graph_sdk.py"))
        .env("EMULATOR_URL", emu.authority_host())
        .env("TENANT_ID", TENANT)
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", SECRET)
        .env("DOMAIN", DOMAIN)
        .env("PASSWORD", PASSWORD)
        .env("PAGING_PREFIX", "Paging ")
        .env("PAGING_USERS", PAGING_USERS.to_string())
        .env("SSL_CERT_FILE", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .expect("the SDK script finished in time")
        .expect("run the SDK script");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the SDK script failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let secrets = emu.control().secrets_seen();
    for secret in secrets.iter().map(String::as_str).chain([SECRET, PASSWORD]) {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    stdout
}

/// The script's JSON lines.
fn steps(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `(key, value)` pairs of a logged query, percent-decoded.
fn query(r: &LoggedRequest) -> HashMap<String, String> {
    let q = r.query.as_deref().unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn graph<'a>(log: &'a [LoggedRequest], method: &str, path: &str) -> Vec<&'a LoggedRequest> {
    log.iter()
        .filter(|r| r.method == method && r.path == path && r.batch_seq.is_none())
        .collect()
}

/// azure-identity read `expires_in` and kept its tokens: one for the
/// script's own `get_token`, one for the Graph client (kiota asks for a
/// CAE-capable token, `xms_cc` = `CP1`, which azure-identity caches
/// apart), and none after that; both with the app's credentials.
fn tokens_were_taken_and_kept(log: &[LoggedRequest]) {
    let tokens = graph(log, "POST", &format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(tokens.len(), 2, "{tokens:#?}");
    for t in &tokens {
        assert_eq!(t.status, 200);
        assert_eq!(t.client_id.as_deref(), Some(CLIENT_ID));
        assert_eq!(t.body.as_ref().unwrap()["client_secret"], "***");
    }
    let claims = |t: &LoggedRequest| t.body.as_ref().unwrap().get("claims").cloned();
    assert_eq!(claims(tokens[0]), None);
    let cae: Value = serde_json::from_str(claims(tokens[1]).unwrap().as_str().unwrap()).unwrap();
    assert_eq!(cae["access_token"]["xms_cc"]["values"][0], "CP1");
    assert!(
        tokens[1].seq
            < log
                .iter()
                .find(|r| r.path.starts_with("/v1.0"))
                .unwrap()
                .seq
    );
    let graph_calls = log.iter().filter(|r| r.path.starts_with("/v1.0"));
    assert!(graph_calls.clone().count() > 10);
    for r in graph_calls {
        assert_eq!(r.tenant.as_deref(), Some(TENANT), "{r:#?}");
    }
}

fn users_calls_arrived(log: &[LoggedRequest], ada: &str) {
    let creates = graph(log, "POST", "/v1.0/users");
    let statuses: Vec<u16> = creates.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 400], "the create, then the duplicate");
    for c in &creates {
        let body = c.body.as_ref().unwrap();
        assert_eq!(body["userPrincipalName"], format!("ada@{DOMAIN}"));
        assert_eq!(body["passwordProfile"]["password"], "***");
    }
    let patches = graph(log, "PATCH", &format!("/v1.0/users/{ada}"));
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].status, 204);
    assert_eq!(patches[0].body.as_ref().unwrap()["jobTitle"], "Analyst");

    let lists = graph(log, "GET", "/v1.0/users");
    let filter = |r: &&&LoggedRequest| query(r).get("$filter").cloned().unwrap_or_default();
    let by_upn: Vec<_> = lists
        .iter()
        .filter(|r| filter(r) == format!("userPrincipalName eq 'ada@{DOMAIN}'"))
        .collect();
    assert_eq!(by_upn.len(), 1);
    assert_eq!(by_upn[0].status, 200);
    let pages: Vec<_> = lists
        .iter()
        .filter(|r| filter(r).starts_with("startswith(displayName"))
        .collect();
    let shape: Vec<(u16, Option<String>, bool)> = pages
        .iter()
        .map(|r| {
            let q = query(r);
            (
                r.status,
                q.get("$top").cloned(),
                q.contains_key("$skiptoken"),
            )
        })
        .collect();
    let top = Some("5".to_owned());
    assert_eq!(
        shape,
        [
            (200, top.clone(), false),
            (200, top.clone(), true),
            (200, top, true)
        ],
        "one request, then two @odata.nextLink pages"
    );
}

/// The injected 429, then the SDK's own retry once `Retry-After` passed.
fn throttled_then_served(log: &[LoggedRequest], ada: &str) {
    let reads = graph(log, "GET", &format!("/v1.0/users/{ada}"));
    let at = reads
        .iter()
        .position(|r| r.status == 429)
        .expect("a 429 reached the emulator");
    assert_eq!(reads[at].fault.as_deref(), Some("status 429"));
    let retry = reads.get(at + 1).expect("a retry after the 429");
    assert_eq!(retry.status, 200);
    let waited = (retry.time - reads[at].time).to_std().unwrap();
    // Retry-After said 1 s; kiota's own backoff would wait 3 s or more.
    let obeyed = Duration::from_millis(900)..Duration::from_millis(2500);
    assert!(obeyed.contains(&waited), "retried after {waited:?}");
    let between = log
        .iter()
        .filter(|r| r.seq > reads[at].seq && r.seq < retry.seq && r.path.starts_with("/v1.0"));
    assert_eq!(between.count(), 0, "nothing else was sent while waiting");
}

/// The SDK's batch as shipped (absolute item URLs) refused whole; with
/// relative URLs, both items run.
fn batches_arrived(log: &[LoggedRequest], ada: &str) {
    let batches = graph(log, "POST", "/v1.0/$batch");
    let statuses: Vec<u16> = batches.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 200]);
    let items: Vec<(&str, &str, &str, u16)> = log
        .iter()
        .filter(|r| r.batch_seq == Some(batches[1].seq))
        .map(|r| {
            let id = r.batch_item_id.as_deref().unwrap_or("");
            (id, r.method.as_str(), r.path.as_str(), r.status)
        })
        .collect();
    let read = format!("/v1.0/users/{ada}");
    assert_eq!(
        items,
        [
            ("create", "POST", "/v1.0/users", 201),
            ("read", "GET", read.as_str(), 200)
        ]
    );
    assert!(log.iter().all(|r| r.batch_seq != Some(batches[0].seq)));
}

fn directory_shows_it(ctl: &EmulatorControl, ada: &str, grace: &str) {
    let stored = ctl.find_user(TENANT, &format!("ada@{DOMAIN}")).unwrap();
    assert_eq!(stored.id, ada);
    assert!(stored.created_via_graph);
    assert_eq!(stored.job_title.as_deref(), Some("Analyst"));
    assert_eq!(stored.department.as_deref(), Some("Engines"));
    assert!(ctl.find_user(TENANT, &format!("grace@{DOMAIN}")).is_none());
    let users = ctl.users(TENANT);
    let g = users.iter().find(|u| u.id == grace).expect("grace is kept");
    assert!(g.deleted, "deleted users stay restorable for 30 days");
    assert_eq!(ctl.user_count(TENANT), PAGING_USERS + 1);
    let deletes = ctl
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path == format!("/v1.0/users/{grace}"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(deletes, [204]);
}
