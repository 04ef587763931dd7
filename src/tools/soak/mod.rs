//! `entra-daemon soak`: reliability campaigns against the emulator, each
//! printing its figures. The tests run a short version of each and assert
//! its verdict; the command runs the full size and prints.
//!
//! - [`faults`]: a mixed drain while Graph fails (5xx, resets before the
//!   request is carried out, a 429 storm, a replication delay); it must end
//!   with Entra equal to Plumm, nothing lost, nothing duplicated.
//! - [`bad_rows`]: Plumm rows Entra cannot take, mixed among good ones: the
//!   good converge, each bad one is parked naming its field.
//! - [`writers`]: Plumm's own writers while the daemon drains: their busy
//!   errors and commit latency, beside the daemon stopped.
pub mod bad_rows;
pub mod faults;
mod verdict;
pub mod writers;

use std::time::Duration;

pub use verdict::Verdict;

/// Which campaigns `soak` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Campaign {
    All,
    Faults,
    BadRows,
    Writers,
}

#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub campaign: Campaign,
    pub faults: faults::FaultOptions,
    pub bad_rows: bad_rows::BadRowOptions,
    pub writers: writers::WriterOptions,
}

/// Runs the chosen campaigns and prints each one's figures; an error when
/// a campaign's verdict is not clean (so CI and scripts can rely on it).
pub async fn run(o: SoakOptions) -> anyhow::Result<bool> {
    let mut clean = true;
    let all = o.campaign == Campaign::All;
    if all || o.campaign == Campaign::Faults {
        let report = faults::run(&o.faults).await?;
        println!("{report}");
        clean &= report.verdict.is_clean();
    }
    if all || o.campaign == Campaign::BadRows {
        let report = bad_rows::run(&o.bad_rows).await?;
        println!("{report}");
        clean &= report.is_clean();
    }
    if all || o.campaign == Campaign::Writers {
        let report = writers::run(&o.writers).await?;
        println!("{report}");
    }
    Ok(clean)
}

/// A duration as seconds with one decimal, for the reports.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
