//! The limit's rules, driven without threads or I/O: growth, shrink on rising times,
//! halving on errors, floor windows, jitter.

use super::*;

const MS: Duration = Duration::from_millis(1);

/// A receiver that serves `serves` POSTs at once, each taking `work`: of `n` sent
/// together, the `i`-th waits for the waves ahead of it. Its time in ms.
fn blocking(serves: usize, work: f64, i: usize) -> f64 {
    work * (1 + i / serves.max(1)) as f64
}

/// Runs `rounds` rounds, each sending the whole limit at once; the `i`-th POST of a
/// round of `n` takes `time(n, i, round)` ms. Returns the limits seen.
fn drive(
    l: &mut Limit,
    start: Instant,
    rounds: usize,
    mut time: impl FnMut(usize, usize, usize) -> f64,
) -> Vec<usize> {
    let mut now = start;
    let mut seen = Vec::new();
    for r in 0..rounds {
        let n = l.allowed();
        let handed = now;
        let times: Vec<f64> = (0..n).map(|i| time(n, i, r)).collect();
        now += Duration::from_secs_f64(times.iter().copied().fold(0.0, f64::max) / 1000.0);
        for ms in times {
            l.on_sample(
                now,
                handed,
                Duration::from_secs_f64(ms / 1000.0),
                Signal::Answered,
                n,
            );
        }
        seen.push(l.allowed());
    }
    seen
}

#[test]
fn starts_small_and_the_first_rounds_fastest_post_is_the_floor() {
    let now = Instant::now();
    let mut l = Limit::new(START, 512, now);
    assert_eq!(l.allowed(), 4);
    // One thread: the four wait for each other.
    for ms in [20, 40, 60, 80] {
        l.on_sample(now, now, ms * MS, Signal::Answered, 4);
    }
    assert_eq!(l.floor_ms(), Some(20.0));
    assert!(l.allowed() <= 4, "a queue showed: no growth");
    let answered = |start: f64, ceiling: usize| {
        let mut l = Limit::new(start, ceiling, now);
        for _ in 0..l.allowed() {
            l.on_sample(now, now, 20 * MS, Signal::Answered, 4);
        }
        l.allowed()
    };
    assert_eq!(answered(START, 512), 8, "no queue: doubled");
    assert_eq!(answered(100.0, 512), 8, "never starts above START");
    assert_eq!(answered(START / 3.0, 512), 2, "three nodes: a third each");
    assert_eq!(answered(START, 2), 2, "the pool is the ceiling");
}

#[test]
fn grows_quickly_while_times_stay_at_their_floor_up_to_the_ceiling() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    let seen = drive(&mut l, t0, 40, |_, _, _| 50.0);
    let to_100 = seen.iter().position(|n| *n >= 100).expect("reaches 100");
    assert!(to_100 <= 10, "like slow start: {seen:?}");
    assert_eq!(*seen.last().unwrap(), 512, "{seen:?}");
}

#[test]
fn a_one_thread_receiver_gets_a_few_in_flight_not_a_flood() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    let seen = drive(&mut l, t0, 200, |_, i, _| blocking(1, 20.0, i));
    let most = seen[20..].iter().max().unwrap();
    assert!(*most <= 5, "never floods a backlog of 5: {seen:?}");
    assert!(seen[20..].iter().all(|n| *n >= 1));
}

#[test]
fn an_eight_thread_receiver_is_kept_near_what_it_serves() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    let seen = drive(&mut l, t0, 300, |_, i, _| blocking(8, 20.0, i));
    let late = &seen[30..];
    assert!(
        late.iter().all(|n| (6..=13).contains(n)),
        "about its 8 threads and a short queue: {seen:?}"
    );
}

#[test]
fn shrinks_when_times_rise_and_grows_back_when_they_fall() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    drive(&mut l, t0, 30, |_, _, _| 20.0);
    assert_eq!(l.allowed(), 512);
    // The receiver now holds 50 at once; beyond that the time grows with the queue.
    let seen = drive(&mut l, t0 + Duration::from_secs(1), 40, |n, _, _| {
        20.0 * (n as f64 / 50.0).max(1.0)
    });
    let late = &seen[10..];
    assert!(late.iter().all(|n| (40..=70).contains(n)), "{seen:?}");
}

