//! Soak: a mixed drain over three tenants (hires, updates, email changes,
//! suspensions, reactivations, deletions, company moves, ids SQLite reuses)
//! while the daemon is `kill -9`ed at random instants and Graph loses the
//! answers of writes it applied. It must end with every account in Plumm's
//! state: no former member enabled, no duplicate, no orphan, nothing lost.
//!
//! CI runs a short one; `SOAK_CHANGES=5000 SOAK_SEED=7 cargo test --release
//! --test sync soak -- --nocapture` runs the long one and prints its figures.
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::*;

const COMPANIES: [(i64, &str, &str); 3] = [
    (CONTOSO, T1, "contoso.com"),
    (FABRIKAM, T2, "fabrikam.com"),
    (NORTHWIND, T3, "northwind.com"),
];

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Plumm's side: one change at a time, as Plumm's app would make them.
struct Driver {
    conn: rusqlite::Connection,
    rng: StdRng,
    next: u64,
}

impl Driver {
    fn people(&self) -> Vec<(i64, i64, String)> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, company_id, email FROM users ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("people")
            .map(Result::unwrap)
            .collect()
    }

    fn run(&mut self, sql: &str, params: impl rusqlite::Params) {
        self.conn.execute(sql, params).expect("plumm write");
    }

    fn hire(&mut self) {
        let (company, _, domain) = COMPANIES[self.rng.gen_range(0..3)];
        self.next += 1;
        let email = format!("p{}@{domain}", self.next);
        self.run(
            "INSERT INTO users (company_id, email, first_name, last_name, role, country)
             VALUES (?1, ?2, 'Soak', 'Person', 'Starter', 'GB')",
            rusqlite::params![company, email],
        );
    }

    /// One random change; returns its name.
    fn change(&mut self) -> &'static str {
        let people = self.people();
        if people.len() < 10 {
            self.hire();
            return "hire";
        }
        let pick = self.rng.gen_range(0..people.len());
        let (id, company, email) = people[pick].clone();
        let roll = self.rng.gen_range(0..100);
        self.next += 1;
        match roll {
            0..=29 => {
                self.hire();
                "hire"
            }
            30..=49 => {
                let role = format!("Role {}", self.next);
                self.run(
                    "UPDATE users SET role = ?1 WHERE id = ?2",
                    rusqlite::params![role, id],
                );
                "update"
            }
            50..=59 => {
                let (_, domain) = email.split_once('@').unwrap_or(("", "contoso.com"));
                let new = format!("p{}@{domain}", self.next);
                self.run(
                    "UPDATE users SET email = ?1 WHERE id = ?2",
                    rusqlite::params![new, id],
                );
                "email"
            }
            60..=71 => {
                self.run("UPDATE users SET status = 'inactive' WHERE id = ?1", [id]);
                "suspend"
            }
            72..=79 => {
                self.run("UPDATE users SET status = 'active' WHERE id = ?1", [id]);
                "reactivate"
            }
            80..=91 => {
                // Half the time the newest person: the next hire reuses the id.
                let victim = if self.rng.gen_bool(0.5) {
                    people.last().map(|p| p.0).unwrap_or(id)
                } else {
                    id
                };
                self.run("DELETE FROM users WHERE id = ?1", [victim]);
                "delete"
            }
            _ => {
                let others: Vec<_> = COMPANIES.iter().filter(|c| c.0 != company).collect();
                let (to, _, domain) = *others[self.rng.gen_range(0..others.len())];
                let new = format!("p{}@{domain}", self.next);
                self.run(
                    "UPDATE users SET company_id = ?1, email = ?2 WHERE id = ?3",
                    rusqlite::params![to, new, id],
                );
                "move"
            }
        }
    }
}

/// Writes whose outcome the daemon did not know when it died.
fn in_doubt(state_db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(state_db).expect("state");
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM create_intents WHERE outcome IS NULL)
              + (SELECT COUNT(*) FROM links WHERE verify_first = 1)",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[tokio::test]
