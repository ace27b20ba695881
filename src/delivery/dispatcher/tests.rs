//! The share rule and the claim window, driven without threads or I/O.

use super::*;

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

/// Claims what it asks for, as if the store said yes to all.
fn claim_all(l: &mut Lanes, now: Instant) -> usize {
    let asked = l.to_claim(0, now);
    let n = asked.len();
    l.on_claimed(&asked, asked.clone());
    n
}

fn fill(l: &mut Lanes, ep: &str, n: usize) {
    for id in ids(ep, n) {
        l.on_ready(ep, id, None);
    }
}

/// Finishes every send of `ep` handed out at `at`, each after `took`.
fn finish(l: &mut Lanes, ep: &str, handed: &[(String, String)], at: Instant, took: Duration) {
    for (e, _) in handed.iter().filter(|(e, _)| e == ep) {
        l.on_done(e, at, took);
    }
}

#[test]
fn an_endpoint_never_known_quick_is_held_to_its_share() {
    // 8 workers: a share of 2.
    let mut l = Lanes::new(8, 100);
    fill(&mut l, "ep_a", 20);
    let now = Instant::now();
    claim_all(&mut l, now);
    assert_eq!(l.hand_out(8, true, now).len(), 2, "its share, nothing more");
    assert_eq!(
        claim_all(&mut l, now),
        0,
        "nothing claimed ahead while it cannot hand out"
    );
    assert!(l.hand_out(8, true, now).is_empty());
}

#[test]
fn a_quick_endpoint_alone_uses_the_idle_pool_but_the_reserve() {
    let mut l = Lanes::new(64, 1000);
    fill(&mut l, "ep_a", 200);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let first = l.hand_out(64, true, t0);
    assert_eq!(first.len(), 16, "a quarter before anything is known");
    finish(&mut l, "ep_a", &first, t0, Duration::from_millis(50));
    let t1 = t0 + Duration::from_millis(50);
    claim_all(&mut l, t1);
    let next = l.hand_out(64, true, t1);
    // 64 workers, a reserve of 2 kept free for a newcomer.
    assert_eq!(
        next.len(),
        62,
        "quick and alone: the idle pool less the reserve"
    );
}

#[test]
fn an_instant_endpoint_keeps_to_its_share_which_already_outruns_the_server() {
    let mut l = Lanes::new(64, 1000);
    fill(&mut l, "ep_a", 200);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let first = l.hand_out(64, true, t0);
    finish(&mut l, "ep_a", &first, t0, Duration::from_micros(300));
    let t1 = t0 + Duration::from_millis(1);
    claim_all(&mut l, t1);
    assert_eq!(l.hand_out(64, true, t1).len(), 16);
}

#[test]
fn an_endpoint_that_turns_slow_goes_back_to_its_share() {
    let mut l = Lanes::new(64, 1000);
    fill(&mut l, "ep_a", 300);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let first = l.hand_out(64, true, t0);
    finish(&mut l, "ep_a", &first, t0, Duration::from_millis(20));
    let t1 = t0 + Duration::from_millis(20);
    claim_all(&mut l, t1);
    let wide = l.hand_out(64, true, t1);
    assert_eq!(wide.len(), 62);
    // Those sends hang: two seconds later the endpoint is slow, and as they time out it
    // gets no more than its share back.
    let t2 = t1 + Duration::from_secs(2);
    assert!(claim_all(&mut l, t2) == 0 && l.hand_out(64, true, t2).is_empty());
    finish(&mut l, "ep_a", &wide, t1, Duration::from_secs(15));
    let t3 = t1 + Duration::from_secs(15);
    claim_all(&mut l, t3);
    assert_eq!(l.hand_out(64, true, t3).len(), 16, "held to its share");
}

#[test]
fn an_endpoint_waiting_within_its_share_stops_others_from_growing() {
    let mut l = Lanes::new(64, 1000);
    fill(&mut l, "ep_a", 300);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let first = l.hand_out(64, true, t0);
    finish(&mut l, "ep_a", &first, t0, Duration::from_millis(5));
    // A newcomer whose claims are still being committed: `a` keeps to its share.
    fill(&mut l, "ep_b", 50);
    let t1 = t0 + Duration::from_millis(5);
    let asked = l.to_claim(0, t1);
    let b_asked: Vec<_> = asked.iter().filter(|(e, _)| e == "ep_b").cloned().collect();
    let a_asked: Vec<_> = asked.iter().filter(|(e, _)| e == "ep_a").cloned().collect();
    l.on_claimed(&a_asked, a_asked.clone());
    let got = l.hand_out(64, true, t1);
    assert_eq!(got.len(), 16, "a: its share only, while b waits");
    assert!(got.iter().all(|(e, _)| e == "ep_a"));
    // b's claims land: it gets its share at once, from the idle workers.
    l.on_claimed(&b_asked, b_asked.clone());
    let got = l.hand_out(48, true, t1);
    assert_eq!(got.iter().filter(|(e, _)| e == "ep_b").count(), 16);
}

#[test]
fn a_blackholed_endpoint_cannot_take_the_pool_from_a_newcomer() {
    let mut l = Lanes::new(16, 1000);
    fill(&mut l, "ep_dead", 500);
    let t0 = Instant::now();
    for _ in 0..10 {
        claim_all(&mut l, t0);
        l.hand_out(16, true, t0);
    }
    assert_eq!(
        l.in_flight(),
        4,
        "never answered: never more than its share"
    );
    fill(&mut l, "ep_new", 5);
    claim_all(&mut l, t0);
    let got = l.hand_out(12, true, t0);
    assert_eq!(
        got.len(),
        4,
        "the newcomer gets the next free slots at once"
    );
    assert!(got.iter().all(|(e, _)| e == "ep_new"));
}

