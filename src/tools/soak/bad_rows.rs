//! Bad rows: Plumm rows Entra cannot take (malformed and unverified-domain
//! emails, empty names, 10 KB values, NUL bytes, wrong country codes, two
//! people with one email) mixed among good rows that merely look odd
//! (unicode, emoji, right-to-left text, SQL-looking strings). The daemon
//! must not stop; every good person converges; every bad one is parked,
//! with the Plumm field to fix named in the parked reason and its audit row;
//! and a corrected bad row then converges.
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::domain::{CompanyId, PlummUserId};
use crate::store::AuditFilter;
use crate::tools::world::{tenant, World};

const COMPANY: i64 = 1;
const TENANT: &str = "5a0c0003-0000-4000-8000-000000000003";

#[derive(Debug, Clone)]
pub struct BadRowOptions {
    /// Plain good people mixed in beside the odd good and the bad rows.
    pub plain: usize,
    pub seed: u64,
    pub timeout: Duration,
}

impl Default for BadRowOptions {
    fn default() -> Self {
        Self {
            plain: 500,
            seed: 1,
            timeout: Duration::from_secs(120),
        }
    }
}

/// One row for Plumm's `users` table and what must become of it.
#[derive(Debug, Clone)]
struct Row {
    email: String,
    first: String,
    last: String,
    role: Option<String>,
    department: Option<String>,
    location: Option<String>,
    country: Option<String>,
    /// `None`: must converge. `Some(field)`: must be parked naming it.
    parked_for: Option<&'static str>,
}

fn row(email: &str, first: &str, last: &str) -> Row {
    Row {
        email: email.into(),
        first: first.into(),
        last: last.into(),
        role: Some("Staff".into()),
        department: None,
        location: None,
        country: Some("GB".into()),
        parked_for: None,
    }
}

fn bad(mut r: Row, field: &'static str) -> Row {
    r.parked_for = Some(field);
    r
}

/// The row with one optional column set (`None` clears it).
fn with(mut r: Row, column: &str, value: Option<&str>) -> Row {
    let value = value.map(str::to_owned);
    match column {
        "role" => r.role = value,
        "department" => r.department = value,
        "location" => r.location = value,
        _ => r.country = value,
    }
    r
}

/// Rows that look odd but are good: they must converge as written.
fn odd_good_rows() -> Vec<Row> {
    vec![
        row("zoe@contoso.com", "Zoë", "Ærøskøbing-Müller"),
        row("wang@contoso.com", "小明", "王"),
        row("rocket@contoso.com", "Ada 🚀", "Lovelace 👩‍💻"),
        row("maryam@contoso.com", "مريم", "الحسن"),
        row("david@contoso.com", "דוד", "כהן"),
        row("bidi@contoso.com", "Ahmed אבג", "\u{202e}Smith"),
        row(
            "bobby@contoso.com",
            "Robert'); DROP TABLE users;--",
            "O'Brien",
        ),
        row(
            "select@contoso.com",
            "1 OR 1=1",
            "\" UNION SELECT * FROM links --",
        ),
        row("solo@contoso.com", "   ", "Solo"),
        with(
            row("claire@contoso.com", "Claire", "Dubois"),
            "country",
            Some("fr"),
        ),
        with(
            row("nocountry@contoso.com", "No", "Country"),
            "country",
            None,
        ),
        with(
            row("longrole@contoso.com", "Long", "Role"),
            "role",
            Some(&"R".repeat(128)),
        ),
        with(
            row("chief@contoso.com", "Chief", "Party"),
            "role",
            Some("Chief 🎉 Officer"),
        ),
        row("twin@contoso.com", "Twin", "One"),
    ]
}

