//! Fair dispatch: one small ready queue per endpoint, fed from the store, handed to the
//! workers round-robin, never more than an endpoint's share of the pool in flight and never
//! faster than its rate limit. What does not fit in memory stays `pending` in the store.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How many ids of one endpoint are kept in memory; the rest is re-read from the store.
pub const LANE_WINDOW: usize = 512;

#[derive(Debug)]
struct Lane {
    queue: VecDeque<String>,
    /// Highest id ever queued here: later ids from the store or a commit come after it.
    tail: String,
    in_flight: usize,
    rate_limit_per_sec: Option<u32>,
    next_at: Option<Instant>,
    /// More pending deliveries wait in the store than the window holds.
    overflow: bool,
}

impl Lane {
    fn new(rate: Option<u32>) -> Self {
        Self {
            queue: VecDeque::new(),
            tail: String::new(),
            in_flight: 0,
            rate_limit_per_sec: rate,
            next_at: None,
            overflow: false,
        }
    }

    fn ready_at(&self, now: Instant) -> bool {
        self.next_at.is_none_or(|t| t <= now)
    }

    /// Nothing to do and nothing to remember: its rate-limit gap (if any) is over.
    fn idle(&self, now: Instant) -> bool {
        self.queue.is_empty()
            && self.in_flight == 0
            && !self.overflow
            && self.next_at.is_none_or(|t| t <= now)
    }
}

/// The dispatcher's state and decisions, free of threads and I/O so tests can drive it.
#[derive(Debug)]
pub struct Lanes {
    lanes: HashMap<String, Lane>,
    /// Round-robin order of the lanes that have something queued.
    order: VecDeque<String>,
    /// Most deliveries of one endpoint in flight at once.
    share: usize,
}

