//! One endpoint's adaptive in-flight limit: how many POSTs it may have under way, learnt from
//! its own delivery times. A pure state machine fed with samples and a clock.
//!
//! The model is TCP Vegas as Netflix's concurrency-limits applies it, with Envoy's re-measured
//! floor and TCP's pacing and slow start. Time is cut into rounds of about `limit` completed
//! POSTs (one round trip's worth). Each round's time is its 90th percentile (a queue forming
//! at a receiver, connections waiting to be accepted, shows in its slowest POSTs before it
//! moves the mean; steady jitter leaves the percentile of a large round steady too). The
//! *floor* is the lowest round time (the receiver's time when we add no queue of our own),
//! and the queue we cause is estimated as `queue = limit × (1 − floor ÷ round time)`. Below
//! `alpha` (2 × log10 of the limit, at least 2) the limit grows: doubling each round in slow
//! start, then by √limit, and by one a round near where the receiver last failed. Above
//! `beta` (3 × log10, at least 3) it falls to what the receiver was seen to serve
//! (`limit − queue`) plus `alpha`, at most halving. A connection-level failure or a timeout
//! halves it at once (once per round). The first round's fastest POST tells the first floor;
//! every `REMEASURE_EVERY` the floor is measured again at a quarter of the limit, so a
//! receiver that got slower for good is followed, and a queue of our own making never
//! becomes the floor. `pace()` spreads new POSTs over the floor.
//!
//! A receiver that closes each connection (HTTP/1.0, a quick `http.server`) takes every POST
//! through its listen backlog, and the kernel drops what exceeds it: those webhooks are lost.
//! Its only queue is that backlog, a few connections deep, so its limit is kept to a queue
//! of one or two connections, whatever the limit (`alpha` 1, `beta` 2), estimated from round
//! means (each waiting connection adds its wait to the mean, where a few waiting among many
//! threads leave the 90th percentile where it was). It never doubles (a doubled round
//! overflows a small backlog before its slower times come back); it grows by at most
//! `CLOSING_STEP` a round, and by one once a queue shows; only from a round that held its
//! limit for most of its POSTs (a limit raised while half used was never tried); and not
//! again on a round that still holds POSTs started before the last growth (their times tell
//! of the smaller limit).

use std::time::{Duration, Instant};

/// Where an endpoint starts when it is alone on the queue.
pub const START: f64 = 4.0;
/// How often the floor is measured again.
pub const REMEASURE_EVERY: Duration = Duration::from_secs(30);
/// Times below this are taken as this: a queue that adds less than 2 ms is no queue a
/// receiver suffers from, while on a busy machine our own scheduling moves sub-millisecond
/// times by more than they are (an instant receiver would look congested).
const MIN_TIME_MS: f64 = 2.0;
/// How far above the floor a much larger round may lie and still replace it.
const STEADIER: f64 = 1.25;
/// The most a closing receiver's limit grows by in a round (`set_closing`): fewer than the
/// connections the smallest common listen backlog queues (Python's 5 queue 6).
const CLOSING_STEP: f64 = 4.0;
/// Samples a re-measurement needs, at least.
const REMEASURE_SAMPLES: usize = 4;

/// What one POST came to, as the limit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An answer came back (whatever its status): its time counts.
    Answered,
    /// A connection-level failure (refused, reset, handshake) or a timeout: too much.
    Dropped,
    /// Nothing the receiver's load explains (blocked by policy, not sent): ignored.
    Ignored,
}

/// Why a limit went down (counted in aggregate by `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decrease {
    /// A connection-level failure or a timeout.
    Error,
    /// Delivery times rose above the floor.
    Latency,
}

impl Decrease {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Latency => "latency",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Doubling each round while times stay near the floor.
    SlowStart,
    /// Growing and shrinking by the queue estimate.
    Avoid,
    /// Held at a quarter while the floor is measured again; `resume` is the limit after.
    Remeasure { resume: f64, since: Instant },
}

#[derive(Debug, Clone)]
pub struct Limit {
    limit: f64,
    ceiling: f64,
    phase: Phase,
    /// The receiver's time without a queue of ours, in ms, and the size of the round that
    /// told it (a larger round's word is steadier).
    floor: Option<(f64, usize)>,
    floor_at: Instant,
    /// Answers a re-measurement still needs.
    measure_left: usize,
    /// This round: samples seen (answers and drops) and the answers' times.
    round_n: usize,
    round: Round,
    /// The limit at which the last connection-level failure or timeout came: growth near it
    /// is by one a round.
    failed_at: Option<f64>,
    /// Samples this round at which the endpoint used its limit: at least half of it, or for
    /// a closing receiver all of it. A round without any (for a closing receiver, one not
    /// at its limit for most of it) did not ask for more, and its times say nothing of
    /// more.
    round_used: usize,
    halved_this_round: bool,
    /// The receiver takes each POST on a new connection (`set_closing`).
    closing: bool,
    /// For a closing receiver: the lowest round mean, in ms (its queue is estimated from
    /// means: each waiting connection adds to the mean what Vegas's estimate counts, where
    /// a few waiting among many threads do not move the 90th percentile).
    floor_mean: Option<f64>,
    /// For a closing receiver: when its limit last grew, and whether this round holds a POST
    /// started before (its times tell of the smaller limit: it may not grow again on them).
    grown_at: Option<Instant>,
    round_stale: bool,
}

