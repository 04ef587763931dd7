//! The benchmark's baselines: the simplest client that does the same job.
//! One request at a time, a lookup before each write, no pacing, and a
//! retry only on 429 (after its Retry-After). With `workers` above one it
//! is the client an SDK user writes: that many of those loops at once
//! over one queue (`Task.WhenAll`, `asyncio.gather`), still obeying
//! Retry-After and pacing nothing. It runs as its own process
//! (`entra-daemon bench --naive-worker`) so its memory and CPU are its own.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::configuration::Settings;
use crate::domain::{CompanyId, TenantId};
use crate::graph::{request, GraphClient, GraphRequest, TokenProvider};
use crate::mapping::{desired_user, UpnSource};
use crate::plan::props;
use crate::store::PlummDb;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct NaiveStats {
    pub done: u64,
    pub requests: u64,
    pub throttled: u64,
    pub errors: u64,
    pub seconds: f64,
    pub peak_rss_kib: u64,
    pub cpu_seconds: f64,
}

#[derive(Clone)]
struct Naive {
    http: reqwest::Client,
    tokens: Arc<TokenProvider>,
    base: String,
    tenant: TenantId,
    stats: NaiveStats,
}

impl Naive {
    async fn send(&mut self, req: &GraphRequest) -> anyhow::Result<(u16, Option<Value>)> {
        loop {
            let token = self.tokens.token(&self.tenant).await?;
            let mut b = self
                .http
                .request(
                    req.method.clone(),
                    format!("{}{}", self.base, req.relative_url()),
                )
                .bearer_auth(token.expose_secret());
            if let Some(body) = req.wire_body() {
                b = b.json(&body);
            }
            let resp = b.send().await?;
            self.stats.requests += 1;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok());
            let body = resp.json::<Value>().await.ok();
            if status == 429 {
                self.stats.throttled += 1;
                tokio::time::sleep(Duration::from_secs_f64(
                    retry_after.unwrap_or(1.0).min(60.0),
                ))
                .await;
                continue;
            }
            return Ok((status, body));
        }
    }

    /// Lookup, then create or update: two requests per change.
    async fn converge(
        &mut self,
        settings: &Settings,
        user: &crate::domain::PlummUser,
    ) -> anyhow::Result<()> {
        let Ok(desired) = desired_user(user, &settings.policy.mapping, UpnSource::EmailDomain)
        else {
            self.stats.errors += 1;
            return Ok(());
        };
        let lookup =
            request::find_users_by("userPrincipalName", &desired.user_principal_name, &["id"]);
        let (_, body) = self.send(&lookup).await?;
        let id = body
            .as_ref()
            .and_then(|b| b.get("value"))
            .and_then(Value::as_array)
            .and_then(|v| v.first())
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let write = match id {
            Some(id) => {
                let changes: Vec<crate::plan::Change> = props(&desired)
                    .into_iter()
                    .map(|(property, new)| crate::plan::Change {
                        property,
                        old: Value::Null,
                        new,
                    })
                    .collect();
                request::update_user(&crate::domain::EntraObjectId(id), &changes)
            }
            None => request::create_user(&desired, crate::engine::password::generate()),
        };
        let (status, _) = self.send(&write).await?;
        if (200..300).contains(&status) {
            self.stats.done += 1;
        } else {
            self.stats.errors += 1;
        }
        Ok(())
    }
}

/// Runs for `seconds`: first the company's initial sync, then (when done)
/// Plumm's outbox in order. With more than one worker, only the initial
/// sync, to its end or `seconds`. Prints its statistics as JSON.
pub async fn worker(
    settings: Settings,
    company: i64,
    tenant: &str,
    seconds: f64,
    workers: usize,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant)?;
    let http = GraphClient::http_client()?;
    let tokens = TokenProvider::new(
        http.clone(),
        settings.entra.authority_host.clone(),
        settings.entra.client_id.clone(),
        settings.client_secret()?,
    );
    let mut naive = Naive {
        http,
        tokens: Arc::new(tokens),
        base: settings
            .entra
            .graph_base_url
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        tenant,
        stats: NaiveStats::default(),
    };
    let plumm = PlummDb::open(&settings.plumm.database)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let users = plumm.company_users(CompanyId(company))?;
    if workers > 1 {
        naive.stats = concurrent(&naive, &settings, users, workers, deadline).await?;
    } else {
        sequential(&mut naive, &settings, &plumm, &users, deadline).await?;
    }
    naive.stats.seconds = start.elapsed().as_secs_f64();
    if let Some((rss, cpu)) = super::rig::process_usage(std::process::id()) {
        naive.stats.peak_rss_kib = rss;
        naive.stats.cpu_seconds = cpu;
    }
    println!("{}", serde_json::to_string(&naive.stats)?);
    Ok(())
}

async fn sequential(
    naive: &mut Naive,
    settings: &Settings,
    plumm: &PlummDb,
    users: &[crate::domain::PlummUser],
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut cursor = plumm.read_outbox(0, 1_000_000)?.last().map_or(0, |r| r.id);
    for u in users {
        if Instant::now() > deadline {
            return Ok(());
        }
        naive.converge(settings, u).await?;
    }
    while Instant::now() < deadline {
        let rows = plumm.read_outbox(cursor, 100)?;
        if rows.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        for r in rows {
            cursor = r.id;
            if let Ok(Some(u)) = plumm.user(r.user_id) {
                naive.converge(settings, &u).await?;
            }
        }
    }
    Ok(())
}

/// `workers` loops taking the next person from one queue until it is
/// empty (or the deadline passes); their statistics added up.
async fn concurrent(
    naive: &Naive,
    settings: &Settings,
    users: Vec<crate::domain::PlummUser>,
    workers: usize,
    deadline: Instant,
) -> anyhow::Result<NaiveStats> {
    let queue = Arc::new(Mutex::new(users.into_iter()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (mut n, settings, queue) = (naive.clone(), settings.clone(), queue.clone());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(u) = next.filter(|_| Instant::now() < deadline) else {
                    return anyhow::Ok(n.stats);
                };
                n.converge(&settings, &u).await?;
            }
        });
    }
    let mut total = NaiveStats::default();
    while let Some(r) = tasks.join_next().await {
        let s = r??;
        total.done += s.done;
        total.requests += s.requests;
        total.throttled += s.throttled;
        total.errors += s.errors;
    }
    Ok(total)
}
