//! Fair dispatch: one small queue per endpoint, fed from the store. Deliveries are claimed
//! (durably marked as possibly sent) a little ahead, in groups, so that no send waits for a
//! commit; then handed to the workers round-robin, never more than an endpoint's share of the
//! pool at once and never faster than its rate limit. What does not fit in memory stays
//! `pending` in the store.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How many ids of one endpoint are kept in memory; the rest is re-read from the store.
pub const LANE_WINDOW: usize = 512;

#[derive(Debug)]
struct Lane {
    /// Pending in the store, not claimed yet, oldest first.
    queue: VecDeque<String>,
    /// Highest id ever queued here: later ids from the store or a commit come after it.
    tail: String,
    /// Claimed (durably marked), waiting for a worker.
    claimed: VecDeque<String>,
    /// Asked to be claimed, commit not answered yet.
    claiming: usize,
    /// Handed to the workers and not done.
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
            claimed: VecDeque::new(),
            claiming: 0,
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
            && self.claimed.is_empty()
            && self.claiming == 0
            && self.in_flight == 0
            && !self.overflow
            && self.next_at.is_none_or(|t| t <= now)
    }
}

/// The dispatcher's state and decisions, free of threads and I/O so tests can drive it.
#[derive(Debug)]
pub struct Lanes {
    lanes: HashMap<String, Lane>,
    /// Most deliveries of one endpoint handed to workers at once; also how many it may have
    /// claimed ahead.
    share: usize,
    /// Most deliveries claimed ahead (or being claimed) for endpoints below their share. An
    /// endpoint at its share (at most pool / share of them at once) may also hold its share
    /// ahead, outside this budget, so a few stuck endpoints cannot starve the rest. Together
    /// with the channel and the workers this bounds how many a crash can leave `interrupted`.
    ahead: usize,
    /// Round-robin positions: one for claiming, one for handing out.
    turns: [usize; 2],
}

