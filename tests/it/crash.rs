//! kill -9 of the real binary under load: nothing accepted is lost, nothing is sent twice,
//! and what is left `interrupted` stays within the stated bound.

use serde_json::json;

use crate::support::Proc;
use crate::support::{Receiver, Reply, ingest_until, wait_for};

#[test]
fn a_kill_9_under_concurrent_ingest_loses_nothing_and_sends_nothing_twice() {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::start(Reply::Status(200, ""));
    let mut p = Proc::start(&data);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    let (_, customers) = p.api.get("/api/v1/customers", &admin);
    let cus = customers["data"][0]["id"].as_str().unwrap().to_owned();
    p.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/"), "events": ["*"]}),
    );

    let stop = AtomicBool::new(false);
    let accepted = std::thread::scope(|scope| {
        let ingest = scope.spawn(|| ingest_until(&p.api.base, &admin, &cus, 4, &stop));
        // Kill it mid-stream, once a few hundred events are in.
        wait_for(60, "deliveries to flow", || {
            let (_, m) = p.api.send_raw("GET", "/metrics", "", None, &[]);
            let ingested = m
                .lines()
                .find_map(|l| l.strip_prefix("webhooks_events_ingested_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())?;
            (ingested >= 300).then_some(())
        });
        p.child.kill().unwrap();
        p.child.wait().unwrap();
        stop.store(true, Ordering::Release);
        ingest.join().unwrap()
    });
    assert!(accepted.len() >= 300);

    let p = Proc::start(&data);
    wait_for(60, "every delivery to settle", || {
        let (_, m) = p.api.send_raw("GET", "/metrics", "", None, &[]);
        let settled = m.contains("webhooks_queue_depth 0\n")
            && m.contains("webhooks_deliveries_claimed 0\n")
            && m.contains("webhooks_deliveries_in_flight 0\n");
        settled.then_some(())
    });
    let mut received: HashMap<String, usize> = HashMap::new();
    for r in receiver.drain() {
        *received
            .entry(r.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let (mut delivered, mut interrupted) = (0, 0);
    for id in &accepted {
        let (st, e) = p.api.get(&format!("/api/v1/events/{id}"), &key);
        assert_eq!(st, 200, "accepted event {id} was lost");
        let status = e["deliveries"][0]["status"].as_str().unwrap().to_owned();
        let got = received.get(id).copied().unwrap_or(0);
        match status.as_str() {
            "succeeded" => {
                assert_eq!(got, 1, "{id} succeeded but arrived {got} times");
                delivered += 1;
            }
            "interrupted" => interrupted += 1,
            other => panic!("{id} ended {other}"),
        }
    }
    eprintln!(
        "kill -9 ledger: {} accepted, {delivered} delivered once, {interrupted} interrupted, 0 lost, 0 twice",
        accepted.len()
    );
}

#[test]
fn a_kill_9_with_the_pool_full_leaves_at_most_the_posts_in_flight_and_the_claims_ahead() {
    use std::collections::HashMap;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::start(Reply::Status(200, ""));
    let workers = 32;
    let p = Proc::start_with(&data, &["--workers", &workers.to_string()]);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    let (_, customers) = p.api.get("/api/v1/customers", &admin);
    let cus = customers["data"][0]["id"].as_str().unwrap().to_owned();
    // A receiver that holds each answer 300 ms: quick enough to be given the idle pool.
    p.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/300/"), "events": ["*"]}),
    );
    let events: Vec<serde_json::Value> = (0..300)
        .map(|i| json!({"customer_id": cus, "event": "transactions.fetched", "data": {"n": i}}))
        .collect();
    let (st, batch) = p
        .api
        .post("/api/v1/events/batch", &admin, &json!({ "events": events }));
    assert_eq!(st, 202, "{batch}");
    let accepted: Vec<String> = batch["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // Wait until the pool is (nearly) full, so that the bound is approached, then kill.
    let gauge = |p: &Proc, name: &str| {
        let (_, m) = p.api.send_raw("GET", "/metrics", "", None, &[]);
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    let in_flight = wait_for(30, "the pool to fill", || {
        let n = gauge(&p, "webhooks_deliveries_in_flight");
        (n >= workers - 4).then_some(n)
    });
    let mut p = p;
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let p = Proc::start_with(&data, &["--workers", &workers.to_string()]);
    wait_for(60, "every delivery to settle", || {
        let settled = gauge(&p, "webhooks_queue_depth") == 0
            && gauge(&p, "webhooks_deliveries_claimed") == 0
            && gauge(&p, "webhooks_deliveries_in_flight") == 0;
        settled.then_some(())
    });
    let mut received: HashMap<String, usize> = HashMap::new();
    for r in receiver.drain() {
        *received
            .entry(r.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    let mut interrupted = 0;
    for id in &accepted {
        let (st, e) = p.api.get(&format!("/api/v1/events/{id}"), &key);
        assert_eq!(st, 200, "accepted event {id} was lost");
        let got = received.get(id).copied().unwrap_or(0);
        match e["deliveries"][0]["status"].as_str().unwrap() {
            "succeeded" => assert_eq!(got, 1, "{id} arrived {got} times"),
            "interrupted" => {
                assert!(got <= 1, "{id} was sent again after the crash");
                interrupted += 1;
            }
            other => panic!("{id} ended {other}"),
        }
    }
    let bound = workers + webhooks::delivery::CLAIM_AHEAD;
    eprintln!(
        "kill -9 with the pool full: {in_flight} in flight, {interrupted} interrupted (bound {bound})"
    );
    assert!(
        interrupted >= (workers - 4) / 2,
        "the POSTs in flight at the kill are interrupted: {interrupted}"
    );
    assert!(
        interrupted <= bound,
        "{interrupted} interrupted, bound {bound}"
    );
}
