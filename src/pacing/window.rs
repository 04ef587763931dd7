//! Slow start, as TCP's, for one tenant. Pure: the clock is passed in.
//!
//! Bulk writes on the wire in a tenant start at one `$batch` and grow by
//! one per answer that is not a 429 (doubling each round trip), so the
//! first wave into a tenant another app has emptied is one batch, not every
//! worker at once, and its answers (a limit percentage, a 429) set the
//! mirror before more go. A 429 halves the window (once per episode: those
//! sent before the first came back are one); idleness starts it over, since
//! the bucket may have been spent meanwhile.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FIRST_WINDOW: f64 = 20.0;
const MOST_WINDOW: f64 = 400.0;
/// Idle for this share of the write window (1 s of Microsoft time on the
/// 150 s app+tenant limit) is idle enough to start slow again.
const IDLE_SHARE: f64 = 1.0 / 150.0;
/// A write on the wire for longer than this share of the window (10 s of
/// Microsoft time) is no longer counted in it: a round trip that hangs
/// until its timeout must not hold a tenant's bulk work that long.
const STALE_SHARE: f64 = 10.0 / 150.0;

#[derive(Debug)]
pub(super) struct Window {
    /// Writes granted and not finished yet, by when they were granted, and
    /// in all.
    on_wire: BTreeMap<Instant, f64>,
    in_flight: f64,
    size: f64,
    finished_at: Option<Instant>,
    /// When the window was last halved: the 429s of requests granted
    /// before then are the same episode, one halving.
    halved_at: Option<Instant>,
    /// The tenant's write window, in seconds (on the time scale).
    limit_window_secs: f64,
}

impl Window {
    pub(super) fn new(limit_window_secs: f64) -> Self {
        Self {
            on_wire: BTreeMap::new(),
            in_flight: 0.0,
            size: FIRST_WINDOW,
            finished_at: None,
            halved_at: None,
            limit_window_secs,
        }
    }

    /// Whether a write of `writes` fits now. Real time is never held (it
    /// counts, though); whatever it costs, a request goes when nothing
    /// else is on the wire; a tenant idle long enough starts slow again.
    pub(super) fn admits(&mut self, writes: f64, realtime: bool, now: Instant) -> bool {
        let stale = Duration::from_secs_f64(self.limit_window_secs * STALE_SHARE);
        while let Some(entry) = self.on_wire.first_entry() {
            if now.saturating_duration_since(*entry.key()) < stale {
                break;
            }
            self.in_flight = (self.in_flight - entry.remove()).max(0.0);
        }
        let idle = Duration::from_secs_f64(self.limit_window_secs * IDLE_SHARE);
        let quiet = self
            .finished_at
            .is_none_or(|at| now.saturating_duration_since(at) >= idle);
        if self.in_flight <= 0.0 && quiet {
            self.size = FIRST_WINDOW;
        }
        realtime || writes <= 0.0 || self.in_flight <= 0.0 || self.in_flight + writes <= self.size
    }

    /// A grant of `writes` at `now`: on the wire.
    pub(super) fn granted(&mut self, writes: f64, now: Instant) {
        if writes > 0.0 {
            *self.on_wire.entry(now).or_default() += writes;
            self.in_flight += writes;
        }
    }

    /// A write granted at `granted_at` is over (an answer, an error, held
    /// back, abandoned), unless it was counted off already as stale.
    pub(super) fn finished(&mut self, writes: f64, granted_at: Instant, now: Instant) {
        self.finished_at = Some(now);
        if let Some(left) = self.on_wire.get_mut(&granted_at) {
            let off = writes.min(*left);
            *left -= off;
            self.in_flight = (self.in_flight - off).max(0.0);
            if *left <= 0.0 {
                self.on_wire.remove(&granted_at);
            }
        }
    }

    /// A write answered without a 429: the window grows by one.
    pub(super) fn answered(&mut self) {
        self.size = (self.size + 1.0).min(MOST_WINDOW);
    }

    /// A write granted at `granted_at` was answered 429: halved, once per
    /// episode.
    pub(super) fn throttled(&mut self, granted_at: Instant, now: Instant) {
        if self.halved_at.is_none_or(|h| granted_at > h) {
            self.size = (self.size / 2.0).max(FIRST_WINDOW);
            self.halved_at = Some(now);
        }
    }
}
