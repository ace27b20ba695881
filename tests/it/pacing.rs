//! Each receiver at its own pace: a blackholed endpoint holds only its small start while
//! the others go on, a small receiver that blocks gets a burst without a failure, and a
//! connection the receiver may be closing for idleness is never reused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::small::SmallReceiver;
use crate::support::{Receiver, Reply, TestServer};

#[test]
fn a_blackholed_endpoint_holds_its_small_start_and_the_others_are_not_held_up() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let black = Receiver::start(Reply::Hang);
    let healthy = Receiver::start(Reply::Status(200, ""));
    s.endpoint(&s.key, &black.url("/"), &["*"]);
    s.endpoint(&s.key, &healthy.url("/"), &["*"]);
    for _ in 0..40 {
        s.event(&cus, "transactions.fetched", "{}");
    }
    for _ in 0..40 {
        healthy.next(20);
    }
    for _ in 0..4 {
        black.next(5);
    }
    assert!(
        black.drain().is_empty(),
        "a receiver that never answered got more than its small start"
    );
    crate::support::wait_for(20, "40 recorded successes", || {
        let (_, ok) = s
            .api
            .get("/api/v1/deliveries?status=succeeded&limit=250", &s.key);
        (ok["data"].as_array()?.len() == 40).then_some(())
    });
}

#[test]
fn a_small_receiver_that_blocks_gets_a_burst_of_500_without_a_failure() {
    // A pool as large as a real one: the old sender put hundreds in flight at once.
    let s = TestServer::start_with(|a| a.workers = 256);
    let cus = s.default_customer();
    // One thread, a listen backlog of 5, 5 ms of work per request.
    let small = SmallReceiver::start(1, Duration::from_millis(5));
    s.endpoint(&s.key, &small.url("/"), &["*"]);
    for _ in 0..2 {
        let events: Vec<Value> = (0..250)
            .map(|_| json!({"customer_id": cus, "event": "transactions.fetched", "data": {}}))
            .collect();
        let (st, _) = s.api.post(
            "/api/v1/events/batch",
            &s.admin,
            &json!({ "events": events }),
        );
        assert_eq!(st, 202);
    }
    crate::support::wait_for(120, "500 deliveries answered or failed", || {
        let (_, failed) = s
            .api
            .get("/api/v1/deliveries?status=failed&limit=250", &s.key);
        let failed = failed["data"].as_array()?.len();
        assert_eq!(
            failed,
            0,
            "a delivery failed: {:?}",
            small.distinct_and_twice()
        );
        (small.total() >= 500).then_some(())
    });
    assert_eq!(small.distinct_and_twice(), (500, 0), "each once");
    crate::support::wait_for(20, "500 recorded successes", || {
        let (_, ok) = s
            .api
            .get("/api/v1/deliveries?status=succeeded&limit=250", &s.key);
        let first = ok["data"].as_array()?.len();
        let next = ok["next"].as_str()?;
        let (_, more) = s.api.get(
            &format!("/api/v1/deliveries?status=succeeded&limit=250&before={next}"),
            &s.key,
        );
        (first + more["data"].as_array()?.len() == 500).then_some(())
    });
}

/// A keep-alive receiver that, once a connection has been idle for `idle`, stops reading it
/// and closes it `closing` later, as a loaded server does when its keep-alive timer fires:
/// a request sent in between is never read. Counts the requests it answered.
fn closes_idle_connections(idle: Duration, closing: Duration) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let count = count.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(idle));
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    match r.read_line(&mut line) {
                        Ok(0) => return,
                        Ok(_) => {}
                        // Idle too long: it will close, but not at once.
                        Err(_) => {
                            std::thread::sleep(closing);
                            return;
                        }
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        let h = h.to_ascii_lowercase();
                        if let Some(v) = h.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    if w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, answered)
}

#[test]
fn a_connection_idle_near_the_receivers_keep_alive_is_not_reused() {
    // The receiver closes connections idle 1.2 s, 200 ms after deciding to. The second POST
    // goes 1.3 s after the first: on the first's connection it would be sent into a socket
    // nobody reads again, and lost for good.
    let (url, answered) =
        closes_idle_connections(Duration::from_millis(1200), Duration::from_millis(200));
    // One worker, so the second POST would find the first's connection in its pool.
    let s = TestServer::start_with(|a| a.workers = 1);
    let cus = s.default_customer();
    s.endpoint(&s.key, &url, &["*"]);
    s.event(&cus, "transactions.fetched", "{}");
    crate::support::wait_for(20, "the first answered", || {
        (answered.load(Ordering::SeqCst) == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1300));
    s.event(&cus, "transactions.fetched", "{}");
    crate::support::wait_for(20, "both finished", || (s.api.sent() == 2).then_some(()));
    let (_, failed) = s
        .api
        .get("/api/v1/deliveries?status=failed&limit=10", &s.key);
    assert_eq!(
        failed["data"].as_array().unwrap().len(),
        0,
        "lost on a connection the receiver was closing: {failed}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}