/// Rows Entra cannot take, each with the field its parked reason must name.
fn bad_rows() -> Vec<Row> {
    let ten_kb = "x".repeat(10 * 1024);
    let huge = Some(ten_kb.as_str());
    let email = |e: &str| bad(row(e, "Bad", "Email"), "email");
    let name = |e: &str, first: &str, last: &str, field| bad(row(e, first, last), field);
    let column =
        |e: &str, c: &'static str, v: Option<&str>| bad(with(row(e, "Bad", "Column"), c, v), c);
    vec![
        email("not-an-email"),
        email("   "),
        email("ada@@contoso.com"),
        email("😀@contoso.com"),
        email("nul\0byte@contoso.com"),
        email("robert');DROP TABLE users;--@contoso.com"),
        email("ada@unverified-example.com"),
        email(&format!("{ten_kb}@contoso.com")),
        name("empty@contoso.com", "", "", "first_name+last_name"),
        name("spaces@contoso.com", "   ", "\t ", "first_name+last_name"),
        name("hugename@contoso.com", &ten_kb, "Name", "first_name"),
        name("nulname@contoso.com", "Ada\0", "Nul", "first_name"),
        column("hugerole@contoso.com", "role", huge),
        column("hugedept@contoso.com", "department", huge),
        column("nulloc@contoso.com", "location", Some("Lon\0don")),
        column("uk@contoso.com", "country", Some("UK")),
        column("xx@contoso.com", "country", Some("XX")),
        column("gbr@contoso.com", "country", Some("GBR")),
        // The second person with one email: the first holds the account.
        email("TWIN@contoso.com"),
    ]
}

/// What the campaign measured.
#[derive(Debug, Default)]
pub struct BadRowReport {
    pub good: usize,
    pub converged: usize,
    pub bad: usize,
    /// Bad rows parked with the field named in the reason and the audit row.
    pub parked_naming_field: usize,
    /// Bad rows, and what is wrong with each.
    pub problems: Vec<String>,
    pub daemon_stopped_early: bool,
    pub took: Duration,
    /// A corrected bad row converged.
    pub fixed_converges: bool,
}

impl BadRowReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
            && !self.daemon_stopped_early
            && self.converged == self.good
            && self.parked_naming_field == self.bad
            && self.fixed_converges
    }
}

impl fmt::Display for BadRowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bad rows: {} good ({} converged), {} bad ({} parked naming the field) in {}; \
             daemon kept running: {}; a corrected row converges: {}",
            self.good,
            self.converged,
            self.bad,
            self.parked_naming_field,
            super::secs(self.took),
            !self.daemon_stopped_early,
            self.fixed_converges
        )?;
        match self.problems.as_slice() {
            [] => write!(f, "  problems: none"),
            p => write!(f, "  problems ({}):\n    {}", p.len(), p.join("\n    ")),
        }
    }
}

pub async fn run(o: &BadRowOptions) -> anyhow::Result<BadRowReport> {
    let world = World::builder()
        .scratch("entra-daemon-soak")
        .short_timings()
        .tenant(tenant(TENANT, "contoso.com"))
        .log("level = \"error\"")
        .build()
        .await?;
    world.connect(COMPANY, TENANT, "soak").await?;
    let (stop, started) = world.start_daemon().await?;
    let mut rows = odd_good_rows();
    rows.extend(bad_rows());
    rows.extend(
        (0..o.plain).map(|i| row(&format!("plain{i}@contoso.com"), "Plain", &format!("P{i}"))),
    );
    rows.shuffle(&mut StdRng::seed_from_u64(o.seed));
    // The first of the twins in Plumm holds the account; the second is parked.
    let twin = |r: &Row| r.email.eq_ignore_ascii_case("twin@contoso.com");
    let mut seen_twin = false;
    for r in rows.iter_mut().filter(|r| twin(r)) {
        r.parked_for = seen_twin.then_some("email");
        seen_twin = true;
    }
    let begin = Instant::now();
    let ids = insert(&world, &rows)?;
    let settled = world.converged(o.timeout, Duration::from_millis(20)).await;
    let took = begin.elapsed();
    let mut report = judge(&world, &rows, &ids)?;
    report.took = took;
    report.daemon_stopped_early = started.daemon.is_finished();
    if let Err(e) = settled {
        report.problems.push(format!("{e:#}"));
    }
    report.fixed_converges = fix_one(&world, &rows, &ids, o.timeout).await?;
    stop.send_replace(true);
    started.wait().await?;
    Ok(report)
}