impl Lanes {
    pub fn new(share: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            order: VecDeque::new(),
            share: share.max(1),
        }
    }

    fn lane(&mut self, endpoint: &str, rate: Option<u32>) -> &mut Lane {
        if !self.lanes.contains_key(endpoint) {
            self.lanes.insert(endpoint.to_owned(), Lane::new(rate));
        }
        self.lanes.get_mut(endpoint).expect("inserted above")
    }

    fn push(&mut self, endpoint: &str, delivery: String) {
        let lane = self.lanes.get_mut(endpoint).expect("lane exists");
        if lane.queue.is_empty() {
            self.order.push_back(endpoint.to_owned());
        }
        lane.tail.clone_from(&delivery);
        lane.queue.push_back(delivery);
    }

    /// A delivery committed as pending.
    pub fn on_ready(&mut self, endpoint: &str, delivery: String, rate: Option<u32>) {
        let lane = self.lane(endpoint, rate);
        lane.rate_limit_per_sec = rate;
        if delivery <= lane.tail {
            return; // already queued from the store
        }
        if lane.queue.len() >= LANE_WINDOW || lane.overflow {
            lane.overflow = true;
            return;
        }
        self.push(endpoint, delivery);
    }

    /// An endpoint known to have pending deliveries in the store (at start-up).
    pub fn on_backlog(&mut self, endpoint: &str, rate: Option<u32>) {
        self.lane(endpoint, rate).overflow = true;
    }

    /// A worker finished (or a claim failed) for this endpoint.
    pub fn on_done(&mut self, endpoint: &str) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }

    /// A claim failed (the store could not be written): the lane re-reads its pending
    /// deliveries from the store instead of trusting what it had queued.
    pub fn on_claim_failed(&mut self, endpoint: &str) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
            lane.overflow = true;
            lane.tail.clear();
        }
    }

    /// Forgets lanes with nothing queued, nothing in flight and no rate-limit gap to keep.
    pub fn prune(&mut self, now: Instant) {
        self.lanes.retain(|_, l| !l.idle(now));
    }

    /// Up to `free` deliveries to hand out now, fairly across endpoints.
    pub fn pick(&mut self, free: usize, now: Instant) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut idle_turns = 0;
        while out.len() < free && idle_turns < self.order.len() {
            let Some(ep) = self.order.pop_front() else {
                break;
            };
            let share = self.share;
            let lane = self.lanes.get_mut(&ep).expect("ordered lanes exist");
            if lane.in_flight < share && lane.ready_at(now) {
                let dlv = lane.queue.pop_front().expect("ordered lanes have work");
                lane.in_flight += 1;
                if let Some(rate) = lane.rate_limit_per_sec.filter(|r| *r > 0) {
                    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
                    lane.next_at = Some(lane.next_at.map_or(now, |t| t.max(now)) + gap);
                }
                out.push((ep.clone(), dlv));
                idle_turns = 0;
            } else {
                idle_turns += 1;
            }
            if !lane.queue.is_empty() {
                self.order.push_back(ep);
            }
        }
        out
    }

    /// When the next rate-limited lane becomes ready, if any lane waits only for that.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.order
            .iter()
            .filter_map(|ep| self.lanes.get(ep))
            .filter(|l| l.in_flight < self.share)
            .filter_map(|l| l.next_at)
            .min()
    }

    /// Lanes whose window has room and whose store has more: (endpoint, after id, how many).
    pub fn wanting_refill(&self) -> Vec<(String, String, usize)> {
        self.lanes
            .iter()
            .filter(|(_, l)| l.overflow && l.queue.len() < LANE_WINDOW / 2)
            .map(|(ep, l)| (ep.clone(), l.tail.clone(), LANE_WINDOW - l.queue.len()))
            .collect()
    }

    /// Ids read from the store after the lane's tail; fewer than asked means it is drained.
    pub fn on_refill(&mut self, endpoint: &str, ids: Vec<String>, asked: usize) {
        let Some(lane) = self.lanes.get_mut(endpoint) else {
            return;
        };
        lane.overflow = ids.len() >= asked;
        let tail = lane.tail.clone();
        let queued: std::collections::HashSet<String> = lane.queue.iter().cloned().collect();
        for id in ids
            .into_iter()
            .filter(|id| *id > tail && !queued.contains(id))
        {
            self.push(endpoint, id);
        }
    }

    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    pub fn queued(&self) -> usize {
        self.lanes.values().map(|l| l.queue.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:05}")).collect()
    }

    #[test]
    fn one_endpoint_never_gets_more_than_its_share() {
        let mut l = Lanes::new(2);
        for id in ids("a", 10) {
            l.on_ready("ep_a", id, None);
        }
        let now = Instant::now();
        assert_eq!(l.pick(8, now).len(), 2);
        assert!(l.pick(8, now).is_empty());
        l.on_done("ep_a");
        assert_eq!(l.pick(8, now).len(), 1);
    }

    #[test]
    fn endpoints_take_turns() {
        let mut l = Lanes::new(8);
        for id in ids("a", 10) {
            l.on_ready("ep_a", id, None);
        }
        for id in ids("b", 10) {
            l.on_ready("ep_b", id, None);
        }
        let got = l.pick(4, Instant::now());
        let eps: Vec<&str> = got.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(eps, ["ep_a", "ep_b", "ep_a", "ep_b"]);
        assert_eq!(got[0].1, "a00000");
        assert_eq!(got[2].1, "a00001");
    }

    #[test]
    fn rate_limit_spaces_sends() {
        let mut l = Lanes::new(8);
        for id in ids("a", 3) {
            l.on_ready("ep_a", id, Some(10));
        }
        let now = Instant::now();
        assert_eq!(l.pick(8, now).len(), 1);
        assert!(l.pick(8, now).is_empty());
        let wake = l.next_wakeup().expect("a wake-up is planned");
        assert!(wake > now && wake <= now + Duration::from_millis(100));
        assert_eq!(l.pick(8, wake).len(), 1);
    }

    #[test]
    fn the_rate_limit_holds_across_an_idle_moment() {
        let mut l = Lanes::new(8);
        let now = Instant::now();
        l.on_ready("ep_a", "a1".into(), Some(1));
        assert_eq!(l.pick(8, now).len(), 1);
        l.on_done("ep_a");
        l.prune(now);
        // The next one arrives at once, but must wait for the gap.
        l.on_ready("ep_a", "a2".into(), Some(1));
        assert!(l.pick(8, now + Duration::from_millis(500)).is_empty());
        assert_eq!(l.pick(8, now + Duration::from_millis(1000)).len(), 1);
        l.on_done("ep_a");
        l.prune(now + Duration::from_secs(3));
        assert_eq!(l.lane_count(), 0);
    }

    #[test]
    fn a_full_window_overflows_to_the_store_and_refills_in_order() {
        let mut l = Lanes::new(1000);
        let all = ids("a", LANE_WINDOW + 10);
        for id in &all {
            l.on_ready("ep_a", id.clone(), None);
        }
        assert_eq!(l.queued(), LANE_WINDOW);
        assert!(l.wanting_refill().is_empty());
        let taken = l.pick(LANE_WINDOW, Instant::now());
        assert_eq!(taken.len(), LANE_WINDOW);
        let refill = l.wanting_refill();
        assert_eq!(refill.len(), 1);
        assert_eq!(refill[0].1, all[LANE_WINDOW - 1]);
        l.on_refill("ep_a", all[LANE_WINDOW..].to_vec(), refill[0].2);
        assert_eq!(l.queued(), 10);
        assert!(l.wanting_refill().is_empty());
        // A commit notice for an id already read from the store is ignored.
        l.on_ready("ep_a", all[LANE_WINDOW].clone(), None);
        assert_eq!(l.queued(), 10);
    }
}
