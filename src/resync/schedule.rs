//! `[sync] reconcile_schedule`: full resyncs on a cron schedule
//! (tokio-cron-scheduler: six fields, seconds first, UTC).
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

/// Checks the expression; `""` turns scheduled resyncs off.
pub fn parse(raw: &str) -> Result<Option<String>, String> {
    let expr = raw.trim();
    if expr.is_empty() {
        return Ok(None);
    }
    Job::new_async(expr, |_, _| Box::pin(async {}))
        .map(|_| Some(expr.to_string()))
        .map_err(|_| {
            format!(
                "'{expr}' is not a cron expression with six fields (sec min hour day month weekday), \
                 e.g. \"0 0 3 * * *\" for 03:00 UTC every night; \"\" turns scheduled resyncs off"
            )
        })
}

/// Starts the scheduler: each tick sends `()` on `ticks`. Dropping the
/// returned scheduler does not stop it: call `shutdown`.
pub async fn start(expr: &str, ticks: mpsc::Sender<()>) -> Result<JobScheduler, String> {
    let err = |e: tokio_cron_scheduler::JobSchedulerError| format!("resync schedule: {e}");
    let scheduler = JobScheduler::new().await.map_err(err)?;
    let job = Job::new_async(expr, move |_, _| {
        let ticks = ticks.clone();
        Box::pin(async move {
            // A tick while one is still waiting adds nothing: the run it
            // asks for is already coming.
            let _ = ticks.try_send(());
        })
    })
    .map_err(err)?;
    scheduler.add(job).await.map_err(err)?;
    scheduler.start().await.map_err(err)?;
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_fields_pass_five_fail_and_empty_is_off() {
        assert_eq!(parse("0 0 3 * * *"), Ok(Some("0 0 3 * * *".into())));
        assert_eq!(parse("* * * * * *"), Ok(Some("* * * * * *".into())));
        assert_eq!(parse("  "), Ok(None));
        assert!(parse("0 3 * * *").is_err(), "five fields lack the seconds");
        assert!(parse("nightly").is_err());
    }
}

/// The resync settings fixed at start.
#[derive(Debug, Clone, Default)]
pub struct ResyncSettings {
    /// When full resyncs run by themselves (six-field cron, UTC); `None`: never.
    pub reconcile_schedule: Option<String>,
}
