//! Fair dispatch: one small queue per endpoint, fed from the store. Deliveries are claimed
//! (durably marked as possibly sent) just ahead of the workers, in groups, so that no send
//! waits for a commit; then handed to idle workers round-robin.
//!
//! How many POSTs an endpoint may have in flight is its adaptive limit (`limit.rs`: it starts
//! small and follows the receiver's delivery times). Fairness sits on top: every endpoint is
//! guaranteed up to a quarter of the pool (`share`) within its limit; beyond it, an endpoint
//! may use idle workers up to its limit while no other endpoint waits within its share, and
//! a few workers (`reserve`) stay free for an endpoint that turns up with work. Endpoints
//! known to be slow (sends over `QUICK`) hold at most half the pool between them. Claims
//! ahead are bounded in total (`ahead`), whatever the pool's size, and only an endpoint
//! below its limit claims: so a crash leaves at most the POSTs in flight plus `ahead`
//! deliveries `interrupted`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::limit::{Decrease, Limit, START, Signal};
use crate::domain::Claim;

mod holds;
mod lane;
mod window;

pub use lane::Hold;
use lane::Lane;

/// How many ids of one endpoint are kept in memory; the rest is re-read from the store.
pub const LANE_WINDOW: usize = 512;
/// An endpoint whose sends take longer than this (on average, or any one in flight) is slow.
pub const QUICK: Duration = Duration::from_secs(1);
/// POSTs an endpoint may start at once before pacing spaces them (its pace credit): more at
/// once is a burst of new connections that a small listen backlog drops.
pub const PACE_BURST: f64 = 4.0;
/// How long an endpoint's learnt limit is remembered after its lane went idle.
pub const REMEMBER_LIMIT: Duration = Duration::from_secs(300);
/// How long an endpoint reopened after a 429 keeps to half the rate that drew it.
pub const COOLING: Duration = Duration::from_secs(600);

/// The dispatcher's state and decisions, free of threads and I/O so tests can drive it.
#[derive(Debug)]
pub struct Lanes {
    lanes: HashMap<String, Lane>,
    /// The pool's size: the most POSTs in flight.
    workers: usize,
    /// What every endpoint is guaranteed, and what a slow one is held to.
    share: usize,
    /// Workers kept free for an endpoint with new work while others use idle ones.
    reserve: usize,
    /// Most deliveries claimed and not yet handed to a worker, all endpoints together.
    ahead: usize,
    /// Round-robin positions: one for claiming, one for handing out.
    turns: [usize; 2],
    /// Nodes sharing the queue: this one enforces its part of every share and rate limit.
    nodes: usize,
    /// Limits of endpoints whose lanes went idle, and when: a burst soon after starts from
    /// what was learnt.
    learnt: HashMap<String, (Limit, Instant)>,
}

impl Lanes {
    pub fn new(workers: usize, ahead: usize) -> Self {
        let workers = workers.max(1);
        Self {
            lanes: HashMap::new(),
            workers,
            share: (workers / 4).max(1),
            reserve: (workers / 32).clamp(1, 16).min(workers - 1),
            ahead: ahead.max(1),
            turns: [0, 0],
            nodes: 1,
            learnt: HashMap::new(),
        }
    }

    /// With `nodes` nodes on one queue, this one keeps to 1/`nodes` of an endpoint's share
    /// and of its rate limit.
    pub fn set_nodes(&mut self, nodes: usize) {
        let nodes = nodes.max(1);
        if nodes != self.nodes {
            self.nodes = nodes;
            self.share = (self.workers / 4 / nodes).max(1);
        }
    }

    pub fn share(&self) -> usize {
        self.share
    }

    fn lane(&mut self, endpoint: &str, rate: Option<u32>) -> &mut Lane {
        if !self.lanes.contains_key(endpoint) {
            // Each node starts its part of the small start.
            let limit = match self.learnt.remove(endpoint) {
                Some((limit, _)) => limit,
                None => Limit::new(START / self.nodes as f64, self.workers, Instant::now()),
            };
            self.lanes
                .insert(endpoint.to_owned(), Lane::new(rate, limit));
        }
        self.lanes.get_mut(endpoint).expect("inserted above")
    }

    /// Lanes in a fair order: a different one first each time (`which` keeps claiming and
    /// handing out on separate turns).
    fn rotation(&mut self, which: usize) -> Vec<String> {
        let mut keys: Vec<String> = self.lanes.keys().cloned().collect();
        keys.sort_unstable();
        if !keys.is_empty() {
            self.turns[which] = (self.turns[which] + 1) % keys.len();
            keys.rotate_left(self.turns[which]);
        }
        keys
    }

    /// How many of this lane's deliveries may be in flight now: its limit, leaving the reserve.
    fn allowance(&self, lane: &Lane) -> usize {
        lane.limit.allowed().min(self.workers - self.reserve).max(1)
    }

    /// An endpoint's limit as learnt so far (tests and the benchmark's checks).
    pub fn limit_of(&self, endpoint: &str) -> Option<usize> {
        self.lanes.get(endpoint).map(|l| l.limit.allowed())
    }

