//! Each receiver at its own pace: a blackholed endpoint holds only its small start while
//! the others go on, and a small receiver that blocks gets a burst without a failure.

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