/// One commit per row, as Plumm's app makes them; the ids, in row order.
fn insert(world: &World, rows: &[Row]) -> anyhow::Result<Vec<i64>> {
    let conn = rusqlite::Connection::open(&world.settings.plumm.database)
        .context("opening Plumm's database")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        conn.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![COMPANY, r.email, r.first, r.last, r.role, r.department, r.location, r.country],
        )?;
        ids.push(conn.last_insert_rowid());
    }
    Ok(ids)
}

/// What became of every row.
fn judge(world: &World, rows: &[Row], ids: &[i64]) -> anyhow::Result<BadRowReport> {
    let state = world.state()?;
    let parked: Vec<_> = state.parked(Some(CompanyId(COMPANY)))?;
    let accounts = world.control.users(TENANT);
    let mut report = BadRowReport::default();
    for (r, id) in rows.iter().zip(ids) {
        let short: String = r.email.chars().take(40).collect();
        let who = format!("{id} {short:?}");
        let reason = parked
            .iter()
            .find(|p| p.user.0 == *id)
            .map(|p| p.reason.as_str());
        match r.parked_for {
            None => {
                report.good += 1;
                let link = state.link(PlummUserId(*id))?;
                let account = link.and_then(|l| accounts.iter().find(|u| u.id == l.entra_id.0));
                let want = format!("{} {}", r.first, r.last);
                let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
                match account {
                    Some(u)
                        if u.display_name.as_deref() == Some(want.as_str())
                            && u.job_title == r.role =>
                    {
                        report.converged += 1;
                    }
                    Some(u) => report.problems.push(format!(
                        "{who}: Entra has displayName {:?} jobTitle {:?}",
                        u.display_name, u.job_title
                    )),
                    None => report
                        .problems
                        .push(format!("{who}: not in Entra (parked: {reason:?})")),
                }
            }
            Some(field) => {
                report.bad += 1;
                let audited = parked_audit_names(world, *id, field)?;
                match reason {
                    Some(why) if why.contains(field) && audited => report.parked_naming_field += 1,
                    Some(why) => report.problems.push(format!(
                        "{who}: parked without naming {field} (audit names it: {audited}): {why}"
                    )),
                    None => report
                        .problems
                        .push(format!("{who}: not parked (expected: {field})")),
                }
            }
        }
    }
    Ok(report)
}

/// Whether a `parked` audit row of this person names `field`.
fn parked_audit_names(world: &World, id: i64, field: &str) -> anyhow::Result<bool> {
    let rows = world.state()?.audit(&AuditFilter {
        user: Some(PlummUserId(id)),
        failed_only: true,
        ..AuditFilter::default()
    })?;
    Ok(rows
        .iter()
        .any(|r| r.outcome == "parked" && r.detail.as_deref().is_some_and(|d| d.contains(field))))
}

/// Corrects the row parked for its country code; whether it then converges.
async fn fix_one(
    world: &World,
    rows: &[Row],
    ids: &[i64],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let Some(at) = rows.iter().position(|r| r.email == "uk@contoso.com") else {
        return Ok(false);
    };
    world.plumm(&format!(
        "UPDATE users SET country = 'GB' WHERE id = {}",
        ids[at]
    ))?;
    let state = world.state()?;
    let id = PlummUserId(ids[at]);
    let linked = crate::tools::world::poll(timeout, Duration::from_millis(10), || {
        Ok(state.link(id)?.is_some())
    })
    .await?;
    Ok(linked.is_some())
}
