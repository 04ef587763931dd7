//! The whole person, in writes: a company whose people have a manager
//! (`[mapping] manager`), the writes per create with a manager (goal 2: the
//! POST and one PUT manager/$ref) and per plain profile change (goal 1: one
//! PATCH), measured in one run.
use std::time::Duration;

use super::rig::{tenant_id, Rig, TenantPlan};
use super::BenchOptions;
use crate::emulator::TenantSize;

/// Small on purpose: the figures are ratios, not rates.
const PEOPLE: usize = 300;

pub(super) struct PersonFigures {
    people: usize,
    create_writes: u64,
    change_writes: u64,
}

pub(super) async fn run(o: &BenchOptions) -> anyhow::Result<PersonFigures> {
    let people = o.users.clamp(1, PEOPLE);
    println!("[person] {people} hires with a manager, then a role change for each");
    let t = tenant_id(0);
    let plans = [TenantPlan {
        company: 1,
        tenant: t.clone(),
        domain: "whole.example".into(),
        size: TenantSize::Large,
    }];
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    let mapping = "[mapping]\ndisplayName = \"{first_name} {last_name}\"\n\
                   jobTitle = \"{role}\"\nmanager = \"{manager_id}\"\n";
    rig.world
        .write_config(&format!("{}\n{mapping}", rig.world.config_text()?))?;
    rig.world
        .plumm("ALTER TABLE users ADD COLUMN manager_id INTEGER")?;
    // The manager has an account before the reports are hired.
    rig.seed(1, "whole.example", 1)?;
    let mut daemon = rig.spawn_daemon()?;
    rig.connect(1, &t).await?;
    rig.wait_idle(Duration::from_secs(600)).await?;
    let c = &rig.world.control;

    let before = c.traffic(&t);
    rig.world.plumm(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {people})
         INSERT INTO users (company_id, email, first_name, last_name, role, manager_id)
         SELECT 1, 'r' || i || '@whole.example', 'Report', 'R' || i, 'Staff',
                (SELECT MIN(id) FROM users) FROM n"
    ))?;
    rig.wait_idle(Duration::from_secs(600)).await?;
    let hired = c.traffic(&t);
    rig.world
        .plumm("UPDATE users SET role = 'Senior staff' WHERE manager_id IS NOT NULL")?;
    rig.wait_idle(Duration::from_secs(600)).await?;
    let changed = c.traffic(&t);
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    Ok(PersonFigures {
        people,
        create_writes: hired.writes - before.writes,
        change_writes: changed.writes - hired.writes,
    })
}

pub(super) fn report(p: &PersonFigures) {
    let per = |w: u64| w as f64 / p.people.max(1) as f64;
    println!("\nThe whole person ({} people with a manager)", p.people);
    println!(
        "  writes per create with a manager   {:.3}   ({} writes; goal 2: the create and one PUT manager/$ref)",
        per(p.create_writes),
        p.create_writes
    );
    println!(
        "  writes per plain profile change    {:.3}   ({} writes; goal 1.0: one PATCH)",
        per(p.change_writes),
        p.change_writes
    );
}
