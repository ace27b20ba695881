//! The share rule and the claim window, driven without threads or I/O.

use super::*;

pub(super) const MS: Duration = Duration::from_millis(1);

pub(super) fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

/// Claims what it asks for, as if the store said yes to all.
pub(super) fn claim_all(l: &mut Lanes, _now: Instant) -> usize {
    let asked = l.to_claim(0);
    let n = asked.len();
    l.on_claimed(&asked, asked.clone());
    n
}

fn fill(l: &mut Lanes, ep: &str, n: usize) {
    for id in ids(ep, n) {
        l.on_ready(ep, id, None);
    }
}

/// Finishes every send of `ep` handed out at `at`, each answered after `took`.
pub(super) fn finish(l: &mut Lanes, ep: &str, handed: &[Claim], at: Instant, took: Duration) {
    for c in handed.iter().filter(|c| c.endpoint_id == ep) {
        l.on_done(&c.endpoint_id, at, took, Signal::Answered, at + took);
    }
}

/// Claims and hands out to idle workers through `span` from `t`, in small steps (new POSTs
/// are paced over the receiver's time), as the dispatcher's loop does.
fn hand_out_over(l: &mut Lanes, workers: usize, t: Instant, span: Duration) -> Vec<Claim> {
    let mut out = Vec::new();
    for i in 0..=32u32 {
        let at = t + span * i / 32;
        claim_all(l, at);
        out.extend(l.hand_out(workers - l.in_flight(), true, at));
    }
    out
}

/// Rounds of claim, hand out (paced over the round) and answer after
/// `took`, from `t`; returns the time after.
pub(super) fn rounds(
    l: &mut Lanes,
    ep: &str,
    workers: usize,
    n: usize,
    t: Instant,
    took: Duration,
) -> Instant {
    let mut t = t;
    for _ in 0..n {
        let handed = hand_out_over(l, workers, t, took);
        finish(l, ep, &handed, t, took);
        t += took;
    }
    t
}

/// One endpoint `ep_a` with 500 pending, grown over 8 rounds against a receiver that
/// answers in `took`; returns the time after.
fn grown(l: &mut Lanes, took: Duration) -> Instant {
    fill(l, "ep_a", 500);
    rounds(l, "ep_a", 64, 8, Instant::now(), took)
}

#[test]
fn a_new_endpoint_starts_with_a_few() {
    let mut l = Lanes::new(64, 100);
    fill(&mut l, "ep_a", 50);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let first = l.hand_out(64, true, t0);
    assert_eq!(first.len(), 4, "a small start");
    assert_eq!(
        claim_all(&mut l, t0),
        0,
        "nothing claimed ahead at its limit"
    );
    finish(&mut l, "ep_a", &first, t0, Duration::from_millis(20));
    let t1 = t0 + Duration::from_millis(20);
    let next = hand_out_over(&mut l, 64, t1, Duration::from_millis(20));
    assert_eq!(next.len(), 8, "doubled: no queue showed");
}

#[test]
fn an_endpoint_alone_grows_with_its_receiver_to_the_idle_pool_but_the_reserve() {
    let mut l = Lanes::new(64, 1000);
    let t = grown(&mut l, Duration::from_millis(50));
    // 64 workers, a reserve of 2 kept free for a newcomer; new POSTs paced over the
    // receiver's time, a few at once.
    claim_all(&mut l, t);
    let burst = l.hand_out(64, true, t).len();
    assert!((4..=8).contains(&burst), "paced: a burst of {burst}");
    let rest = hand_out_over(&mut l, 64, t, Duration::from_millis(50));
    assert_eq!(burst + rest.len(), 62);
}

