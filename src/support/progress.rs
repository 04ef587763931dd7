//! Progress of long work (a resync, a tenant listing, a backup): the work
//! reports counts through [`Progress`]; whoever asked for the work decides
//! how to show them (a bar on a terminal, plain lines in a pipe or the
//! journal). The work never knows which, so no layer below the command line
//! depends on a terminal library.
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where a piece of long work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    /// The work as a whole, e.g. "resync company 42".
    pub task: &'a str,
    /// What it is doing now, e.g. "listing the tenant".
    pub stage: &'a str,
    /// How many `unit`s of the stage are done.
    pub done: u64,
    /// How many there are, when known in advance.
    pub total: Option<u64>,
    /// What is counted, plural: "pages", "people", "writes".
    pub unit: &'a str,
}

impl Update<'_> {
    /// One plain line: `resync company 42: planning: 5000 of 100000 people (5%)`.
    pub fn line(&self) -> String {
        let (task, stage, done, unit) = (self.task, self.stage, self.done, self.unit);
        match self.total {
            Some(total) if total > 0 => {
                let pct = done.min(total) * 100 / total;
                format!("{task}: {stage}: {done} of {total} {unit} ({pct}%)")
            }
            _ => format!("{task}: {stage}: {done} {unit}"),
        }
    }
}

/// Receives progress. Called often (per page, per person, per write), from
/// any thread: implementations are cheap and never block for long.
pub trait Progress: Send + Sync {
    /// The work is at `update`.
    fn update(&self, update: &Update<'_>);
    /// A result worth showing whatever the pace (a stage or the work ended).
    fn finish(&self, line: &str);
}

/// Shows nothing: for work nobody watches (tests, the demo).
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: &Update<'_>) {}
    fn finish(&self, _: &str) {}
}

/// Plain lines for a reader that cannot redraw (a pipe, a file, the
/// journal): the first update of each stage, then at most one line every
/// `every`, and every `finish`. Lines go to `emit`.
pub struct Periodic<F> {
    every: Duration,
    emit: F,
    /// When the last line was emitted, and for which task and stage.
    last: Mutex<Option<(Instant, String, String)>>,
}

impl<F: Fn(&str) + Send + Sync> Periodic<F> {
    pub fn new(every: Duration, emit: F) -> Self {
        Self {
            every,
            emit,
            last: Mutex::new(None),
        }
    }
}

impl<F: Fn(&str) + Send + Sync> Progress for Periodic<F> {
    fn update(&self, u: &Update<'_>) {
        let now = Instant::now();
        let due = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let due = match last.as_ref() {
                Some((at, task, stage)) => {
                    task != u.task || stage != u.stage || now.duration_since(*at) >= self.every
                }
                None => true,
            };
            if due {
                *last = Some((now, u.task.to_string(), u.stage.to_string()));
            }
            due
        };
        // Outside the lock: `emit` may write to a slow pipe.
        if due {
            (self.emit)(&u.line());
        }
    }

    fn finish(&self, line: &str) {
        (self.emit)(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(stage: &str, done: u64) -> Update<'_> {
        Update {
            task: "resync company 1",
            stage,
            done,
            total: Some(10),
            unit: "people",
        }
    }

    #[test]
    fn plain_lines_come_at_a_new_stage_and_then_at_most_once_an_interval() {
        let lines = Mutex::new(Vec::new());
        let p = Periodic::new(Duration::from_secs(3600), |l: &str| {
            lines.lock().unwrap().push(l.to_string())
        });
        for done in 1..=5 {
            p.update(&update("planning", done));
        }
        p.update(&update("applying", 1));
        p.update(&update("applying", 2));
        p.finish("done: 2 writes");
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "resync company 1: planning: 1 of 10 people (10%)",
                "resync company 1: applying: 1 of 10 people (10%)",
                "done: 2 writes",
            ]
        );
        let every = Periodic::new(Duration::ZERO, |l: &str| {
            lines.lock().unwrap().push(l.to_string())
        });
        every.update(&update("planning", 7));
        every.update(&update("planning", 8));
        assert_eq!(lines.lock().unwrap().len(), 5);
    }

    #[test]
    fn a_line_without_a_total_gives_the_count() {
        let u = Update {
            total: None,
            unit: "pages",
            ..update("listing the tenant", 3)
        };
        assert_eq!(u.line(), "resync company 1: listing the tenant: 3 pages");
    }
}
