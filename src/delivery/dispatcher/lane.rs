//! One endpoint's lane: its queue of ids, its claims, its POSTs in flight, and what paces
//! its new POSTs (its learnt limit, its rate limit, a rate after a 429; for a receiver that
//! closes each connection, one new connection at a time).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{PACE_BURST, QUICK};
use crate::delivery::limit::Limit;

/// The window over which an endpoint's send rate is counted.
const METER_WINDOW: Duration = Duration::from_secs(1);

/// Where a paused endpoint is in its hold (`domain::hold`: its receiver is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Waits for its next check (after an answer 429/5xx: for its one delivery).
    Until(Instant),
    /// A check is under way.
    Checking,
    /// The check passed: one delivery may go alone.
    ProbeReady,
    /// That delivery is claimed or out; its answer decides.
    Probing,
}

#[derive(Debug)]
pub(super) struct Lane {
    /// Pending in the store, not claimed yet, oldest first.
    pub(super) queue: VecDeque<String>,
    /// Highest id ever queued here: later ids from the store or a commit come after it.
    pub(super) tail: String,
    /// Highest id a read of the store returned: a commit notice at or below it was read
    /// already (or will be by the next read, after `tail`).
    pub(super) read_through: String,
    /// Claimed (durably marked), waiting for a worker.
    pub(super) claimed: VecDeque<String>,
    /// Asked to be claimed, commit not answered yet.
    pub(super) claiming: usize,
    /// When each delivery handed to a worker and not done yet was handed out.
    pub(super) in_flight: Vec<Instant>,
    /// Moving average of recent send durations, in ms; `None` before the first.
    pub(super) recent_ms: Option<f64>,
    pub(super) rate_limit_per_sec: Option<u32>,
    pub(super) next_at: Option<Instant>,
    /// More pending deliveries wait in the store than the window holds.
    pub(super) overflow: bool,
    /// The POSTs it may have in flight, learnt from its receiver.
    pub(super) limit: Limit,
    /// Pace credit: POSTs it may start now, up to `PACE_BURST`, and when it was counted.
    pub(super) credit: f64,
    pub(super) credit_at: Option<Instant>,
    /// Set while the endpoint is paused: it claims nothing but its one probe.
    pub(super) hold: Option<Hold>,
    /// Deliveries waiting behind its pause, as its last check counted them.
    pub(super) held_waiting: usize,
    /// After a 429 pause: a rate (per second) it keeps to until then, under its own limit.
    pub(super) cooling: Option<(u32, Instant)>,
    /// Its send rate: POSTs started in the current second, and the last full second's rate.
    pub(super) meter: (Option<Instant>, u32, f64),
}

impl Lane {
    /// Forgets what was queued from where: the next refill reads the lane's pending
    /// deliveries from the start (what is queued or claimed already is not queued twice).
    pub(super) fn reread(&mut self) {
        self.tail.clear();
        self.read_through.clear();
        self.overflow = true;
    }

    pub(super) fn new(rate: Option<u32>, limit: Limit) -> Self {
        Self {
            limit,
            credit: PACE_BURST,
            credit_at: None,
            hold: None,
            cooling: None,
            held_waiting: 0,
            meter: (None, 0, 0.0),
            queue: VecDeque::new(),
            tail: String::new(),
            read_through: String::new(),
            claimed: VecDeque::new(),
            claiming: 0,
            in_flight: Vec::new(),
            recent_ms: None,
            rate_limit_per_sec: rate,
            next_at: None,
            overflow: false,
        }
    }

    /// How many POSTs it may start at once before its pace spaces them: for a receiver that
    /// closes its connections, one (each is a new connection through its listen backlog).
    pub(super) fn burst(&self) -> f64 {
        if self.limit.closing() {
            1.0
        } else {
            PACE_BURST
        }
    }

