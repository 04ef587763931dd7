//! One of Graph's token buckets as the daemon mirrors it, and what the
//! daemon has learnt of its live ceiling. Pure: the clock is passed in.
//!
//! Microsoft documents each limit, and says the numbers "are subject to
//! change"; a tenant-wide limit is shared with every other app in the
//! tenant. So the documented refill is the prior and the upper bound, and
//! the mirror refills at `share` of it, learnt from what Graph says:
//!
//! - **A 429 naming this bucket** (`x-ms-throttle-scope`) means the real
//!   bucket is empty now. Two such moments bracket an interval in which the
//!   real bucket went from empty to empty, so what this app was granted
//!   between them is what the bucket gave it: the live ceiling, measured.
//!   The share falls to that (at least 10% lower than before, at most to a
//!   quarter); a first 429 with nothing to measure against halves it, or
//!   falls to what its episode's Retry-Afters imply when that is less. Fast
//!   decrease, as in AIMD, but by measurement rather than a guess. The
//!   mirror also waits out `Retry-After` before it believes in a refill.
//! - **`x-ms-throttle-limit-percentage`** is the most used limit the
//!   request counted against, and its absence says every one is below 0.8
//!   (learn.microsoft.com/graph/throttling-limits, "Regular responses"), so
//!   every bucket holds at least `1 - p` of its capacity. When that is more
//!   than the mirror holds, the mirror catches up, and the tokens it missed
//!   over the time since it last caught up are refill it did not believe
//!   in: the share rises by that rate. This is how the daemon sees another
//!   app's load end.
//! - **A falling limit percentage** measures the refill: the value's
//!   lower end bounds the level of the bucket it most likely describes
//!   from above, its upper end bounds every touched bucket's from below,
//!   and a rise between two such bounds, plus what this app was granted
//!   in between, is what the bucket gave. The share rises to that at once,
//!   so the daemon is back at the documented rate seconds after another
//!   app stops, not minutes.
//! - **Neither, while in use**: the share creeps up by half of itself per
//!   window of use (0.17% a second on the 5-minute tenant limit), probing
//!   for headroom slowly; a 429 brings it back to what was measured.
//!
//! The share never goes above 1 (documented) or below [`MIN_SHARE`].
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::limits::Rate;

/// Share of each bucket kept in reserve against jitter between our grant
/// and Graph's metering.
pub(super) const RESERVE: f64 = 0.02;

/// The least share of a documented limit the daemon believes in: below
/// that it would take minutes to notice the limit is back.
pub(super) const MIN_SHARE: f64 = 0.02;

/// How fast the share creeps up without evidence: this much of itself per
/// window of use.
const PROBE_PER_WINDOW: f64 = 0.5;

#[derive(Debug, Clone)]
pub(super) struct Bucket {
    pub(super) rate: Rate,
    pub(super) capacity: f64,
    pub(super) tokens: f64,
    last: Instant,
    /// The live ceiling as a share of the documented refill.
    share: f64,
    /// The last 429 that named this bucket: when its request was granted
    /// (the real bucket was empty as it arrived) and when we learnt of it.
    /// (when its request was granted, the running total before it).
    empty_at: Option<(Instant, f64)>,
    learnt_at: Option<Instant>,
    /// The 429s since the last one that was learnt from, while it had
    /// nothing to measure against: what their Retry-Afters imply.
    episode: Option<Episode>,
    /// When the mirror last caught up with a level Graph reported.
    synced_at: Instant,
    /// The last grant, for probing while in use.
    used_at: Option<Instant>,
    /// Everything granted, and recent grants as (when, total after), to
    /// tell what a reported level had not seen yet.
    granted_total: f64,
    history: VecDeque<(Instant, f64)>,
    /// Upper bounds on the real level since the last 429 named this
    /// bucket, as (granted at, level at most, granted total through then),
    /// for measuring the refill from later lower bounds.
    anchors: VecDeque<(Instant, f64, f64)>,
}

/// One episode of 429s (requests sent before the daemon knew of the
/// first): when the first refused one was granted, how many were refused,
/// the latest moment Graph named for room again, and the share the
/// episode's first 429 left (never exceeded).
#[derive(Debug, Clone)]
struct Episode {
    first: Instant,
    refused: f64,
    room_at: Instant,
    cap: f64,
}

/// Anchors kept per window, and the shortest span measured.
const ANCHORS_PER_WINDOW: f64 = 100.0;

/// How much grant history a bucket keeps: longer than any answer takes.
const HISTORY: Duration = Duration::from_secs(10);