#[test]
fn an_endpoint_whose_sends_time_out_is_halved_and_held_to_its_share_when_slow() {
    let mut l = Lanes::new(64, 1000);
    let t1 = grown(&mut l, Duration::from_millis(20));
    let wide = hand_out_over(&mut l, 64, t1, Duration::ZERO);
    let wide = [
        wide,
        hand_out_over(&mut l, 64, t1, Duration::from_millis(20)),
    ]
    .concat();
    assert_eq!(wide.len(), 62);
    // Those sends hang: two seconds later the endpoint is slow, and gets nothing more.
    let t2 = t1 + Duration::from_secs(2);
    assert!(claim_all(&mut l, t2) == 0 && l.hand_out(64, true, t2).is_empty());
    let t3 = t1 + Duration::from_secs(15);
    let handed: Vec<Instant> = l.lanes["ep_a"].in_flight.clone();
    for at in handed {
        l.on_done("ep_a", at, Duration::from_secs(15), Signal::Dropped, t3);
    }
    assert!(l.limit_of("ep_a").unwrap() <= 32, "halved");
    let again = hand_out_over(&mut l, 64, t3, Duration::from_secs(1));
    assert!(
        again.len() <= 16,
        "held to its share while slow: {}",
        again.len()
    );
}

#[test]
fn an_endpoint_waiting_within_its_share_stops_others_from_growing() {
    let mut l = Lanes::new(64, 1000);
    let t1 = grown(&mut l, Duration::from_millis(5));
    // A newcomer whose claims are still being committed: `a` keeps to its share.
    fill(&mut l, "ep_b", 50);
    let asked = l.to_claim(0);
    let b_asked: Vec<_> = asked
        .iter()
        .filter(|c| c.endpoint_id == "ep_b")
        .cloned()
        .collect();
    let a_asked: Vec<_> = asked
        .iter()
        .filter(|c| c.endpoint_id == "ep_a")
        .cloned()
        .collect();
    assert_eq!(b_asked.len(), 4, "b's small start");
    l.on_claimed(&a_asked, a_asked.clone());
    let mut got = Vec::new();
    for i in 0..=32u32 {
        got.extend(l.hand_out(
            64 - l.in_flight(),
            true,
            t1 + Duration::from_millis(5) * i / 32,
        ));
    }
    assert_eq!(got.len(), 16, "a: its share only, while b waits");
    assert!(got.iter().all(|c| c.endpoint_id == "ep_a"));
    // b's claim lands: it is handed out at once, from the idle workers.
    l.on_claimed(&b_asked, b_asked.clone());
    let got = l.hand_out(48, true, t1 + Duration::from_millis(5));
    assert_eq!(got.iter().filter(|c| c.endpoint_id == "ep_b").count(), 4);
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
        "never answered: never more than its small start"
    );
    fill(&mut l, "ep_new", 5);
    claim_all(&mut l, t0);
    let got = l.hand_out(12, true, t0);
    assert_eq!(got.len(), 4, "the newcomer is served at once");
    assert!(got.iter().all(|c| c.endpoint_id == "ep_new"));
}

#[test]
fn several_slow_endpoints_together_hold_at_most_half_the_pool() {
    let mut l = Lanes::new(16, 1000);
    let mut t = Instant::now();
    for ep in ["ep_a", "ep_b", "ep_c", "ep_d"] {
        fill(&mut l, ep, 200);
    }
    // Each answers, but after two seconds: their limits grow, and they are slow.
    for _ in 0..12 {
        claim_all(&mut l, t);
        let handed = l.hand_out(16 - l.in_flight(), true, t);
        for c in &handed {
            l.on_done(
                &c.endpoint_id,
                t,
                Duration::from_secs(2),
                Signal::Answered,
                t,
            );
        }
        t += Duration::from_secs(2);
    }
    claim_all(&mut l, t);
    assert_eq!(l.hand_out(16, true, t).len(), 8, "half the pool");
    fill(&mut l, "ep_ok", 5);
    claim_all(&mut l, t);
    let got = l.hand_out(8, true, t);
    assert!(got.len() == 4 && got.iter().all(|c| c.endpoint_id == "ep_ok"));
}