    /// Its rate limit at `now`: the endpoint's own, or lower while cooling after a 429.
    pub(super) fn rate(&self, now: Instant) -> Option<u32> {
        let own = self.rate_limit_per_sec.filter(|r| *r > 0);
        let cool = self
            .cooling
            .filter(|(_, until)| now < *until)
            .map(|(r, _)| r);
        match (own, cool) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counts a POST started at `now` into its send rate.
    pub(super) fn meter_send(&mut self, now: Instant) {
        let (since, count, last) = &mut self.meter;
        match since {
            Some(t) if now.duration_since(*t) < METER_WINDOW => *count += 1,
            Some(t) => {
                *last = f64::from(*count) / now.duration_since(*t).as_secs_f64();
                *since = Some(now);
                *count = 1;
            }
            None => {
                *since = Some(now);
                *count = 1;
            }
        }
    }

    /// Its recent send rate, per second: the higher of the last full window's and the current.
    pub(super) fn sent_per_sec(&self, now: Instant) -> f64 {
        let (since, count, last) = self.meter;
        let current = since.map_or(0.0, |t| {
            f64::from(count)
                / now
                    .duration_since(t)
                    .as_secs_f64()
                    .max(METER_WINDOW.as_secs_f64())
        });
        last.max(current)
    }

    pub(super) fn ready_at(&self, now: Instant) -> bool {
        self.next_at.is_none_or(|t| t <= now)
    }

    /// Pace credit at `now`: refilled at one per `pace`, up to `PACE_BURST`.
    pub(super) fn credit(&self, now: Instant) -> f64 {
        match (self.limit.pace(), self.credit_at) {
            (Some(pace), Some(at)) if !pace.is_zero() => (self.credit
                + now.saturating_duration_since(at).as_secs_f64() / pace.as_secs_f64())
            .min(self.burst()),
            _ => self.burst(),
        }
    }

    /// A probe whose claim found nothing (or failed): ready for another.
    pub(super) fn probe_lost(&mut self) {
        if self.hold == Some(Hold::Probing)
            && self.claiming == 0
            && self.claimed.is_empty()
            && self.in_flight.is_empty()
        {
            self.hold = Some(Hold::ProbeReady);
        }
    }

    /// When it may start its next POST by its pace, if it must wait.
    pub(super) fn paced_until(&self, now: Instant) -> Option<Instant> {
        let credit = self.credit(now);
        let pace = self.limit.pace()?;
        (credit < 1.0).then(|| now + pace.mul_f64(1.0 - credit))
    }

    pub(super) fn spend_credit(&mut self, now: Instant) {
        self.credit = self.credit(now) - 1.0;
        self.credit_at = Some(now);
    }

    /// Has work that it cannot hand out for want of claims or workers, within its share and
    /// limit (a lane held back by its rate limit does not wait for workers).
    pub(super) fn waiting(&self, share: usize, now: Instant) -> bool {
        self.hold.is_none()
            && self.in_flight.len() < share.min(self.limit.allowed())
            && self.ready_at(now)
            && (!self.claimed.is_empty() || !self.queue.is_empty() || self.claiming > 0)
    }

    /// Known to be slow: a finished send took long on average, or one in flight has.
    pub(super) fn slow(&self, now: Instant) -> bool {
        let quick_ms = QUICK.as_secs_f64() * 1000.0;
        self.recent_ms.is_some_and(|ms| ms >= quick_ms)
            || self
                .in_flight
                .iter()
                .any(|t| now.saturating_duration_since(*t) >= QUICK)
    }

    /// Nothing to do and nothing to remember: its rate-limit gap (if any) is over.
    pub(super) fn idle(&self, now: Instant) -> bool {
        self.hold.is_none()
            && self.queue.is_empty()
            && self.claimed.is_empty()
            && self.claiming == 0
            && self.in_flight.is_empty()
            && !self.overflow
            && self.next_at.is_none_or(|t| t <= now)
            && self.cooling.is_none_or(|(_, until)| until <= now)
    }
}
