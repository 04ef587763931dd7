//! Group membership at scale: an initial sync of `users` people into three
//! groups (everyone in "All staff", a managed group per department, two
//! departments), its writes per membership beside a client that adds one
//! member per request, and the real-time latency of a department move.
use std::time::{Duration, Instant};

use super::rig::{tenant_id, Rig, TenantPlan};
use super::{minimum_seconds, percentiles, BenchOptions};
use crate::emulator::{SeedGroup, TenantSize};
use crate::tools::world::poll;
use tokio::process::Child;

pub(super) struct GroupFigures {
    people: usize,
    memberships: u64,
    group_writes: u64,
    user_writes: u64,
    seconds: f64,
    moves: Vec<Duration>,
    /// The moves against a Graph that answers at once.
    instant_moves: Vec<Duration>,
    missed: usize,
    time_scale: f64,
    latency_ms: (u64, u64),
}

const DEPARTMENTS: [&str; 2] = ["Clinical", "Finance"];

/// A company of `o.users` people, the rules, and the daemon running; the
/// company not connected yet.
async fn prepared_rig(o: &BenchOptions) -> anyhow::Result<(Rig, String, Child)> {
    let t = tenant_id(0);
    let plans = [TenantPlan {
        company: 1,
        tenant: t.clone(),
        domain: "busy.example".into(),
        size: TenantSize::Large,
    }];
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    let c = &rig.world.control;
    let roles = [
        "User.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "Group.Create",
    ];
    c.set_permissions(&t, roles.map(String::from).to_vec())?;
    let all_staff_group = SeedGroup {
        display_name: "All staff".into(),
        ..SeedGroup::default()
    };
    let all_staff = c.seed_group(&t, all_staff_group)?;
    let rules = format!(
        "[[groups]]\ncompany = 1\ngroup_id = \"{all_staff}\"\n\n[[groups]]\nname = \"Dept {{department}}\"\n"
    );
    rig.world
        .write_config(&format!("{}\n{rules}", rig.world.config_text()?))?;
    seed(&rig, o.users)?;
    let daemon = rig.spawn_daemon()?;
    rig.wait_idle(Duration::from_secs(60)).await?;
    Ok((rig, t, daemon))
}

async fn synced_rig(o: &BenchOptions) -> anyhow::Result<(Rig, String, Child)> {
    let (rig, t, daemon) = prepared_rig(o).await?;
    rig.connect(1, &t).await?;
    rig.wait_idle(Duration::from_secs(1_800)).await?;
    Ok((rig, t, daemon))
}

pub(super) async fn run(o: &BenchOptions) -> anyhow::Result<GroupFigures> {
    println!(
        "[groups] initial sync of {} people into 3 groups, then 100 department moves",
        o.users
    );
    let (rig, t, mut daemon) = prepared_rig(o).await?;
    let c = &rig.world.control;
    let before = c.traffic(&t);
    let start = Instant::now();
    rig.connect(1, &t).await?;
    rig.wait_idle(Duration::from_secs(1_800)).await?;
    let seconds = start.elapsed().as_secs_f64();
    let after = c.traffic(&t);
    let (moves, missed) = department_moves(&rig, &t, o.users.min(100)).await?;
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    let (instant_moves, _) = moves_without_latency(o).await?;
    let group_writes = after.group_writes - before.group_writes;
    Ok(GroupFigures {
        people: o.users,
        memberships: 2 * o.users as u64,
        group_writes,
        user_writes: after.writes - before.writes - group_writes,
        seconds,
        moves,
        instant_moves,
        missed,
        time_scale: o.time_scale,
        latency_ms: o.latency_ms,
    })
}

/// The same moves in a small company whose Graph answers at once: what
/// the daemon itself adds to a move's three writes.
async fn moves_without_latency(o: &BenchOptions) -> anyhow::Result<(Vec<Duration>, usize)> {
    let small = BenchOptions {
        users: 100,
        latency_ms: (0, 0),
        ..o.clone()
    };
    let (rig, t, mut daemon) = synced_rig(&small).await?;
    let moves = department_moves(&rig, &t, 100).await;
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    moves
}

fn seed(rig: &Rig, n: usize) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(&rig.world.settings.plumm.database)?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES (1, ?1, 'Person', ?2, 'Staff', ?3, 'London', 'GB')",
        )?;
        for i in 0..n {
            let dept = DEPARTMENTS[i % 2];
            stmt.execute(rusqlite::params![
                format!("p{i}@busy.example"),
                format!("N{i}"),
                dept
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Moves `n` people to the other department, one at a time; how long each
/// took until Entra showed them in the new group and out of the old one.
async fn department_moves(
    rig: &Rig,
    tenant: &str,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let c = &rig.world.control;
    let group = |name: &str| {
        c.groups(tenant)
            .into_iter()
            .find(|g| g.display_name == name)
            .map(|g| g.id)
    };
    let (Some(first), Some(second)) = (
        group(&format!("Dept {}", DEPARTMENTS[0])),
        group(&format!("Dept {}", DEPARTMENTS[1])),
    ) else {
        anyhow::bail!("the department groups were not created");
    };
    let (mut out, mut missed) = (Vec::new(), 0);
    for i in 0..n {
        let email = format!("p{i}@busy.example");
        let Some(id) = c.find_user(tenant, &email).map(|u| u.id) else {
            missed += 1;
            continue;
        };
        let (to, from, dept) = match i % 2 {
            0 => (&second, &first, DEPARTMENTS[1]),
            _ => (&first, &second, DEPARTMENTS[0]),
        };
        rig.world.plumm(&format!(
            "UPDATE users SET department = '{dept}' WHERE email = '{email}'"
        ))?;
        let moved = || {
            let member = |g: &str| c.group_members(tenant, g).is_ok_and(|m| m.contains(&id));
            Ok(member(to) && !member(from))
        };
        match poll(Duration::from_secs(10), Duration::from_millis(1), moved).await? {
            Some(d) => out.push(d),
            None => missed += 1,
        }
    }
    Ok((out, missed))
}

pub(super) fn report(g: &GroupFigures) {
    let per = g.group_writes as f64 / g.memberships.max(1) as f64;
    let batched = minimum_seconds((g.user_writes + g.group_writes) as f64, 1.0, g.time_scale);
    let single = minimum_seconds((g.user_writes + g.memberships) as f64, 1.0, g.time_scale);
    println!(
        "\nGroup membership ({} people into 3 groups: {} memberships)",
        g.people, g.memberships
    );
    println!(
        "  writes per membership      {per:.3}   ({} group writes, 2 of them group creates; one request per member: 1.000)",
        g.group_writes
    );
    println!(
        "  initial sync               {:.1} s; Graph's limits allow it in {batched:.1} s batched, {single:.1} s one member per request",
        g.seconds
    );
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let row = |label: &str, xs: &[Duration]| match percentiles(xs.to_vec()) {
        Some((p50, p99)) => println!(
            "  {label:<34} p50 {}  p99 {}  ({} samples)",
            ms(p50),
            ms(p99),
            xs.len()
        ),
        None => println!("  {label:<34} no sample"),
    };
    println!(
        "  department move, idle (one user PATCH, one remove, one add; {} missed):",
        g.missed
    );
    row("Graph answering at once", &g.instant_moves);
    let with = format!("Graph latency {}-{} ms", g.latency_ms.0, g.latency_ms.1);
    row(&with, &g.moves);
}