impl Lanes {
    pub fn new(share: usize, ahead: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            share: share.max(1),
            ahead: ahead.max(1),
            turns: [0, 0],
        }
    }

    fn lane(&mut self, endpoint: &str, rate: Option<u32>) -> &mut Lane {
        self.lanes
            .entry(endpoint.to_owned())
            .or_insert_with(|| Lane::new(rate))
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
        lane.tail.clone_from(&delivery);
        lane.queue.push_back(delivery);
    }

    /// An endpoint known to have pending deliveries in the store (at start-up).
    pub fn on_backlog(&mut self, endpoint: &str, rate: Option<u32>) {
        self.lane(endpoint, rate).overflow = true;
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

    /// Deliveries to claim now, taken from the queues round-robin: each endpoint up to its
    /// share ahead, within the budget `ahead`.
    pub fn to_claim(&mut self) -> Vec<(String, String)> {
        let share = self.share;
        let mut budget = self.ahead.saturating_sub(
            self.lanes
                .values()
                .filter(|l| l.in_flight < share)
                .map(|l| l.claimed.len() + l.claiming)
                .sum(),
        );
        let order = self.rotation(0);
        let mut out = Vec::new();
        let mut progress = true;
        while progress {
            progress = false;
            for ep in &order {
                let lane = self.lanes.get_mut(ep).expect("listed lanes exist");
                let saturated = lane.in_flight >= share;
                if lane.claimed.len() + lane.claiming >= share || (!saturated && budget == 0) {
                    continue;
                }
                if let Some(id) = lane.queue.pop_front() {
                    lane.claiming += 1;
                    out.push((ep.clone(), id));
                    if !saturated {
                        budget -= 1;
                    }
                    progress = true;
                }
            }
        }
        out
    }

    /// The answer to a claim: `asked` were requested, `claimed` of them were still pending.
    pub fn on_claimed(&mut self, asked: &[(String, String)], claimed: Vec<(String, String)>) {
        for (ep, _) in asked {
            if let Some(lane) = self.lanes.get_mut(ep) {
                lane.claiming = lane.claiming.saturating_sub(1);
            }
        }
        for (ep, id) in claimed {
            if let Some(lane) = self.lanes.get_mut(&ep) {
                lane.claimed.push_back(id);
            }
        }
    }

    /// A claim that could not be written: the lanes re-read their pending deliveries from the
    /// store instead of trusting what they had queued.
    pub fn on_claim_failed(&mut self, asked: &[(String, String)]) {
        for (ep, _) in asked {
            if let Some(lane) = self.lanes.get_mut(ep) {
                lane.claiming = lane.claiming.saturating_sub(1);
                lane.overflow = true;
                lane.tail.clear();
            }
        }
    }

    /// Up to `free` claimed deliveries to hand to the workers now, fairly across endpoints,
    /// within each endpoint's share and rate limit. A rate-limited endpoint's delivery goes
    /// out only into an empty queue (`idle_worker_likely`), so queued jobs cannot bunch up and
    /// leave together.
    pub fn hand_out(
        &mut self,
        free: usize,
        idle_worker_likely: bool,
        now: Instant,
    ) -> Vec<(String, String)> {
        let order = self.rotation(1);
        let mut out = Vec::new();
        let mut progress = true;
        while out.len() < free && progress {
            progress = false;
            for ep in &order {
                if out.len() == free {
                    break;
                }
                let lane = self.lanes.get_mut(ep).expect("listed lanes exist");
                let limited = lane.rate_limit_per_sec.is_some_and(|r| r > 0);
                if lane.claimed.is_empty()
                    || lane.in_flight >= self.share
                    || !lane.ready_at(now)
                    || (limited && (!idle_worker_likely || !out.is_empty()))
                {
                    continue;
                }
                let id = lane.claimed.pop_front().expect("checked above");
                lane.in_flight += 1;
                if let Some(rate) = lane.rate_limit_per_sec.filter(|r| *r > 0) {
                    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
                    lane.next_at = Some(lane.next_at.map_or(now, |t| t.max(now)) + gap);
                }
                out.push((ep.clone(), id));
                progress = true;
            }
        }
        out
    }

    /// A worker finished with one of this endpoint's deliveries.
    pub fn on_done(&mut self, endpoint: &str) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }

    /// When the next rate-limited lane may send again, if one waits only for that.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.lanes
            .values()
            .filter(|l| !l.claimed.is_empty() && l.in_flight < self.share)
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
        let known: HashSet<&String> = lane.queue.iter().chain(lane.claimed.iter()).collect();
        let fresh: Vec<String> = ids
            .into_iter()
            .filter(|id| *id > lane.tail && !known.contains(id))
            .collect();
        for id in fresh {
            lane.tail.clone_from(&id);
            lane.queue.push_back(id);
        }
    }

    /// Forgets lanes with nothing queued, claimed or in flight and no rate-limit gap to keep.
    pub fn prune(&mut self, now: Instant) {
        self.lanes.retain(|_, l| !l.idle(now));
    }

    /// Claimed deliveries no worker has taken (given back at shutdown).
    pub fn take_claimed(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (ep, lane) in &mut self.lanes {
            out.extend(lane.claimed.drain(..).map(|id| (ep.clone(), id)));
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
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:05}")).collect()
    }

    /// Claims what it asks for, as if the store said yes to all.
    fn claim_all(l: &mut Lanes) -> usize {
        let asked = l.to_claim();
        let n = asked.len();
        l.on_claimed(&asked, asked.clone());
        n
    }

    #[test]
    fn one_endpoint_never_has_more_than_its_share_claimed_ahead_or_in_flight() {
        let mut l = Lanes::new(2, 100);
        for id in ids("a", 10) {
            l.on_ready("ep_a", id, None);
        }
        let now = Instant::now();
        assert_eq!(claim_all(&mut l), 2);
        assert_eq!(l.hand_out(8, true, now).len(), 2);
        assert_eq!(claim_all(&mut l), 2, "claims ahead while two are in flight");
        assert!(
            l.hand_out(8, true, now).is_empty(),
            "but does not hand them out yet"
        );
        assert_eq!(claim_all(&mut l), 0);
        l.on_done("ep_a");
        assert_eq!(l.hand_out(8, true, now).len(), 1);
    }

    #[test]
    fn endpoints_take_turns_and_the_window_ahead_is_bounded() {
        let mut l = Lanes::new(8, 4);
        for id in ids("a", 10) {
            l.on_ready("ep_a", id, None);
        }
        for id in ids("b", 10) {
            l.on_ready("ep_b", id, None);
        }
        let asked = l.to_claim();
        assert_eq!(asked.len(), 4);
        assert_eq!(asked.iter().filter(|(e, _)| e == "ep_a").count(), 2);
        l.on_claimed(&asked, asked.clone());
        let got = l.hand_out(4, true, Instant::now());
        assert_eq!(got.iter().filter(|(e, _)| e == "ep_b").count(), 2);
        assert!(got.iter().any(|(_, id)| id == "a00000"));
    }

    #[test]
    fn rate_limit_spaces_sends_even_across_an_idle_moment() {
        let mut l = Lanes::new(8, 100);
        l.on_ready("ep_a", "a1".into(), Some(10));
        l.on_ready("ep_a", "a2".into(), Some(10));
        claim_all(&mut l);
        let now = Instant::now();
        assert_eq!(l.hand_out(8, true, now).len(), 1);
        assert!(l.hand_out(8, true, now).is_empty());
        let wake = l.next_wakeup().expect("a wake-up is planned");
        assert!(wake > now && wake <= now + Duration::from_millis(100));
        assert_eq!(l.hand_out(8, true, wake).len(), 1);
        l.on_done("ep_a");
        l.on_done("ep_a");
        l.prune(wake);
        l.on_ready("ep_a", "a3".into(), Some(10));
        claim_all(&mut l);
        assert!(
            l.hand_out(8, true, wake + Duration::from_millis(50))
                .is_empty()
        );
        assert_eq!(
            l.hand_out(8, true, wake + Duration::from_millis(100)).len(),
            1
        );
        l.on_done("ep_a");
        l.prune(wake + Duration::from_secs(1));
        assert_eq!(l.lane_count(), 0);
    }

    #[test]
    fn stuck_endpoints_cannot_use_up_the_budget_of_the_others() {
        let mut l = Lanes::new(2, 2);
        let now = Instant::now();
        for ep in ["ep_a", "ep_b"] {
            for id in ids(ep, 10) {
                l.on_ready(ep, id, None);
            }
        }
        let mut handed = 0;
        for _ in 0..4 {
            claim_all(&mut l);
            handed += l.hand_out(8, true, now).len();
        }
        assert_eq!(handed, 4); // a and b: 2 in flight each, never done (blackholed)
        claim_all(&mut l); // and 2 ahead each, outside the budget
        for id in ids("c", 3) {
            l.on_ready("ep_c", id, None);
        }
        let asked = l.to_claim();
        assert_eq!(asked.len(), 2);
        assert!(asked.iter().all(|(e, _)| e == "ep_c"));
    }

    #[test]
    fn a_failed_claim_rereads_the_store() {
        let mut l = Lanes::new(4, 100);
        l.on_ready("ep_a", "a1".into(), None);
        let asked = l.to_claim();
        l.on_claim_failed(&asked);
        let refill = l.wanting_refill();
        assert_eq!(
            refill,
            vec![("ep_a".to_owned(), String::new(), LANE_WINDOW)]
        );
        l.on_refill("ep_a", vec!["a1".into()], LANE_WINDOW);
        assert_eq!(l.queued(), 1);
    }

    #[test]
    fn a_full_window_overflows_to_the_store_and_refills_in_order() {
        let mut l = Lanes::new(1000, 10_000);
        let all = ids("a", LANE_WINDOW + 10);
        for id in &all {
            l.on_ready("ep_a", id.clone(), None);
        }
        assert_eq!(l.queued(), LANE_WINDOW);
        assert!(l.wanting_refill().is_empty());
        assert_eq!(claim_all(&mut l), LANE_WINDOW);
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