#[test]
fn a_rate_limited_backlog_does_not_keep_a_quick_endpoint_from_idle_workers() {
    let mut l = Lanes::new(64, 1000);
    l.on_ready("ep_slowrate", "r1".into(), Some(1));
    l.on_ready("ep_slowrate", "r2".into(), Some(1));
    let t1 = grown(&mut l, Duration::from_millis(5));
    let got = hand_out_over(&mut l, 64, t1, Duration::from_millis(5));
    let a = got.iter().filter(|c| c.endpoint_id == "ep_a").count();
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
        let asked = l.to_claim(0);
        assert_eq!(asked.len(), 64, "{workers} workers");
        l.on_claimed(&asked, asked.clone());
        assert_eq!(l.to_claim(0).len(), 0);
        // Handed out to workers, but not taken by one yet: still counted.
        let handed = l.hand_out(10, true, now);
        assert_eq!(l.to_claim(handed.len()).len(), 0);
        assert_eq!(l.to_claim(0).len(), handed.len());
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
    // Answered at once; the next waits for the rate limit, not for an answer.
    l.on_done("ep_a", now, MS, Signal::Answered, now);
    claim_all(&mut l, now);
    assert!(l.hand_out(8, true, now).is_empty());
    let wake = l.next_wakeup(now).expect("a wake-up is planned");
    assert!(wake > now && wake <= now + Duration::from_millis(100));
    assert_eq!(l.hand_out(8, true, wake).len(), 1);
    l.on_done("ep_a", wake, MS, Signal::Answered, wake);
    l.prune(wake);
    l.on_ready("ep_a", "a3".into(), Some(10));
    claim_all(&mut l, wake);
    assert!(
        l.hand_out(8, true, wake + Duration::from_millis(50))
            .is_empty()
    );
    let at = wake + Duration::from_millis(100);
    assert_eq!(l.hand_out(8, true, at).len(), 1);
    l.on_done("ep_a", at, MS, Signal::Answered, at);
    l.prune(wake + Duration::from_secs(1));
    assert_eq!(l.lane_count(), 0);
}

#[test]
fn with_two_nodes_each_starts_at_half_the_small_start_and_keeps_half_the_rate() {
    let mut l = Lanes::new(64, 100);
    l.set_nodes(2);
    fill(&mut l, "ep_a", 20);
    let now = Instant::now();
    claim_all(&mut l, now);
    assert_eq!(
        l.hand_out(64, true, now).len(),
        2,
        "half of the small start"
    );

    // 10/s for the cluster: this node sends every 200 ms, not every 100.
    let mut l = Lanes::new(32, 100);
    l.set_nodes(2);
    l.on_ready("ep_r", "r1".into(), Some(10));
    l.on_ready("ep_r", "r2".into(), Some(10));
    claim_all(&mut l, now);
    assert_eq!(l.hand_out(8, true, now).len(), 1);
    l.on_done("ep_r", now, MS, Signal::Answered, now);
    claim_all(&mut l, now);
    let wake = l.next_wakeup(now).expect("a wake-up is planned");
    assert!(wake >= now + Duration::from_millis(190), "{:?}", wake - now);
}

#[test]
fn a_paused_endpoint_gives_back_its_claims_and_sends_one_alone_after_its_check() {
    let mut l = Lanes::new(64, 100);
    fill(&mut l, "ep_a", 20);
    let t0 = Instant::now();
    claim_all(&mut l, t0);
    let out = l.hand_out(64, true, t0);
    assert_eq!(out.len(), 4);
    claim_all(&mut l, t0);
    // Its receiver is down: what was claimed and not started goes back; nothing more.
    let until = t0 + Duration::from_secs(1);
    let back = l.hold("ep_a", until);
    assert!(back.iter().all(|c| c.endpoint_id == "ep_a"));
    finish(&mut l, "ep_a", &out, t0, MS);
    l.on_refill("ep_a", ids("ep_a", 20)[4..].to_vec(), LANE_WINDOW);
    assert_eq!(claim_all(&mut l, t0), 0, "a paused endpoint claims nothing");
    assert!(l.due_checks(t0).is_empty());
    assert_eq!(l.next_wakeup(t0), Some(until), "woken for its check");
    assert_eq!(l.due_checks(until), vec!["ep_a".to_owned()]);
    assert_eq!(l.hold_of("ep_a"), Some(Hold::Checking));
    assert_eq!(claim_all(&mut l, until), 0, "nothing while it is checked");
    l.on_check_passed("ep_a");
    assert_eq!(claim_all(&mut l, until), 1, "one delivery, alone");
    assert!(l.probing("ep_a"));
    let probe = l.hand_out(64, true, until);
    assert_eq!(
        probe,
        vec![Claim::new("ep_a", ids("ep_a", 20)[4].clone())],
        "the oldest"
    );
    assert_eq!(claim_all(&mut l, until), 0, "nothing beside it");
    // Its 2xx reopens the endpoint, from the small start.
    l.resume("ep_a", None, until);
    finish(&mut l, "ep_a", &probe, until, MS);
    assert_eq!(l.hold_of("ep_a"), None);
    assert_eq!(claim_all(&mut l, until), 4);
}

