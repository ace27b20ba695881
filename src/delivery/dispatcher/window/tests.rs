//! The claim window driven without threads or I/O: commit notices, reads of the store, a
//! full window, ids committed out of order.

use std::time::Instant;

use super::super::tests::{MS, claim_all, finish, ids, rounds};
use super::super::{LANE_WINDOW, Lanes};

#[test]
fn a_failed_claim_rereads_the_store() {
    let mut l = Lanes::new(16, 100);
    l.on_ready("ep_a", "a1".into(), None);
    let asked = l.to_claim(0);
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
fn a_delivery_committed_after_a_later_id_is_read_from_the_store_not_left_waiting() {
    let mut l = Lanes::new(16, 100);
    // Two ingests drew their ids, then committed in the other order.
    l.on_ready("ep_a", "a2".into(), None);
    l.on_ready("ep_a", "a1".into(), None);
    assert_eq!(l.queued(), 2, "a1 queued from its notice");
    l.on_ready("ep_a", "a1".into(), None);
    assert_eq!(l.queued(), 2, "not twice");
    assert!(l.wanting_refill().is_empty());
    // Behind a full window, such a notice makes the lane read the store from the start.
    let mut l = Lanes::new(16, 100);
    for id in ids("b", LANE_WINDOW + 1) {
        l.on_ready("ep_b", id, None);
    }
    l.on_ready("ep_b", "a".into(), None);
    let refill = l.wanting_refill();
    assert!(refill.is_empty(), "not while the window is full");
    while l.queued() > LANE_WINDOW / 2 - 1 {
        claim_all(&mut l, Instant::now());
        let handed = l.hand_out(16, true, Instant::now());
        finish(&mut l, "ep_b", &handed, Instant::now(), MS);
    }
    assert_eq!(l.wanting_refill()[0].1, "", "read again from the start");
}

#[test]
fn another_nodes_backlog_is_read_from_the_start_once_the_lane_is_empty() {
    let mut l = Lanes::new(16, 100);
    l.on_ready("ep_a", "a5".into(), None);
    claim_all(&mut l, Instant::now());
    let handed = l.hand_out(16, true, Instant::now());
    assert_eq!(handed.len(), 1);
    // Another node committed a3 (its clock drew a smaller id) and says so.
    l.on_backlog("ep_a", None);
    assert_eq!(
        l.wanting_refill(),
        vec![("ep_a".to_owned(), String::new(), LANE_WINDOW)]
    );
}

#[test]
fn a_full_window_overflows_to_the_store_and_refills_in_order() {
    let mut l = Lanes::new(4096, 10_000);
    let all = ids("a", LANE_WINDOW + 10);
    for id in &all {
        l.on_ready("ep_a", id.clone(), None);
    }
    assert_eq!(l.queued(), LANE_WINDOW);
    assert!(l.wanting_refill().is_empty());
    let mut t = Instant::now();
    while l.queued() > 0 {
        t = rounds(&mut l, "ep_a", 4096, 1, t, MS);
    }
    let refill = l.wanting_refill();
    assert_eq!(refill.len(), 1);
    assert_eq!(refill[0].1, all[LANE_WINDOW - 1]);
    assert_eq!(refill[0].2, LANE_WINDOW);
    l.on_refill("ep_a", all[LANE_WINDOW..].to_vec(), refill[0].2);
    assert_eq!(l.queued(), 10);
    assert!(l.wanting_refill().is_empty());
    // A commit notice for an id already read from the store is ignored.
    l.on_ready("ep_a", all[LANE_WINDOW].clone(), None);
    assert_eq!(l.queued(), 10);
}