async fn soak_kill_9_and_lost_answers_during_a_mixed_drain_leave_entra_equal_to_plumm() {
    let changes = env_num("SOAK_CHANGES", 400);
    let seed = env_num("SOAK_SEED", 1);
    let rate = env_num("SOAK_RATE", 60).max(1);
    let mut app = TestApp::spawn_with(Options {
        replication_delay_ms: 300,
        lost_answer_rate: 0.03,
        error_rate: 0.01,
        time_scale: 20.0,
        // Soak deprovisions in bulk on purpose: the brake would hold it.
        extra_sync: "max_deprovision_count = 1000000".into(),
        extra_toml: "[pacing]\ntime_scale = 20.0\n".into(),
        ..Options::default()
    })
    .await;
    for (company, tenant, _) in COMPANIES {
        app.connect(company, tenant).await;
    }
    let mut driver = Driver {
        conn: rusqlite::Connection::open(&app.settings.plumm.database).expect("plumm"),
        rng: StdRng::seed_from_u64(seed),
        next: 0,
    };
    driver
        .conn
        .busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");

    // The killer: runs the daemon binary and kill -9s it at random instants.
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let done = done.clone();
        let config = app.config_path.clone();
        let state = app.settings.state.database.clone();
        let log = std::fs::File::create(app.dir.path().join("soak.log")).expect("log");
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
            let (mut kills, mut doubtful) = (0u32, 0u32);
            while !done.load(Ordering::Relaxed) {
                let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
                    .arg("--config")
                    .arg(&config)
                    .arg("run")
                    .stdout(Stdio::null())
                    .stderr(log.try_clone().expect("log"))
                    .kill_on_drop(true)
                    .spawn()
                    .expect("daemon binary");
                tokio::time::sleep(Duration::from_millis(rng.gen_range(150..1200))).await;
                child.start_kill().expect("SIGKILL");
                child.wait().await.expect("reaped");
                kills += 1;
                let n = in_doubt(&state);
                if n > 0 {
                    doubtful += 1;
                }
            }
            (kills, doubtful)
        })
    };

    let started = Instant::now();
    let mut kinds: HashMap<&str, u32> = HashMap::new();
    for _ in 0..changes {
        *kinds.entry(driver.change()).or_default() += 1;
        // Plumm's pace: `SOAK_RATE` changes a second on average, in bursts.
        if driver.rng.gen_bool(0.1) {
            tokio::time::sleep(Duration::from_secs_f64(10.0 / rate as f64)).await;
        }
    }
    let drive = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (kills, doubtful) = killer.await.expect("killer");
    let left_in_doubt = in_doubt(&app.settings.state.database);

    app.start_daemon();
    wait_for_convergence(&app).await;
    let converge = started.elapsed() - drive;
    app.stop_daemon().await;

    let verdict = check(&app, &driver);
    let traffic: Vec<_> = COMPANIES.iter().map(|c| app.control.traffic(c.1)).collect();
    let requests: u64 = traffic.iter().map(|t| t.operations).sum();
    let writes: u64 = traffic.iter().map(|t| t.writes).sum();
    let lost = app
        .control
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("answer lost"))
        .count();
    println!(
        "soak: {changes} changes (seed {seed}) {kinds:?} in {drive:.1?}; {kills} kills, \
         {doubtful} with a write in doubt ({left_in_doubt} in doubt after the last); \
         {requests} Graph operations ({writes} writes, {lost} answers lost after Graph \
         applied them); converged {converge:.1?} after the \
         last change; {verdict:?}"
    );
    assert_eq!(verdict, Verdict::default(), "{verdict:#?}");
    assert!(kills > 0);
}