#[test]
fn halves_on_a_connection_failure_once_per_round() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    drive(&mut l, t0, 20, |_, _, _| 10.0);
    let before = l.allowed();
    assert_eq!(
        l.on_sample(t0, t0, MS, Signal::Dropped, before),
        Some(Decrease::Error)
    );
    assert_eq!(l.allowed(), before / 2);
    for _ in 0..5 {
        assert_eq!(l.on_sample(t0, t0, MS, Signal::Dropped, before), None);
    }
    assert_eq!(
        l.allowed(),
        before / 2,
        "one burst of failures halves it once"
    );
    let mut l = Limit::new(START, 512, t0);
    for _ in 0..10 {
        l.on_sample(t0, t0, MS, Signal::Dropped, 1);
    }
    assert_eq!(l.allowed(), 1, "never below one");
    assert!(!l.in_slow_start());
}

#[test]
fn jitter_of_ten_percent_does_not_collapse_the_limit() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    // A fixed pseudo-random sequence: ±10% around 50 ms, sample by sample.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut now = t0;
    let mut low = usize::MAX;
    for i in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let jitter = (seed % 2001) as f64 / 10_000.0 - 0.1;
        let ms = 50.0 * (1.0 + jitter);
        now += Duration::from_micros(200);
        let n = l.allowed();
        l.on_sample(
            now,
            now,
            Duration::from_secs_f64(ms / 1000.0),
            Signal::Answered,
            n,
        );
        if i > 5_000 {
            low = low.min(l.allowed());
        }
    }
    assert!(low >= 256, "stays high through jitter: lowest {low}");
}

#[test]
fn an_idle_endpoint_does_not_grow_beyond_what_it_uses() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    for i in 0..1000 {
        l.on_sample(t0, t0, 10 * MS, Signal::Answered, 1 + i % 2);
    }
    assert!(
        l.allowed() <= 8,
        "one or two at a time: at most twice that: {}",
        l.allowed()
    );
}

#[test]
fn the_floor_is_measured_again_and_follows_a_receiver_that_got_slower() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    drive(&mut l, t0, 30, |_, _, _| 10.0);
    assert_eq!(l.floor_ms(), Some(10.0));
    // The receiver now takes 40 ms whatever we do (its database got slower).
    let later = t0 + REMEASURE_EVERY;
    let seen = drive(&mut l, later, 60, |_, _, _| 40.0);
    assert_eq!(l.floor_ms(), Some(40.0), "re-measured");
    assert_eq!(*seen.last().unwrap(), 512, "and grown back: {seen:?}");
}

#[test]
fn a_queue_of_our_own_making_never_becomes_the_floor() {
    let t0 = Instant::now();
    let mut l = Limit::new(START, 512, t0);
    let mut now = t0;
    // Ten minutes against one blocking thread; the floor is re-measured twenty times.
    for _ in 0..30_000 {
        let n = l.allowed();
        let handed = now;
        // In a steady stream each POST waits for the others ahead of it; one ends every
        // 20 ms.
        let ms = 20.0 * n as f64;
        now += Duration::from_millis(20);
        l.on_sample(
            now,
            handed,
            Duration::from_secs_f64(ms / 1000.0),
            Signal::Answered,
            n,
        );
        if now > t0 + Duration::from_secs(600) {
            break;
        }
    }
    assert!(l.floor_ms().unwrap() <= 21.0, "{:?}", l.floor_ms());
    assert!(l.value() <= 6.0, "{}", l.value());
}

#[test]
fn a_closing_receiver_is_kept_to_a_queue_of_a_connection_or_two_and_never_doubles() {
    let t0 = Instant::now();
    for threads in [8usize, 32, 100] {
        let mut l = Limit::new(START, 512, t0);
        l.set_closing(true);
        assert!(!l.in_slow_start());
        let seen = drive(&mut l, t0, 300, |_, i, _| blocking(threads, 20.0, i));
        for w in seen.windows(2) {
            assert!(
                w[1] <= w[0] + 4,
                "{threads} threads: grows by 4 at most: {seen:?}"
            );
        }
        let late = &seen[100..];
        assert!(
            late.iter().all(|n| (threads - 2..=threads + 4).contains(n)),
            "{threads} threads: its threads and a connection or two waiting: {seen:?}"
        );
    }
}
