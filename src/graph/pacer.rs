//! Per-tenant admission for Graph requests: every request passes here before
//! it is sent. Graph throttles per app and tenant
//! (learn.microsoft.com/graph/throttling-limits), so a `Retry-After` on one
//! request pauses the whole tenant, not just the caller that saw it; other
//! tenants are never affected.
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Real-time changes from the outbox come before bulk work (initial sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Realtime,
    Bulk,
}

impl Priority {
    /// `x-ms-throttle-priority` (learn.microsoft.com/graph/throttling#throttling-priority).
    pub fn header_value(self) -> &'static str {
        match self {
            Priority::Realtime => "high",
            Priority::Bulk => "low",
        }
    }

    pub fn as_i64(self) -> i64 {
        match self {
            Priority::Realtime => 0,
            Priority::Bulk => 1,
        }
    }

    pub fn from_i64(v: i64) -> Self {
        if v == 0 {
            Priority::Realtime
        } else {
            Priority::Bulk
        }
    }
}

#[derive(Debug, Default)]
pub struct Pacer {
    paused_until: Mutex<Option<Instant>>,
}

impl Pacer {
    /// Waits while the tenant is paused by a `Retry-After`.
    pub async fn admit(&self, _priority: Priority) {
        loop {
            let until = *self.paused_until.lock().expect("pacer lock poisoned");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// Pauses the tenant for `retry_after` from now (never shortens a pause).
    pub fn pause(&self, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut p = self.paused_until.lock().expect("pacer lock poisoned");
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_holds_every_request_of_the_tenant_until_it_passes() {
        let p = Pacer::default();
        p.pause(Duration::from_millis(200));
        p.pause(Duration::from_millis(50)); // a shorter one does not cut the first short
        let start = Instant::now();
        p.admit(Priority::Realtime).await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        let again = Instant::now();
        p.admit(Priority::Bulk).await;
        assert_eq!(again.elapsed(), Duration::ZERO);
    }
}