impl Bucket {
    pub(super) fn new(rate: Rate, now: Instant) -> Self {
        let capacity = rate.capacity * (1.0 - RESERVE);
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
            share: 1.0,
            empty_at: None,
            learnt_at: None,
            episode: None,
            synced_at: now,
            used_at: None,
            granted_total: 0.0,
            history: VecDeque::new(),
            anchors: VecDeque::new(),
        }
    }

    /// The refill the daemon believes in, per second.
    pub(super) fn per_sec(&self) -> f64 {
        self.rate.per_sec() * self.share
    }

    pub(super) fn share(&self) -> f64 {
        self.share
    }

    pub(super) fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec()).min(self.capacity);
        self.last = self.last.max(now);
    }

    /// Time until `need` tokens are there (zero if they are).
    pub(super) fn wait_for(&self, need: f64) -> Duration {
        if self.tokens >= need {
            return Duration::ZERO;
        }
        // A day at most: a wild value (from a header) must not panic or
        // park a tenant forever; the next poll recomputes anyway.
        let secs = ((need - self.tokens) / self.per_sec()).min(86_400.0);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(86_400))
    }

    /// A grant of `cost`: charged, counted, and a little probing up.
    pub(super) fn charge(&mut self, cost: f64, now: Instant) {
        self.tokens -= cost;
        self.granted_total += cost;
        self.history.push_back((now, self.granted_total));
        while self
            .history
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > HISTORY)
        {
            self.history.pop_front();
        }
        if let Some(used) = self.used_at {
            // Idle stretches are no evidence: at most a second counts.
            let dt = now
                .saturating_duration_since(used)
                .min(Duration::from_secs(1));
            let grow = 1.0 + PROBE_PER_WINDOW * dt.as_secs_f64() / self.rate.window_secs;
            self.share = (self.share * grow).min(1.0);
        }
        self.used_at = Some(now);
    }

    /// A grant of `cost` that never reached Graph: taken out of the running
    /// total from `now` on, so that no measurement counts it as given.
    pub(super) fn not_sent(&mut self, cost: f64, now: Instant) {
        self.granted_total -= cost;
        self.history.push_back((now, self.granted_total));
    }

    /// Graph said this bucket is empty (a 429 naming it) to a request
    /// granted at `granted_at`, with room again after `retry_after`.
    /// Requests granted before we learnt of the last such 429 were sent
    /// before the daemon knew: they belong to that episode, one piece of
    /// evidence, so they only empty the mirror again.
    pub(super) fn throttled(&mut self, granted_at: Instant, retry_after: Duration, now: Instant) {
        self.refill(now);
        let learnt = self.learnt_at.is_some_and(|t| granted_at <= t);
        // Graph counted from the request's arrival, which the daemon does
        // not see: its grant stands for it at both ends of the episode.
        // A wild value (from a header) must not panic: then it says nothing.
        let room_at = granted_at.checked_add(retry_after).unwrap_or(now);
        if learnt {
            if let Some(e) = &mut self.episode {
                e.first = e.first.min(granted_at);
                e.refused += 1.0;
                e.room_at = e.room_at.max(room_at);
            }
        } else {
            let measured = self.learn_from_429(granted_at, now);
            self.episode = (!measured).then_some(Episode {
                first: granted_at,
                refused: 1.0,
                room_at,
                cap: self.share,
            });
        }
        self.believe_retry_after();
        // Retry-After is when the real bucket has room again: the mirror
        // must not believe it refilled any sooner.
        let debt = self.per_sec() * retry_after.as_secs_f64();
        self.tokens = self.tokens.min(1.0 - debt);
    }

    /// Whether the 429 measured the refill (a bracket within one window).
    fn learn_from_429(&mut self, granted_at: Instant, now: Instant) -> bool {
        // The real bucket was empty when the last refused request arrived
        // and is empty again: what we were granted in between is what it
        // gave (refused requests included: Graph charges them). Only a
        // bracket within one window measures it; a longer one may span
        // idle time and would understate it.
        let before = self.total_before(self.history.partition_point(|(t, _)| *t < granted_at));
        let measured = self.empty_at.and_then(|(at, total)| {
            let dt = granted_at.saturating_duration_since(at).as_secs_f64();
            (dt > 0.0 && dt <= self.rate.window_secs)
                .then(|| (before - total) / dt / self.rate.per_sec())
        });
        self.share = match measured {
            // At least 10% down: a 429 says the belief was too high. At
            // most to a quarter at once, in case the bracket misled.
            Some(m) => m.clamp(self.share * 0.25, self.share * 0.9),
            None => self.share * 0.5,
        }
        .max(MIN_SHARE);
        self.empty_at = Some((granted_at, before));
        self.learnt_at = Some(now);
        self.synced_at = now;
        // A new regime: what the bucket gave before this 429 says nothing
        // of what it gives now. Its level was nil then, an anchor.
        self.anchors.clear();
        self.anchor(0.0, granted_at);
        measured.is_some()
    }

    /// A first 429 with nothing to bracket it halves the share; the
    /// episode's Retry-Afters may say more. Graph charges refused requests
    /// too (throttling.md: ignoring Retry-After prolongs throttling), so
    /// from the first refused request's arrival to the latest moment Graph
    /// named for room again, the bucket gives back every refused request
    /// and one more: that is its refill, if the Retry-Afters are exact.
    /// Each is counted from its request's grant, the daemon's stand-in for
    /// the arrival. A value rounded up or padded only understates the
    /// refill, which costs throughput until the probe or a falling limit
    /// percentage finds the rest; the share never goes above the halving,
    /// and the next 429 (if any) brackets it. This spares the second round
    /// of 429s that resuming at half a documented rate cost when another
    /// app leaves a tenth of it.
    fn believe_retry_after(&mut self) {
        let Some(e) = &self.episode else { return };
        let secs = e.room_at.saturating_duration_since(e.first).as_secs_f64();
        if secs > 0.0 {
            let implied = (e.refused + 1.0) / secs / self.rate.per_sec();
            self.share = implied.max(MIN_SHARE).min(e.cap);
        }
    }

    /// The real level was at most `level` once the request granted at
    /// `granted_at` was charged: an anchor for [`Bucket::measure_refill`].
    /// One per hundredth of a window (the tightest) keeps the list short.
    pub(super) fn anchor(&mut self, level: f64, granted_at: Instant) {
        let total = self.total_through(granted_at);
        let spacing = Duration::from_secs_f64(self.rate.window_secs / ANCHORS_PER_WINDOW);
        match self.anchors.back_mut() {
            Some(last) if granted_at.saturating_duration_since(last.0) < spacing => {
                if level + total < last.1 + last.2 {
                    *last = (granted_at, level, total);
                }
            }
            _ => self.anchors.push_back((granted_at, level, total)),
        }
        let window = Duration::from_secs_f64(self.rate.window_secs);
        while self
            .anchors
            .front()
            .is_some_and(|a| granted_at.saturating_duration_since(a.0) > window)
        {
            self.anchors.pop_front();
        }
    }

    /// The real level was at least `level` once the request granted at
    /// `granted_at` was charged. Against an earlier upper bound, the rise
    /// plus what this app was granted in between is what the bucket gave
    /// it: a lower bound on the live refill, other apps' load included.
    /// This is how the daemon climbs back as soon as another app's load
    /// ends: a falling limit percentage is evidence, not a guess, so the
    /// share may rise to it at once. Spans shorter than a hundredth of a
    /// window are left out: the time an answer takes blurs them.
    pub(super) fn measure_refill(&mut self, level: f64, granted_at: Instant) {
        let total = self.total_through(granted_at);
        let shortest = self.rate.window_secs / ANCHORS_PER_WINDOW;
        let best = self
            .anchors
            .iter()
            .filter_map(|&(at, upper, before)| {
                let dt = granted_at.saturating_duration_since(at).as_secs_f64();
                (dt >= shortest).then(|| (level - upper + total - before) / dt)
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let measured = best / self.rate.per_sec();
        if measured.is_finite() && measured > self.share {
            self.share = measured.min(1.0);
        }
    }

    /// The running total through every grant made at or before `at`.
    fn total_through(&self, at: Instant) -> f64 {
        self.total_before(self.history.partition_point(|(t, _)| *t <= at))
    }

    /// Graph reported that this bucket was at most `used` full (the most
    /// used limit the request counted against; 0.8 when no header came)
    /// when the request granted at `granted_at` reached it. What was granted
    /// since is in flight or later, so it is no sign of a higher ceiling.
    pub(super) fn at_most_used(&mut self, used: f64, granted_at: Instant, now: Instant) {
        self.refill(now);
        let since = self.granted_after(granted_at);
        // The reserve stays below the reported level too: it absorbs the
        // jitter between our grants and Graph's metering.
        let floor = (self.rate.capacity * (1.0 - used - RESERVE) - since).min(self.capacity);
        if floor > self.tokens {
            let missed = floor - self.tokens;
            let dt = now.saturating_duration_since(self.synced_at).as_secs_f64();
            if dt > 0.0 {
                self.share = (self.share + missed / dt / self.rate.per_sec()).min(1.0);
            }
            self.tokens = floor;
            self.synced_at = now;
        }
    }

    /// Graph reported that this bucket may be `used` full: the mirror
    /// lowers its tokens to match (its rate is left to the 429s to judge).
    pub(super) fn may_be_used(&mut self, used: f64, granted_at: Instant, now: Instant) {
        self.refill(now);
        let since = self.granted_after(granted_at);
        let level = self.rate.capacity * (1.0 - used) - since;
        self.tokens = self.tokens.min(level);
    }

    /// What was granted after `at` (as far as the recent history reaches).
    fn granted_after(&self, at: Instant) -> f64 {
        self.granted_total - self.total_before(self.history.partition_point(|(t, _)| *t <= at))
    }

    /// The running total before the `i`-th remembered grant.
    fn total_before(&self, i: usize) -> f64 {
        match i.checked_sub(1) {
            Some(j) => self.history[j].1,
            None => self.history.front().map_or(self.granted_total, |h| h.1),
        }
    }
}