/// A round's POST times, in ms.
#[derive(Debug, Clone, Default)]
struct Round {
    times: Vec<f64>,
}

impl Round {
    fn add(&mut self, ms: f64) {
        self.times.push(ms);
    }

    fn n(&self) -> usize {
        self.times.len()
    }

    fn mean(&self) -> f64 {
        self.times.iter().sum::<f64>() / self.times.len().max(1) as f64
    }

    fn clear(&mut self) {
        self.times.clear();
    }

    /// The round's 90th percentile: a queue forming at a receiver (connections waiting to be
    /// accepted) shows in its slowest POSTs well before it moves the mean, while steady
    /// jitter leaves it steady too.
    fn low(&self) -> f64 {
        self.times.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn high(&mut self) -> f64 {
        let t = &mut self.times;
        t.sort_unstable_by(f64::total_cmp);
        let i = (t.len() * 9).div_ceil(10).max(1) - 1;
        t.get(i).copied().unwrap_or(0.0)
    }
}

fn log10(limit: f64) -> f64 {
    limit.log10().max(1.0)
}

impl Limit {
    /// A new endpoint's limit: `start` (at most `START`), up to `ceiling`.
    pub fn new(start: f64, ceiling: usize, now: Instant) -> Self {
        let ceiling = (ceiling.max(1)) as f64;
        let limit = start.clamp(1.0, START).min(ceiling);
        Self {
            limit,
            ceiling,
            phase: Phase::SlowStart,
            floor: None,
            floor_at: now,
            measure_left: 0,
            round_n: 0,
            round: Round::default(),
            failed_at: None,
            round_used: 0,
            halved_this_round: false,
            closing: false,
            floor_mean: None,
            grown_at: None,
            round_stale: false,
        }
    }

    /// POSTs this endpoint may have in flight now (at least one).
    pub fn allowed(&self) -> usize {
        let l = match self.phase {
            Phase::Remeasure { resume, .. } => (resume / 4.0).max(1.0),
            _ => self.limit,
        };
        (l.floor() as usize).max(1)
    }

    /// The limit as learnt (during a re-measurement, the one it returns to).
    pub fn value(&self) -> f64 {
        match self.phase {
            Phase::Remeasure { resume, .. } => resume,
            _ => self.limit,
        }
    }

    /// The gap between two POSTs that spreads a limit's worth over the floor: new POSTs are
    /// paced at this, so that a round's answers arriving together do not turn into a burst
    /// of new connections (a listen backlog of 5 drops what exceeds it).
    ///
    /// As Linux paces TCP: at twice the limit per floor in slow start (so that a round that
    /// doubles is not stretched over two), at 1.2 times after.
    pub fn pace(&self) -> Option<Duration> {
        let factor = if self.in_slow_start() { 2.0 } else { 1.2 };
        let ms = self.floor_ms()? / (self.allowed() as f64 * factor);
        Some(Duration::from_secs_f64(ms / 1000.0))
    }

    pub fn floor_ms(&self) -> Option<f64> {
        self.floor.map(|(ms, _)| ms)
    }

    pub fn in_slow_start(&self) -> bool {
        self.phase == Phase::SlowStart
    }

    /// Whether the receiver takes each POST on a new connection (it closes the connection
    /// after each answer): see the module's note on closing receivers.
    pub fn set_closing(&mut self, closing: bool) {
        self.closing = closing;
        if closing && self.phase == Phase::SlowStart {
            self.phase = Phase::Avoid;
        }
    }

    /// Whether its receiver closes each connection (as its last answer said).
    pub fn closing(&self) -> bool {
        self.closing
    }

    fn start_round(&mut self) {
        self.round_n = 0;
        self.round.clear();
        self.round_used = 0;
        self.round_stale = false;
        self.halved_this_round = false;
    }

    pub fn set_ceiling(&mut self, ceiling: usize) {
        self.ceiling = ceiling.max(1) as f64;
        self.limit = self.limit.min(self.ceiling);
    }