#[test]
fn resuming_by_hand_brings_the_check_forward() {
    let mut l = Lanes::new(64, 100);
    fill(&mut l, "ep_a", 5);
    let t0 = Instant::now();
    let _ = l.hold("ep_a", t0 + Duration::from_secs(60));
    l.recheck("ep_a", t0);
    assert_eq!(l.due_checks(t0), vec!["ep_a".to_owned()]);
}

#[test]
fn after_a_429_an_endpoint_reopens_at_the_rate_given_and_counts_what_it_sends() {
    let mut l = Lanes::new(64, 100);
    fill(&mut l, "ep_a", 40);
    let t0 = Instant::now();
    // It sends 12 in its first second: its rate is counted.
    let sent = hand_out_over(&mut l, 64, t0, Duration::from_millis(900));
    finish(&mut l, "ep_a", &sent, t0, MS);
    assert!(l.sent_per_sec("ep_a", t0 + Duration::from_secs(1)) >= sent.len() as f64 * 0.9);
    let _ = l.hold("ep_a", t0 + Duration::from_secs(1));
    let t1 = t0 + Duration::from_secs(2);
    l.resume("ep_a", Some(2), t1);
    l.on_refill("ep_a", ids("ep_a", 40)[sent.len()..].to_vec(), LANE_WINDOW);
    claim_all(&mut l, t1);
    assert_eq!(l.hand_out(64, true, t1).len(), 1, "one at a time, at 2/s");
    l.on_done("ep_a", t1, MS, Signal::Answered, t1);
    claim_all(&mut l, t1);
    assert!(
        l.hand_out(64, true, t1 + Duration::from_millis(400))
            .is_empty()
    );
    assert_eq!(
        l.hand_out(64, true, t1 + Duration::from_millis(500)).len(),
        1
    );
    // The cooling ends: back to its own (no) rate limit.
    let later = t1 + COOLING + Duration::from_secs(1);
    l.on_done(
        "ep_a",
        t1 + Duration::from_millis(500),
        MS,
        Signal::Answered,
        later,
    );
    claim_all(&mut l, later);
    assert!(l.hand_out(64, true, later).len() > 1);
}

#[test]
fn a_receiver_that_closes_its_connections_gets_new_ones_one_at_a_time() {
    let mut l = Lanes::new(64, 100);
    fill(&mut l, "ep_a", 400);
    // Grown against a keep-alive receiver answering in 20 ms: several start at once.
    let t = grown(&mut l, 20 * MS);
    claim_all(&mut l, t);
    assert!(l.hand_out(64, true, t).len() > 1, "keep-alive: a burst");
    // Its answers now say it closes each connection; 20 answers come back together.
    l.note_connection("ep_a", true);
    let t = t + 20 * MS;
    for _ in 0..20 {
        l.on_done("ep_a", t - 20 * MS, 20 * MS, Signal::Answered, t);
    }
    claim_all(&mut l, t);
    let at_once = l.hand_out(64, true, t).len() + l.hand_out(64, true, t).len();
    assert_eq!(at_once, 1, "a clump of freed slots opens one connection");
    // The next one waits for the pace, then goes alone too.
    let wait = l.next_wakeup(t).expect("paced");
    assert!(wait > t);
    claim_all(&mut l, wait);
    assert_eq!(l.hand_out(64, true, wait).len(), 1);
}

mod closing;