    /// Claimed and not yet handed out, or being claimed: what a crash could leave behind
    /// besides the POSTs in flight.
    pub fn claimed_ahead(&self) -> usize {
        self.lanes
            .values()
            .map(|l| l.claimed.len() + l.claiming)
            .sum()
    }

    /// Deliveries to claim now, round-robin across the endpoints that could hand them out
    /// (in flight below their allowance), within the total `ahead`. `queued_for_workers` are
    /// handed out but not yet taken by a worker: they count against `ahead` too.
    pub fn to_claim(&mut self, queued_for_workers: usize) -> Vec<Claim> {
        let mut budget = self
            .ahead
            .saturating_sub(self.claimed_ahead() + queued_for_workers);
        let order = self.rotation(0);
        let room: HashMap<String, usize> = order
            .iter()
            .map(|ep| {
                let lane = &self.lanes[ep];
                let have = lane.in_flight.len() + lane.claimed.len() + lane.claiming;
                let room = match lane.hold {
                    None => self.allowance(lane).saturating_sub(have),
                    // A paused endpoint's one delivery, alone.
                    Some(Hold::ProbeReady) if have == 0 => 1,
                    Some(_) => 0,
                };
                (ep.clone(), room)
            })
            .collect();
        let mut room = room;
        let mut out = Vec::new();
        let mut progress = true;
        while progress && budget > 0 {
            progress = false;
            for ep in &order {
                if budget == 0 {
                    break;
                }
                let r = room.get_mut(ep).expect("every lane has room counted");
                if *r == 0 {
                    continue;
                }
                let lane = self.lanes.get_mut(ep).expect("listed lanes exist");
                if let Some(id) = lane.queue.pop_front() {
                    if lane.hold == Some(Hold::ProbeReady) {
                        lane.hold = Some(Hold::Probing);
                    }
                    lane.claiming += 1;
                    out.push(Claim::new(ep, id));
                    *r -= 1;
                    budget -= 1;
                    progress = true;
                }
            }
        }
        out
    }

    /// The answer to a claim: `asked` were requested, `claimed` of them were still pending.
    /// Returns what a paused endpoint must give back (claimed just as it was paused).
    pub fn on_claimed(&mut self, asked: &[Claim], claimed: Vec<Claim>) -> Vec<Claim> {
        for c in asked {
            if let Some(lane) = self.lanes.get_mut(&c.endpoint_id) {
                lane.claiming = lane.claiming.saturating_sub(1);
            }
        }
        let mut back = Vec::new();
        for c in claimed {
            if let Some(lane) = self.lanes.get_mut(&c.endpoint_id) {
                match lane.hold {
                    None | Some(Hold::Probing) => lane.claimed.push_back(c.delivery_id),
                    Some(_) => back.push(c),
                }
            }
        }
        for c in asked {
            if let Some(lane) = self.lanes.get_mut(&c.endpoint_id) {
                lane.probe_lost();
            }
        }
        back
    }

    /// A claim that could not be written: the lanes re-read their pending deliveries from the
    /// store instead of trusting what they had queued.
    pub fn on_claim_failed(&mut self, asked: &[Claim]) {
        for c in asked {
            if let Some(lane) = self.lanes.get_mut(&c.endpoint_id) {
                lane.claiming = lane.claiming.saturating_sub(1);
                lane.probe_lost();
                lane.reread();
            }
        }
    }

    /// POSTs in flight, all endpoints together.
    pub fn in_flight(&self) -> usize {
        self.lanes.values().map(|l| l.in_flight.len()).sum()
    }

    /// Claimed deliveries to hand to idle workers now: first round-robin within each
    /// endpoint's share and limit; then, with workers still idle beyond the reserve and nobody
    /// waiting within a share, up to each endpoint's limit. Endpoints known to be slow hold
    /// at most half the pool together. Always within rate limits. A rate-limited endpoint's
    /// delivery goes out only when no other job is queued for the workers
    /// (`idle_worker_likely`), so jobs cannot bunch up and leave together.
    pub fn hand_out(
        &mut self,
        idle_workers: usize,
        idle_worker_likely: bool,
        now: Instant,
    ) -> Vec<Claim> {
        let order = self.rotation(1);
        let mut out = Vec::new();
        let share = self.share;
        let cap = self.workers - self.reserve;
        // Endpoints known to be slow share half the pool between them: several dead ones
        // together cannot take it all.
        let slow_cap = (self.workers / 2).max(1);
        let mut slow_in_flight: usize = self
            .lanes
            .values()
            .filter(|l| l.slow(now))
            .map(|l| l.in_flight.len())
            .sum();
        let mut within = |l: &Lane, most: usize| {
            if l.hold.is_some_and(|h| h != Hold::Probing)
                || l.in_flight.len() >= most.min(l.limit.allowed()).min(cap)
            {
                return false;
            }
            if l.slow(now) {
                if slow_in_flight >= slow_cap {
                    return false;
                }
                slow_in_flight += 1;
            }
            true
        };
        self.hand_out_pass(
            &order,
            idle_workers,
            idle_worker_likely,
            now,
            &mut out,
            |l| within(l, share),
        );
        let nobody_waits = !self.lanes.values().any(|l| l.waiting(share, now));
        if nobody_waits && idle_workers.saturating_sub(out.len()) > self.reserve {
            let limit = idle_workers - self.reserve;
            self.hand_out_pass(&order, limit, idle_worker_likely, now, &mut out, |l| {
                within(l, usize::MAX)
            });
        }
        out
    }