    /// One POST finished after `took` (the POST alone), handed out at `handed_at`, with
    /// `in_flight` of this endpoint's limit in use (itself included: POSTs under way and,
    /// but for a closing receiver, deliveries claimed to go next). Returns a decrease if the
    /// limit went down.
    pub fn on_sample(
        &mut self,
        now: Instant,
        handed_at: Instant,
        took: Duration,
        signal: Signal,
        in_flight: usize,
    ) -> Option<Decrease> {
        if signal == Signal::Ignored {
            return None;
        }
        if signal == Signal::Dropped {
            return self.on_drop();
        }
        let ms = (took.as_secs_f64() * 1000.0).max(MIN_TIME_MS);
        if let Phase::Remeasure { resume, since } = self.phase {
            // Only POSTs started at the reduced limit tell the floor.
            if handed_at < since {
                return None;
            }
            self.round.add(ms);
            self.measure_left = self.measure_left.saturating_sub(1);
            if self.measure_left == 0 {
                self.floor_mean = Some(self.round.mean());
                self.floor = Some((self.round.high(), self.round.n()));
                self.floor_at = now;
                self.limit = resume;
                self.phase = Phase::Avoid;
                self.start_round();
            }
            return None;
        }
        self.round_n += 1;
        self.round.add(ms);
        if self.grown_at.is_some_and(|g| handed_at < g) {
            self.round_stale = true;
        }
        let used = if self.closing {
            in_flight as f64 >= self.limit.floor()
        } else {
            in_flight as f64 * 2.0 >= self.limit
        };
        if used {
            self.round_used += 1;
        }
        if self.round_n < (self.limit.floor() as usize).max(1) {
            return None;
        }
        self.end_round(now)
    }

    fn on_drop(&mut self) -> Option<Decrease> {
        match &mut self.phase {
            Phase::Remeasure { resume, .. } => {
                // The floor stays as it was (or unknown, and measured by the next rounds).
                self.failed_at = Some(*resume);
                self.limit = (*resume / 2.0).max(1.0);
                self.phase = Phase::Avoid;
                self.start_round();
                self.halved_this_round = true;
                Some(Decrease::Error)
            }
            _ => {
                self.phase = Phase::Avoid;
                self.round_n += 1;
                let halved = !self.halved_this_round;
                if halved {
                    self.failed_at = Some(self.limit);
                    self.limit = (self.limit / 2.0).max(1.0);
                    self.halved_this_round = true;
                }
                if self.round_n >= (self.limit.floor() as usize).max(1) {
                    self.start_round();
                }
                halved.then_some(Decrease::Error)
            }
        }
    }

    fn end_round(&mut self, now: Instant) -> Option<Decrease> {
        let n = self.round.n();
        // The first round tells the first floor by its fastest POST (the receiver's time
        // with no queue ahead of it); later rounds by their 90th percentile.
        let first = self.floor.is_none().then(|| self.round.low());
        let high = self.round.high();
        let round_mean = self.round.mean();
        let stale = self.round_stale;
        let busy = if self.closing {
            self.round_used * 2 >= n.max(1)
        } else {
            self.round_used > 0
        };
        self.start_round();
        if n == 0 {
            return None;
        }
        let (mean, candidate) = (high, high);
        self.floor = Some(match self.floor {
            // A round four times larger than the one that told the floor, and not far above
            // it, is the steadier word: what it adds is noise, not a queue (rounds grow only
            // while no queue shows, and a queue of ours shows as times far above the floor).
            Some((ms, of)) if n >= 4 * of && candidate <= ms * STEADIER => (candidate, n),
            Some((ms, _)) if candidate < ms && n >= 2 => (candidate, n),
            Some(floor) => floor,
            None => (first.unwrap_or(candidate), 1),
        });
        let floor = self.floor_ms().unwrap_or(mean).min(mean);
        let l = self.limit;
        let queue = if self.closing {
            let floor = self.floor_mean.map_or(round_mean, |f| f.min(round_mean));
            self.floor_mean = Some(floor);
            l * (1.0 - floor / round_mean)
        } else {
            l * (1.0 - floor / mean)
        };
        // A closing receiver's queue is its listen backlog, which drops what exceeds it: a
        // queue of a connection or two, whatever the limit.
        let (alpha, beta) = if self.closing {
            (1.0, 2.0)
        } else {
            (2.0 * log10(l), 3.0 * log10(l))
        };
        let mut decrease = None;
        if queue > beta {
            // What the receiver was seen to serve at once, and a small queue beside it.
            self.limit = ((l - queue) + alpha).max(l / 2.0).max(1.0);
            self.phase = Phase::Avoid;
            decrease = Some(Decrease::Latency);
        } else if queue >= alpha {
            self.phase = Phase::Avoid;
        } else if busy && !(self.closing && stale) {
            self.grown_at = Some(now);
            self.limit = match self.phase {
                Phase::SlowStart => l * 2.0,
                // Near where the receiver last failed: carefully.
                _ if self.failed_at.is_some_and(|f| l + l.sqrt() >= f) => l + 1.0,
                // A receiver whose only queue is its listen backlog: a round that filled
                // its limit with no queue showing had a thread for each POST, so a few more
                // can wait in the smallest backlog (Python's 5); once one shows, one more.
                _ if self.closing && queue < 0.5 => l + l.sqrt().min(CLOSING_STEP),
                _ if self.closing => l + 1.0,
                _ => l + l.sqrt(),
            }
            .min(self.ceiling);
        }
        if now.saturating_duration_since(self.floor_at) >= REMEASURE_EVERY {
            self.floor_at = now;
            self.phase = Phase::Remeasure {
                resume: self.limit,
                since: now,
            };
            self.measure_left = REMEASURE_SAMPLES.max((self.limit / 4.0).max(1.0) as usize);
        }
        decrease
    }
}

#[cfg(test)]
mod tests;
