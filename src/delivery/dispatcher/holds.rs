//! The dispatcher's side of a pause (`domain::hold`): an endpoint held while its receiver is
//! down claims nothing, is checked when due, sends one delivery alone, and reopens.

use std::time::Instant;

use super::{COOLING, Hold, Lanes};
use crate::delivery::limit::{Limit, START};
use crate::domain::Claim;

impl Lanes {
    /// A paused endpoint: it claims and hands out nothing until `until` (its next check);
    /// returns its claimed deliveries, to be given back to `pending`. What it had queued is
    /// read again from the store when it resumes, in order.
    pub fn hold(&mut self, endpoint: &str, until: Instant) -> Vec<Claim> {
        let lane = self.lane(endpoint, None);
        lane.hold = Some(Hold::Until(until));
        lane.queue.clear();
        lane.reread();
        lane.claimed
            .drain(..)
            .map(|id| Claim::new(endpoint, id))
            .collect()
    }

    /// Paused endpoints due for a check at `now`: each is marked as being checked.
    pub fn due_checks(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (ep, lane) in &mut self.lanes {
            if let Some(Hold::Until(t)) = lane.hold
                && t <= now
            {
                lane.hold = Some(Hold::Checking);
                due.push(ep.clone());
            }
        }
        due
    }

    /// The stored pause changed (ended by hand): a paused endpoint looks again now.
    pub fn recheck(&mut self, endpoint: &str, now: Instant) {
        if let Some(lane) = self.lanes.get_mut(endpoint)
            && let Some(Hold::Until(_)) = lane.hold
        {
            lane.hold = Some(Hold::Until(now));
        }
    }

    /// The check passed: one delivery goes alone.
    pub fn on_check_passed(&mut self, endpoint: &str) {
        if let Some(lane) = self.lanes.get_mut(endpoint)
            && lane.hold == Some(Hold::Checking)
        {
            lane.hold = Some(Hold::ProbeReady);
        }
    }

    /// The pause ended (the probe's 2xx, or by hand): the endpoint starts again from the small
    /// start; after a 429, at most at `cool_to` per second for `COOLING`.
    pub fn resume(&mut self, endpoint: &str, cool_to: Option<u32>, now: Instant) {
        let start = START / self.nodes as f64;
        if let Some(lane) = self.lanes.get_mut(endpoint)
            && lane.hold.take().is_some()
        {
            lane.limit = Limit::new(start, self.workers, now);
            lane.overflow = true;
            lane.cooling = cool_to.filter(|r| *r > 0).map(|r| (r, now + COOLING));
        }
    }

    /// The endpoint's recent send rate, per second (0 for one it does not know).
    pub fn sent_per_sec(&self, endpoint: &str, now: Instant) -> f64 {
        self.lanes
            .get(endpoint)
            .map_or(0.0, |l| l.sent_per_sec(now))
    }

    /// True while the endpoint's one delivery (the probe) is what it has out.
    pub fn probing(&self, endpoint: &str) -> bool {
        self.lanes
            .get(endpoint)
            .is_some_and(|l| l.hold == Some(Hold::Probing))
    }

    /// Endpoints paused, as this node sees them.
    pub fn held(&self) -> usize {
        self.lanes.values().filter(|l| l.hold.is_some()).count()
    }

    /// A check counted the deliveries waiting behind the endpoint's pause.
    pub fn set_held_waiting(&mut self, endpoint: &str, n: usize) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.held_waiting = n;
        }
    }

    /// Deliveries waiting behind pauses, all endpoints together (as last counted).
    pub fn held_waiting(&self) -> usize {
        self.lanes
            .values()
            .filter(|l| l.hold.is_some())
            .map(|l| l.held_waiting)
            .sum()
    }

    pub fn hold_of(&self, endpoint: &str) -> Option<Hold> {
        self.lanes.get(endpoint).and_then(|l| l.hold)
    }
}