    fn hand_out_pass(
        &mut self,
        order: &[String],
        limit: usize,
        idle_worker_likely: bool,
        now: Instant,
        out: &mut Vec<Claim>,
        mut may: impl FnMut(&Lane) -> bool,
    ) {
        let mut progress = true;
        while out.len() < limit && progress {
            progress = false;
            for ep in order {
                if out.len() == limit {
                    break;
                }
                let lane = self.lanes.get_mut(ep).expect("listed lanes exist");
                let rate = lane.rate(now);
                let limited = rate.is_some();
                if lane.claimed.is_empty()
                    || !may(lane)
                    || !lane.ready_at(now)
                    || lane.credit(now) < 1.0
                    || (limited && (!idle_worker_likely || !out.is_empty()))
                {
                    continue;
                }
                let id = lane.claimed.pop_front().expect("checked above");
                lane.in_flight.push(now);
                lane.spend_credit(now);
                lane.meter_send(now);
                if let Some(rate) = rate {
                    let gap = Duration::from_secs_f64(self.nodes as f64 / f64::from(rate));
                    lane.next_at = Some(lane.next_at.map_or(now, |t| t.max(now)) + gap);
                }
                out.push(Claim::new(ep, id));
                progress = true;
            }
        }
    }

    /// Whether the endpoint's receiver closed the connection after its last answer.
    pub fn note_connection(&mut self, endpoint: &str, closes: bool) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.limit.set_closing(closes);
        }
    }

    /// A worker finished with one of this endpoint's deliveries, handed out at `handed_at`:
    /// its POST took `took` and came to `signal`. Returns a decrease of its limit, if any.
    pub fn on_done(
        &mut self,
        endpoint: &str,
        handed_at: Instant,
        took: Duration,
        signal: Signal,
        now: Instant,
    ) -> Option<Decrease> {
        let lane = self.lanes.get_mut(endpoint)?;
        // What it uses of its limit: in flight, and claimed to go next (a quick receiver's
        // POSTs end before the next claim is committed; its limit must still grow to claim
        // in groups). For a receiver that closes its connections only POSTs under way
        // count: its limit is connections waiting in its listen backlog, and one raised on
        // claims never tried would overflow it.
        let waiting = if lane.limit.closing() {
            0
        } else {
            lane.claimed.len() + lane.claiming
        };
        let in_use = lane.in_flight.len() + waiting;
        if let Some(i) = lane.in_flight.iter().position(|t| *t == handed_at) {
            lane.in_flight.swap_remove(i);
        } else {
            lane.in_flight.pop();
        }
        if signal == Signal::Ignored {
            return None;
        }
        let ms = took.as_secs_f64() * 1000.0;
        lane.recent_ms = Some(lane.recent_ms.map_or(ms, |avg| avg * 0.8 + ms * 0.2));
        lane.limit.on_sample(now, handed_at, took, signal, in_use)
    }

    /// When the next lane held back only by its rate limit or its pace may send again, or a
    /// paused one is due for its check.
    pub fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let check = self
            .lanes
            .values()
            .filter_map(|l| match l.hold {
                Some(Hold::Until(t)) => Some(t),
                _ => None,
            })
            .min();
        let send = self
            .lanes
            .values()
            .filter(|l| !l.claimed.is_empty())
            .filter_map(|l| {
                // Its rate limit is awaited within its share; its pace, up to its limit.
                let rate = l.next_at.filter(|_| l.in_flight.len() < self.share);
                let pace = l
                    .paced_until(now)
                    .filter(|_| l.in_flight.len() < l.limit.allowed());
                match (rate, pace) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                }
            })
            .min();
        match (check, send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets lanes with nothing queued, claimed or in flight and no rate-limit gap to keep;
    /// their limits are remembered for `REMEMBER_LIMIT`.
    pub fn prune(&mut self, now: Instant) {
        let idle: Vec<String> = self
            .lanes
            .iter()
            .filter(|(_, l)| l.idle(now))
            .map(|(ep, _)| ep.clone())
            .collect();
        for ep in idle {
            if let Some(lane) = self.lanes.remove(&ep) {
                self.learnt.insert(ep, (lane.limit, now));
            }
        }
        self.learnt
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < REMEMBER_LIMIT);
    }

    /// Claimed deliveries no worker has taken (given back at shutdown).
    pub fn take_claimed(&mut self) -> Vec<Claim> {
        let mut out = Vec::new();
        for (ep, lane) in &mut self.lanes {
            out.extend(lane.claimed.drain(..).map(|id| Claim::new(ep, id)));
        }
        out
    }

    pub fn queued(&self) -> usize {
        self.lanes.values().map(|l| l.queue.len()).sum()
    }

    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }
}

#[cfg(test)]
mod tests;
