//! Receivers that close each connection, driven through the lanes: a simulated receiver of
//! a few threads behind a listen backlog of 5, answered as its threads free.

use std::collections::VecDeque;

use super::*;

#[test]
fn a_receiver_that_closes_its_connections_grows_without_doubling() {
    let mut l = Lanes::new(64, 100);
    fill(&mut l, "ep_a", 400);
    assert!(l.lanes["ep_a"].limit.in_slow_start());
    l.note_connection("ep_a", true);
    assert!(
        !l.lanes["ep_a"].limit.in_slow_start(),
        "a doubling round overflows a small backlog before its times come back"
    );
    // With a thread for every POST, answered at its floor, it still grows: by a few a
    // round, never ×2.
    let run = closing_receiver(1000, 20 * MS, 3000);
    assert_eq!(run.overflowed, 0);
    let steps: Vec<_> = run.limits.windows(2).filter(|w| w[1] > w[0]).collect();
    assert!(
        steps.iter().all(|w| w[1] <= w[0] + 4),
        "grows by at most 4 at a time: {:?}",
        run.limits
    );
    assert!(
        *run.limits.last().unwrap() >= 64,
        "it grows: {:?}",
        run.limits
    );
}

/// What `closing_receiver` saw.
struct Closing {
    took: Duration,
    /// Connections that found the queue full: each a SYN the kernel drops (a second's
    /// stall, or a reset and a webhook lost).
    overflowed: usize,
    /// The endpoint's limit, each change of it.
    limits: Vec<usize>,
}

/// A receiver of `threads` threads that each take one connection, work `work` on it and
/// close it, behind a listen backlog of 5 (Linux queues backlog + 1 accepted connections):
/// `n` deliveries of one endpoint, handed out as the dispatcher's loop does (woken by each
/// answer and by the lane's pace).
fn closing_receiver(threads: usize, work: Duration, n: usize) -> Closing {
    const ACCEPT_QUEUE: usize = 6;
    let mut l = Lanes::new(512, 64);
    let mut queued = 0;
    let t0 = Instant::now();
    let mut serving: Vec<(Instant, Instant)> = Vec::new(); // (ends, handed out)
    let mut accepted: VecDeque<Instant> = VecDeque::new();
    let mut stalled: Vec<(Instant, Instant)> = Vec::new(); // (sent again, handed out)
    let (mut done, mut overflowed) = (0, 0);
    let mut limits = vec![l.limit_of("ep_a").unwrap_or(4)];
    let mut t = t0;
    while t < t0 + Duration::from_secs(60) {
        // The store's backlog, read into the lane's window as it empties.
        while queued < n && l.queued() < LANE_WINDOW / 2 {
            l.on_ready("ep_a", format!("d{queued:06}"), None);
            queued += 1;
        }
        let (ended, going): (Vec<_>, Vec<_>) = serving.into_iter().partition(|(e, _)| *e <= t);
        serving = going;
        for (_, handed) in ended {
            l.note_connection("ep_a", true);
            l.on_done("ep_a", handed, t - handed, Signal::Answered, t);
            done += 1;
            let limit = l.limit_of("ep_a").expect("the lane has work");
            if limits.last() != Some(&limit) {
                limits.push(limit);
            }
        }
        if done == n {
            return Closing {
                took: t - t0,
                overflowed,
                limits,
            };
        }
        // A dropped SYN is sent again a second later.
        let (again, waiting): (Vec<_>, Vec<_>) = stalled.into_iter().partition(|(a, _)| *a <= t);
        stalled = waiting;
        let arriving = again.into_iter().map(|(_, h)| h);
        let mut arrive = |handed: Instant, stalled: &mut Vec<(Instant, Instant)>| {
            if serving.len() < threads && accepted.is_empty() {
                serving.push((t + work, handed));
            } else if accepted.len() < ACCEPT_QUEUE {
                accepted.push_back(handed);
            } else {
                overflowed += 1;
                stalled.push((t + Duration::from_secs(1), handed));
            }
        };
        for handed in arriving {
            arrive(handed, &mut stalled);
        }
        claim_all(&mut l, t);
        for _ in l.hand_out(512 - l.in_flight(), true, t) {
            arrive(t, &mut stalled);
        }
        while serving.len() < threads
            && let Some(handed) = accepted.pop_front()
        {
            serving.push((t + work, handed));
        }
        // On to the next thing that happens: an answer, a SYN sent again, or the lane's pace.
        let next = serving
            .iter()
            .map(|(e, _)| *e)
            .chain(stalled.iter().map(|(a, _)| *a))
            .chain(l.next_wakeup(t))
            .min()
            .expect("something is under way");
        t = next.max(t + Duration::from_micros(1));
    }
    panic!("{done} of {n} delivered in a minute");
}

#[test]
fn a_closing_receiver_behind_a_backlog_of_five_is_never_overflowed_and_kept_busy() {
    for threads in [1, 8, 32] {
        let work = 20 * MS;
        let n = 2000;
        let Closing {
            took, overflowed, ..
        } = closing_receiver(threads, work, n);
        let bound = work * (n / threads) as u32;
        assert_eq!(
            overflowed, 0,
            "{threads} threads: no connection finds the queue full"
        );
        assert!(
            took.as_secs_f64() <= 1.5 * bound.as_secs_f64(),
            "{threads} threads: {took:?} against a bound of {bound:?}"
        );
    }
}
