//! Coalesces admitted requests of one tenant into `$batch` round trips
//! (at most 20 items, learn.microsoft.com/graph/json-batching). A real-time
//! request flushes at once; bulk requests wait up to `linger` for company,
//! so a paced bulk stream travels in full batches. Items are throttled one
//! by one by Graph: each caller gets its own item's answer and retries only
//! its own item, after its own `Retry-After`. A round trip about to leave
//! while its tenant waits out a 429 stays home: its items go back to their
//! callers unsent, to be admitted again (`Pacer::paused`).
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::client::{CallError, Sent};
use super::request::GraphRequest;
use super::transport::Transport;
use crate::domain::TenantId;
use crate::pacing::{Pacer, Priority};

pub const MAX_ITEMS: usize = 20;

#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// How long a bulk request may wait for others to share its round trip.
    pub linger: Duration,
    /// Round trips in flight at once per tenant.
    pub in_flight: usize,
}

/// `Ok(None)`: not sent, the tenant was waiting out a 429.
type Answer = oneshot::Sender<Result<Option<Sent>, CallError>>;

struct Item {
    request: GraphRequest,
    priority: Priority,
    queued: Instant,
    answer: Answer,
}

enum Msg {
    Item(TenantId, Item),
    Done(TenantId),
}

#[derive(Default)]
struct Lane {
    queue: VecDeque<Item>,
    in_flight: usize,
}

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Batcher {
    pub(crate) fn spawn(transport: Arc<Transport>, settings: BatchSettings, pacer: Pacer) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, tx.clone(), (transport, pacer), settings));
        Self { tx }
    }

    /// The request's answer, or `None` when it was held back unsent
    /// because its tenant was waiting out a 429 as its round trip formed.
    pub(crate) async fn send(
        &self,
        tenant: &TenantId,
        request: &GraphRequest,
        priority: Priority,
    ) -> Result<Option<Sent>, CallError> {
        let (answer, answered) = oneshot::channel();
        let item = Item {
            request: request.clone(),
            priority,
            queued: Instant::now(),
            answer,
        };
        let gone = || CallError::Network {
            message: "the Graph batcher has stopped (shutting down)".into(),
            timeout: false,
        };
        self.tx
            .send(Msg::Item(tenant.clone(), item))
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    tx: mpsc::UnboundedSender<Msg>,
    (transport, pacer): (Arc<Transport>, Pacer),
    settings: BatchSettings,
) {
    let mut lanes: HashMap<TenantId, Lane> = HashMap::new();
    loop {
        let deadline = lanes
            .values()
            .filter(|l| l.in_flight < settings.in_flight)
            .filter_map(|l| l.queue.front().map(|i| i.queued + settings.linger))
            .min();
        let msg = match deadline {
            Some(at) => tokio::select! {
                m = rx.recv() => match m { Some(m) => Some(m), None => return },
                _ = tokio::time::sleep_until(at) => None,
            },
            None => match rx.recv().await {
                Some(m) => Some(m),
                None => return,
            },
        };
        match msg {
            Some(Msg::Item(tenant, item)) => {
                let lane = lanes.entry(tenant.clone()).or_default();
                // Real time goes to the front: it is the reason to flush now.
                if item.priority == Priority::Realtime {
                    lane.queue.push_front(item);
                } else {
                    lane.queue.push_back(item);
                }
            }
            Some(Msg::Done(tenant)) => {
                if let Some(lane) = lanes.get_mut(&tenant) {
                    lane.in_flight = lane.in_flight.saturating_sub(1);
                }
            }
            None => {}
        }
        let now = Instant::now();
        for (tenant, lane) in lanes.iter_mut() {
            if ready(lane, now, settings.linger) && pacer.paused(tenant) {
                for item in lane.queue.drain(..) {
                    let _ = item.answer.send(Ok(None));
                }
            }
            while lane.in_flight < settings.in_flight && ready(lane, now, settings.linger) {
                let n = lane.queue.len().min(MAX_ITEMS);
                let items: Vec<Item> = lane.queue.drain(..n).collect();
                lane.in_flight += 1;
                let (transport, tx, tenant) = (transport.clone(), tx.clone(), tenant.clone());
                tokio::spawn(async move {
                    deliver(&transport, &tenant, items).await;
                    let _ = tx.send(Msg::Done(tenant));
                });
            }
        }
        lanes.retain(|_, l| l.in_flight > 0 || !l.queue.is_empty());
    }
}

/// Flush when a batch is full, when real time waits, or when the oldest
/// bulk request has waited long enough.
fn ready(lane: &Lane, now: Instant, linger: Duration) -> bool {
    match lane.queue.front() {
        None => false,
        Some(first) => {
            lane.queue.len() >= MAX_ITEMS
                || first.priority == Priority::Realtime
                || now >= first.queued + linger
        }
    }
}

async fn deliver(transport: &Transport, tenant: &TenantId, items: Vec<Item>) {
    // Callers that gave up (their task ended) are not sent.
    let items: Vec<Item> = items
        .into_iter()
        .filter(|i| !i.answer.is_closed())
        .collect();
    match items.len() {
        0 => {}
        // A lone request goes as itself: same cost, no envelope.
        1 => {
            let mut items = items;
            if let Some(item) = items.pop() {
                let r = transport.send(tenant, &item.request, item.priority).await;
                let _ = item.answer.send(r.map(Some));
            }
        }
        _ => {
            let requests: Vec<(GraphRequest, Priority)> = items
                .iter()
                .map(|i| (i.request.clone(), i.priority))
                .collect();
            match transport.send_batch(tenant, &requests).await {
                Ok(sent) => {
                    for (item, s) in items.into_iter().zip(sent) {
                        let _ = item.answer.send(Ok(Some(s)));
                    }
                }
                Err(e) => {
                    for item in items {
                        let _ = item.answer.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}