#[test]
fn several_dead_endpoints_together_hold_at_most_half_the_pool() {
    let mut l = Lanes::new(16, 1000);
    let t0 = Instant::now();
    for ep in ["ep_a", "ep_b", "ep_c", "ep_d"] {
        fill(&mut l, ep, 50);
    }
    claim_all(&mut l, t0);
    let first = l.hand_out(16, true, t0);
    assert_eq!(first.len(), 16, "unknown at first: each its share");
    // They time out, one by one: known slow now, together they get half the pool back.
    let t1 = t0 + Duration::from_secs(15);
    for (ep, _) in &first {
        l.on_done(ep, t0, Duration::from_secs(15));
    }
    claim_all(&mut l, t1);
    assert_eq!(l.hand_out(16, true, t1).len(), 8);
    fill(&mut l, "ep_ok", 5);
    claim_all(&mut l, t1);
    let got = l.hand_out(8, true, t1);
    assert!(got.len() == 4 && got.iter().all(|(e, _)| e == "ep_ok"));
}

#[test]
fn a_rate_limited_backlog_does_not_keep_a_quick_endpoint_from_idle_workers() {
    let mut l = Lanes::new(64, 1000);
    l.on_ready("ep_slowrate", "r1".into(), Some(1));
    l.on_ready("ep_slowrate", "r2".into(), Some(1));
    fill(&mut l, "ep_a", 200);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let first = l.hand_out(64, true, t0);
    finish(&mut l, "ep_a", &first, t0, Duration::from_millis(5));
    let t1 = t0 + Duration::from_millis(5);
    claim_all(&mut l, t1);
    let got = l.hand_out(64, true, t1);
    let a = got.iter().filter(|(e, _)| e == "ep_a").count();
    assert!(
        a > 16,
        "a grows while the rate-limited lane only waits for its clock: {a}"
    );
}

#[test]
fn claims_ahead_stay_within_a_bound_that_does_not_grow_with_the_pool() {
    for workers in [16, 512, 4096] {
        let mut l = Lanes::new(workers, 64);
        for i in 0..200 {
            fill(&mut l, &format!("ep_{i:03}"), 20);
        }
        let now = Instant::now();
        let asked = l.to_claim(0, now);
        assert_eq!(asked.len(), 64, "{workers} workers");
        l.on_claimed(&asked, asked.clone());
        assert_eq!(l.to_claim(0, now).len(), 0);
        // Handed out to workers, but not taken by one yet: still counted.
        let handed = l.hand_out(10, true, now);
        assert_eq!(l.to_claim(handed.len(), now).len(), 0);
        assert_eq!(l.to_claim(0, now).len(), handed.len());
    }
}

#[test]
fn rate_limit_spaces_sends_even_across_an_idle_moment() {
    let mut l = Lanes::new(32, 100);
    l.on_ready("ep_a", "a1".into(), Some(10));
    l.on_ready("ep_a", "a2".into(), Some(10));
    let now = Instant::now();
    claim_all(&mut l, now);
    assert_eq!(l.hand_out(8, true, now).len(), 1);
    assert!(l.hand_out(8, true, now).is_empty());
    let wake = l.next_wakeup().expect("a wake-up is planned");
    assert!(wake > now && wake <= now + Duration::from_millis(100));
    assert_eq!(l.hand_out(8, true, wake).len(), 1);
    l.on_done("ep_a", now, Duration::from_millis(1));
    l.on_done("ep_a", wake, Duration::from_millis(1));
    l.prune(wake);
    l.on_ready("ep_a", "a3".into(), Some(10));
    claim_all(&mut l, wake);
    assert!(
        l.hand_out(8, true, wake + Duration::from_millis(50))
            .is_empty()
    );
    let at = wake + Duration::from_millis(100);
    assert_eq!(l.hand_out(8, true, at).len(), 1);
    l.on_done("ep_a", at, Duration::from_millis(1));
    l.prune(wake + Duration::from_secs(1));
    assert_eq!(l.lane_count(), 0);
}

#[test]
fn a_failed_claim_rereads_the_store() {
    let mut l = Lanes::new(16, 100);
    l.on_ready("ep_a", "a1".into(), None);
    let asked = l.to_claim(0, Instant::now());
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
    let mut l = Lanes::new(4096, 10_000);
    let all = ids("a", LANE_WINDOW + 10);
    for id in &all {
        l.on_ready("ep_a", id.clone(), None);
    }
    assert_eq!(l.queued(), LANE_WINDOW);
    assert!(l.wanting_refill().is_empty());
    assert_eq!(
        claim_all(&mut l, Instant::now()),
        LANE_WINDOW,
        "the whole window"
    );
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

#[test]
fn with_two_nodes_each_keeps_to_half_the_share_and_half_the_rate() {
    // 8 workers: a share of 2 alone, 1 with another node on the queue.
    let mut l = Lanes::new(8, 100);
    l.set_nodes(2);
    fill(&mut l, "ep_a", 20);
    let now = Instant::now();
    claim_all(&mut l, now);
    assert_eq!(l.hand_out(8, true, now).len(), 1, "half its share");

    // 10/s for the cluster: this node sends every 200 ms, not every 100.
    let mut l = Lanes::new(32, 100);
    l.set_nodes(2);
    l.on_ready("ep_r", "r1".into(), Some(10));
    l.on_ready("ep_r", "r2".into(), Some(10));
    claim_all(&mut l, now);
    assert_eq!(l.hand_out(8, true, now).len(), 1);
    let wake = l.next_wakeup().expect("a wake-up is planned");
    assert!(wake >= now + Duration::from_millis(190), "{:?}", wake - now);
}
