//! Prometheus metrics, served at `/metrics` by the HTTP server.
//!
//! A leaf: typed events in, exposition text out, nothing read from a
//! database. Events (pushes, Graph calls, 429s, retries, resync runs) are
//! counted where they happen. Figures that live in the databases (pending
//! work, parked users, tenants by state, last success) are computed by
//! `status` at scrape time and handed in whole ([`stored_figures`]), so
//! they can never drift from what is stored.
//!
//! `prometheus-client` (the Prometheus project's own Rust client) encodes
//! the exposition text; it adds no second version of any crate we use.
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The exposition format `text::encode` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Push {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Action {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Resync {
    trigger: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Company {
    company: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantState {
    state: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

struct Metrics {
    registry: Registry,
    pushes: Family<Push, Counter>,
    retries: Family<Action, Counter>,
    graph_latency: Family<Method, Histogram>,
    throttled: Family<Method, Counter>,
    resync_runs: Family<Resync, Counter>,
    outbox_rows: Gauge,
    pending: Family<Company, Gauge>,
    oldest_pending_age: Family<Company, FloatGauge>,
    parked: Family<Company, Gauge>,
    last_success: Family<Company, FloatGauge>,
    tenants: Family<TenantState, Gauge>,
    /// One scrape refreshes the database figures at a time, so two
    /// concurrent scrapes never interleave a clear and a set.
    refreshing: Mutex<()>,
}

fn latency_histogram() -> Histogram {
    // 5 ms .. ~10 s: Graph answers in tens of milliseconds, throttled or
    // slow calls in seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut r = Registry::default();
    let m = Metrics {
        registry: Registry::default(),
        pushes: Family::default(),
        retries: Family::default(),
        graph_latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        throttled: Family::default(),
        resync_runs: Family::default(),
        outbox_rows: Gauge::default(),
        pending: Family::default(),
        oldest_pending_age: Family::default(),
        parked: Family::default(),
        last_success: Family::default(),
        tenants: Family::default(),
        refreshing: Mutex::new(()),
    };
    r.register(
        "entra_pushes",
        "Graph write attempts and sync decisions (one per audit row), by action and outcome",
        m.pushes.clone(),
    );
    r.register(
        "entra_graph_retries",
        "Graph calls retried after a 429, a 5xx, a timeout or a dropped connection",
        m.retries.clone(),
    );
    r.register(
        "entra_graph_request_duration_seconds",
        "Time from sending a Graph request to its answer (a batched request: its $batch)",
        m.graph_latency.clone(),
    );
    r.register(
        "entra_graph_throttled",
        "Graph answers that said to slow down (429, or 503/504 with Retry-After)",
        m.throttled.clone(),
    );
    r.register(
        "entra_resync_runs",
        "Resync runs, by what started them and how they ended",
        m.resync_runs.clone(),
    );
    r.register(
        "entra_outbox_rows",
        "Rows in Plumm's outbox not yet recorded as pending",
        m.outbox_rows.clone(),
    );
    r.register(
        "entra_pending_changes",
        "Users whose latest change is not yet in Entra, per company",
        m.pending.clone(),
    );
    r.register(
        "entra_oldest_pending_age_seconds",
        "Age of the oldest change not yet in Entra, per company (0 when none)",
        m.oldest_pending_age.clone(),
    );
    r.register(
        "entra_parked_users",
        "Users that cannot be pushed until they change in Plumm, per company",
        m.parked.clone(),
    );
    r.register(
        "entra_last_success_timestamp_seconds",
        "Unix time of the last successful write or decision, per company",
        m.last_success.clone(),
    );
    r.register(
        "entra_tenants",
        "Connected tenants by state: connected (syncing) or quarantined (needs re-consent)",
        m.tenants.clone(),
    );
    Metrics { registry: r, ..m }
});

/// One audit row was written: a push attempt or a decision. Rows with the
/// `retry` outcome are the retries.
pub fn audit_row(action: &str, outcome: &str) {
    let m = &*METRICS;
    m.pushes
        .get_or_create(&Push {
            action: action.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
    if outcome == "retry" {
        m.retries
            .get_or_create(&Action {
                action: action.to_string(),
            })
            .inc();
    }
}

/// One Graph answer: its latency, and whether it asked us to slow down.
pub fn graph_answer(method: &str, duration: Duration, throttled: bool) {
    let m = &*METRICS;
    let label = Method {
        method: method.to_string(),
    };
    m.graph_latency
        .get_or_create(&label)
        .observe(duration.as_secs_f64());
    if throttled {
        m.throttled.get_or_create(&label).inc();
    }
}

/// One resync run ended. `trigger` says what started it (e.g. `schedule`,
/// `manual`), `outcome` how it ended (e.g. `ok`, `failed`, `held`).
pub fn resync_run(trigger: &str, outcome: &str) {
    METRICS
        .resync_runs
        .get_or_create(&Resync {
            trigger: trigger.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
}

/// One company's stored figures, as `status` reads them at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyFigures {
    pub company: i64,
    /// The tenant refuses the app (needs re-consent).
    pub quarantined: bool,
    pub pending: i64,
    pub oldest_pending_age_seconds: u64,
    pub parked: i64,
    /// Unix time of the last success, if any.
    pub last_success: Option<f64>,
}

/// Replaces the database figures in the gauges with `companies` (and the
/// outbox depth when known). Companies no longer listed disappear from the
/// output instead of keeping stale values.
pub fn stored_figures(outbox_rows: Option<i64>, companies: &[CompanyFigures]) {
    let m = &*METRICS;
    let _one = m
        .refreshing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = outbox_rows {
        m.outbox_rows.set(n);
    }
    m.pending.clear();
    m.oldest_pending_age.clear();
    m.parked.clear();
    m.last_success.clear();
    let quarantined = companies.iter().filter(|c| c.quarantined).count() as i64;
    for c in companies {
        let label = Company {
            company: c.company.to_string(),
        };
        m.pending.get_or_create(&label).set(c.pending);
        m.oldest_pending_age
            .get_or_create(&label)
            .set(c.oldest_pending_age_seconds as f64);
        m.parked.get_or_create(&label).set(c.parked);
        if let Some(t) = c.last_success {
            m.last_success.get_or_create(&label).set(t);
        }
    }
    let connected = companies.len() as i64 - quarantined;
    for (state, n) in [("connected", connected), ("quarantined", quarantined)] {
        m.tenants
            .get_or_create(&TenantState {
                state: state.into(),
            })
            .set(n);
    }
}

/// The exposition text of every metric.
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = text::encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resync_run_is_counted_by_trigger_and_outcome() {
        resync_run("manual", "ok");
        resync_run("manual", "ok");
        let text = render();
        assert!(text.contains("# TYPE entra_resync_runs counter"), "{text}");
        assert!(
            text.contains("entra_resync_runs_total{trigger=\"manual\",outcome=\"ok\"} 2"),
            "{text}"
        );
    }
}
