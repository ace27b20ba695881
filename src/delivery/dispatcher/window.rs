//! The claim window: which pending deliveries each lane knows, from commit notices and from
//! reads of the store when the notices are not enough (a full window, ids committed out of
//! order, another node's work, a failed claim).

use std::collections::HashSet;

use super::{LANE_WINDOW, Lanes};

#[cfg(test)]
mod tests;

impl Lanes {
    /// A delivery committed as pending.
    pub fn on_ready(&mut self, endpoint: &str, delivery: String, rate: Option<u32>) {
        let lane = self.lane(endpoint, rate);
        lane.rate_limit_per_sec = rate;
        if delivery <= lane.read_through {
            return; // read from the store already, or the next read finds it
        }
        if delivery <= lane.tail {
            // Known by this notice alone: committed out of id order (concurrent ingests on
            // PostgreSQL draw their ids, then commit in either order) or handed back to
            // pending. Queued now rather than left until the lane is forgotten.
            if lane.queue.len() >= LANE_WINDOW || lane.overflow {
                lane.reread();
            } else if !lane.queue.contains(&delivery) {
                lane.queue.push_back(delivery);
            }
            return;
        }
        if lane.queue.len() >= LANE_WINDOW || lane.overflow {
            lane.overflow = true;
            return;
        }
        lane.tail.clone_from(&delivery);
        lane.queue.push_back(delivery);
    }

    /// An endpoint known to have pending deliveries in the store (at start-up, from another
    /// node, or found by a poll). Another node's ids may sort before this lane's tail: a lane
    /// with nothing queued reads again from the start.
    pub fn on_backlog(&mut self, endpoint: &str, rate: Option<u32>) {
        let lane = self.lane(endpoint, rate);
        lane.rate_limit_per_sec = rate;
        if lane.queue.is_empty() {
            lane.reread();
        }
        lane.overflow = true;
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
        if let Some(last) = ids.last()
            && *last > lane.read_through
        {
            lane.read_through.clone_from(last);
        }
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
}
