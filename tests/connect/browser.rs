//! A real browser through the connect flow: headless Chromium, driven by
//! chromedriver's W3C WebDriver HTTP API, opens the signed Connect link,
//! signs in on the emulator's consent page, clicks Accept (then, for a
//! second company, Cancel) and lands on Plumm's Store. Screenshots of each
//! page are saved for a person to look at.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::*;

/// The W3C WebDriver web element identifier key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Plumm's Store page the browser returns to.
async fn store() -> String {
    let app = axum::Router::new().route(
        "/store/apps/entra",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let status = q.get("status").map(String::as_str).unwrap_or_default();
            Html(format!(
                "<!doctype html><html><head><title>Plumm Store</title></head><body>\
                 <h1>Plumm &middot; Store &middot; Microsoft Entra ID</h1>\
                 <p id=\"status\">{}</p><p id=\"message\">{}</p></body></html>",
                if status == "connected" {
                    "Connected".to_string()
                } else {
                    esc(&format!(
                        "{status}: {}",
                        q.get("reason").cloned().unwrap_or_default()
                    ))
                },
                esc(q.get("message").map(String::as_str).unwrap_or_default())
            ))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/store/apps/entra")
}

struct Driver {
    child: Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut driver = Driver {
            child,
            http,
            session: String::new(),
            base,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await;
            if let Ok(r) = ready {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1000,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v = driver.call("POST", "/session", Some(caps)).await;
        driver.session = v["sessionId"].as_str().expect("a session").to_string();
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "POST" => self.http.post(url).json(&body.unwrap_or(json!({}))),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        assert!(
            v["value"]["error"].is_null(),
            "webdriver {method} {path}: {v}"
        );
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call("GET", &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})))
            .await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn wait_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url().await;
            if url.starts_with(prefix) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser is at {url}, not {prefix}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn screenshot(&self, dir: &Path, name: &str) {
        let v = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("png");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("save the screenshot");
        println!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_connects_through_the_consent_page_and_cancel_returns_declined() {
    let chromium = find_binary(&["chromium", "chromium-browser"]);
    let chromedriver = find_binary(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install Debian's chromium and chromium-driver"
        );
        println!(
            "SKIPPED the browser test: chromium or chromedriver is not installed \
             (apt-get install chromium chromium-driver); CI installs and runs it"
        );
        return;
    };
    let store_url = store().await;
    let mut app = ConnectApp::spawn_with(Options {
        store_return_url: store_url.clone(),
        ..Options::default()
    })
    .await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("connect-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let browser = Driver::start(&chromium, &chromedriver, profile.path()).await;

    // Accept: the company connects and its people appear in Entra.
    browser
        .goto(&app.connect_url(CONTOSO, "store.admin@plumm.example"))
        .await;
    let consent = browser.wait_url(&app.emu.authority_host()).await;
    assert!(
        consent.contains("/organizations/v2.0/adminconsent"),
        "{consent}"
    );
    browser.type_into("#account", CONTOSO_ADMIN).await;
    browser.screenshot(&shots, "1-consent-page.png").await;
    browser.click("#accept").await;
    let landed = browser.wait_url(&store_url).await;
    assert!(landed.contains("status=connected"), "{landed}");
    assert_eq!(browser.text("#status").await, "Connected");
    browser.screenshot(&shots, "2-store-connected.png").await;
    app.converged().await;
    wait_for("Contoso's people in Entra", Duration::from_secs(10), || {
        app.users(T1).len() == 3
    })
    .await;

    // Cancel: back in the Store with "declined", nothing connected.
    browser
        .goto(&app.connect_url(FABRIKAM, "store.admin@plumm.example"))
        .await;
    browser.wait_url(&app.emu.authority_host()).await;
    browser.type_into("#account", FABRIKAM_ADMIN).await;
    browser.click("#cancel").await;
    let landed = browser.wait_url(&store_url).await;
    assert!(landed.contains("reason=declined"), "{landed}");
    assert!(browser.text("#status").await.contains("declined"));
    browser.screenshot(&shots, "3-store-declined.png").await;
    assert!(app.users(T2).is_empty());
    println!("screenshots in {}", shots.display());
    let _ = browser.call("DELETE", "", None).await;
    app.stop().await;
}