/// Waits until the outbox is empty and nothing is pending (retries after
/// lost answers and replication waits take longer than a normal test); on
/// a timeout, says what is still pending and why.
async fn wait_for_convergence(app: &TestApp) {
    let state = app.state();
    let plumm = entra_daemon::store::PlummDb::open(&app.settings.plumm.database).expect("plumm");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if plumm.outbox_depth().map(|d| d.0 == 0).unwrap_or(false)
            && state.pending_total().map(|n| n == 0).unwrap_or(false)
        {
            return;
        }
        if Instant::now() > deadline {
            let conn = rusqlite::Connection::open(&app.settings.state.database).expect("state");
            let mut stmt = conn
                .prepare(
                    "SELECT plumm_user_id, company_id, kind, attempts, next_attempt_at, last_error
                     FROM pending ORDER BY seq LIMIT 20",
                )
                .expect("prepare");
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "{} c{} {} attempts={} next={:?} {:?}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?
                    ))
                })
                .expect("pending")
                .map(Result::unwrap)
                .collect();
            panic!(
                "the soak did not converge: outbox {:?}, pending:\n{}",
                plumm.outbox_depth(),
                rows.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    /// Accounts enabled in Entra that no current, active Plumm person holds.
    former_members_enabled: Vec<String>,
    /// People with more than one account made for them still enabled.
    duplicates: Vec<String>,
    /// Accounts the daemon made that no link points to and that are enabled.
    orphans: Vec<String>,
    /// People with no account, or not linked to the one they have.
    lost: Vec<String>,
    /// People whose account differs from Plumm (status, role, email).
    wrong: Vec<String>,
    parked: Vec<String>,
}

fn check(app: &TestApp, driver: &Driver) -> Verdict {
    let mut v = Verdict::default();
    let state = app.state();
    let mut stmt = driver
        .conn
        .prepare("SELECT id, company_id, email, role, status FROM users")
        .expect("prepare");
    let people: Vec<(i64, i64, String, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("people")
        .map(Result::unwrap)
        .collect();
    let mut linked: HashSet<String> = HashSet::new();
    let mut active: HashSet<String> = HashSet::new();
    for (id, company, email, role, status) in &people {
        let tenant = COMPANIES
            .iter()
            .find(|c| c.0 == *company)
            .map(|c| c.1)
            .unwrap_or(T1);
        let who = format!("{id} {email}");
        let Some(link) = state.link(entra_daemon::domain::PlummUserId(*id)).unwrap() else {
            v.lost.push(who);
            continue;
        };
        let account = app
            .users(tenant)
            .into_iter()
            .find(|u| u.id == link.entra_id.0);
        let Some(account) = account else {
            v.lost.push(format!(
                "{who}: linked to {} which {tenant} lacks",
                link.entra_id
            ));
            continue;
        };
        linked.insert(account.id.clone());
        let enabled = status == "active";
        if enabled {
            active.insert(account.id.clone());
        }
        if account.account_enabled != enabled
            || account.job_title.as_deref() != Some(role.as_str())
            || !account.user_principal_name.eq_ignore_ascii_case(email)
        {
            v.wrong.push(format!(
                "{who}: Entra has {} enabled={} title={:?}",
                account.user_principal_name, account.account_enabled, account.job_title
            ));
        }
    }
    let mut made_for: HashMap<String, u32> = HashMap::new();
    for (_, tenant, _) in COMPANIES {
        for u in app.users(tenant) {
            if !u.account_enabled {
                continue;
            }
            if !active.contains(&u.id) {
                v.former_members_enabled.push(u.user_principal_name.clone());
            }
            if u.created_via_graph && !linked.contains(&u.id) {
                v.orphans.push(u.user_principal_name.clone());
            }
            *made_for
                .entry(u.user_principal_name.to_lowercase())
                .or_default() += 1;
        }
    }
    v.duplicates = made_for
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    v.parked = state
        .parked(None)
        .unwrap()
        .into_iter()
        .map(|p| format!("{} {}: {}", p.user, p.email, p.reason))
        .collect();
    v
}
