//! Several nodes on one PostgreSQL database (only when the suite runs against a test cluster,
//! `WEBHOOKS_TEST_DATABASE`): each event delivered once whichever node took it, sessions
//! shared, kill -9, SIGSTOP past the lease and SIGTERM of a node under load, a pause and a
//! key seen by every node, one send budget (setting up: `cluster_setup`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{Api, Proc, Receiver, ingest_until, on_postgres, wait_for};

/// Two nodes on a new database: (a, b, admin token, customer key, customer id).
fn two_nodes(data: &Path, workers: &str) -> (Proc, Proc, String, String, String) {
    let a = Proc::node(data, "node-a", workers);
    let b = Proc::node(data, "node-b", workers);
    assert!(b.secrets.is_empty(), "only the first node bootstraps");
    let admin = a.secret("admin token:");
    let key = a.secret("api key (customer default):");
    let (_, customers) = b.api.get("/api/v1/customers", &admin);
    let customer = customers["data"][0]["id"].as_str().unwrap().to_owned();
    (a, b, admin, key, customer)
}

/// Each accepted event's one delivery: (succeeded, interrupted); fails on a lost event, a
/// delivery sent twice, or any other ending.
fn ledger(api: &Api, key: &str, accepted: &[String], receiver: &Receiver) -> (usize, Vec<String>) {
    let mut succeeded = 0;
    let mut interrupted = Vec::new();
    for id in accepted {
        let (st, e) = api.get(&format!("/api/v1/events/{id}"), key);
        assert_eq!(st, 200, "accepted event {id} was lost");
        let ds = e["deliveries"].as_array().unwrap();
        assert_eq!(ds.len(), 1, "{e}");
        let got = receiver.count(id);
        assert!(got <= 1, "{id} arrived {got} times");
        match ds[0]["status"].as_str().unwrap() {
            "succeeded" => {
                assert_eq!(got, 1, "{id} succeeded but arrived {got} times");
                succeeded += 1;
            }
            "interrupted" => interrupted.push(id.clone()),
            other => panic!("{id} ended {other}: {e}"),
        }
    }
    (succeeded, interrupted)
}

#[test]
fn two_nodes_deliver_each_event_once_and_share_portal_sessions() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::two_nodes_deliver_each_event_once_and_share_portal_sessions",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (a, b, admin, key, customer) = two_nodes(&data, "8");
    let (st, _) = a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/20/"), "events": ["*"]}),
    );
    assert_eq!(st, 201);
    let mut accepted = Vec::new();
    for i in 0..200 {
        let via = if i % 2 == 0 { &a.api } else { &b.api };
        let (st, body) = via.post(
            "/api/v1/events",
            &admin,
            &json!({"customer_id": customer, "event": "transactions.fetched", "data": {"n": i}}),
        );
        assert_eq!(st, 202, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }
    a.api.settled(60);
    let (succeeded, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    assert_eq!((succeeded, interrupted.len()), (200, 0));
    let (_, status) = a.api.get("/api/v1/status", &admin);
    assert_eq!(status["nodes"], 2, "{status}");

    // A portal session made through one node works through the other.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let (status, session) = crate::support::portal_sign_in(&a.api.base, &key);
    assert_eq!(status, 303);
    let session = session.unwrap();
    let resp = agent
        .get(format!("{}/webhooks", b.api.base))
        .header("cookie", &session)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "signed in on the other node");

    // The sign-in throttle is shared: guesses spread over both nodes add up.
    let guess = |base: &str| crate::support::portal_sign_in(base, "whk_wrong").0;
    for base in [
        &a.api.base,
        &b.api.base,
        &a.api.base,
        &b.api.base,
        &a.api.base,
    ] {
        assert_eq!(guess(base), 401);
    }
    assert_eq!(guess(&b.api.base), 429, "five failures across the cluster");
}

#[test]
fn a_node_killed_under_ingest_loses_nothing_and_its_claims_turn_interrupted() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_node_killed_under_ingest_loses_nothing_and_its_claims_turn_interrupted",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (mut a, b, admin, key, customer) = two_nodes(&data, "16");
    a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/30/"), "events": ["*"]}),
    );
    let stop_a = AtomicBool::new(false);
    let stop_b = AtomicBool::new(false);
    let accepted = std::thread::scope(|scope| {
        let on_a = scope.spawn(|| ingest_until(&a.api.base, &admin, &customer, 2, &stop_a));
        let on_b = scope.spawn(|| ingest_until(&b.api.base, &admin, &customer, 2, &stop_b));
        wait_for(60, "deliveries to flow through node a", || {
            (a.api.sent() >= 100).then_some(())
        });
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        stop_a.store(true, Ordering::Release);
        // The survivor keeps taking and delivering events.
        let before = receiver.total();
        wait_for(30, "the survivor to deliver more", || {
            (receiver.total() >= before + 50).then_some(())
        });
        stop_b.store(true, Ordering::Release);
        let mut all = on_a.join().unwrap();
        all.extend(on_b.join().unwrap());
        all
    });
    // Node a's claims are its own until its lease (4 s) lapses, then interrupted.
    b.api.settled(60);
    let (succeeded, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    eprintln!(
        "two-node kill -9 ledger: {} accepted, {succeeded} delivered once, {} interrupted, 0 lost, 0 twice",
        accepted.len(),
        interrupted.len()
    );
    // What was interrupted was node a's in flight or claimed ahead: a bounded few.
    assert!(interrupted.len() <= 16 + 64, "{}", interrupted.len());
}

#[test]
fn a_node_paused_past_its_lease_sends_nothing_the_cluster_interrupted() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_node_paused_past_its_lease_sends_nothing_the_cluster_interrupted",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (mut a, b, admin, key, customer) = two_nodes(&data, "4");
    a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/300/"), "events": ["*"]}),
    );
    // Enough work that node a holds claims when it is paused.
    let mut accepted = Vec::new();
    for i in 0..40 {
        let (st, body) = a.api.post(
            "/api/v1/events",
            &admin,
            &json!({"customer_id": customer, "event": "transactions.fetched", "data": {"n": i}}),
        );
        assert_eq!(st, 202);
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }
    wait_for(30, "node a to be sending", || {
        (a.api.metric("webhooks_deliveries_in_flight")? > 0).then_some(())
    });
    a.signal("-STOP");
    // Past the lease: node b interrupts a's claims and delivers the rest.
    b.api.settled(60);
    let resumed = Instant::now();
    a.signal("-CONT");
    // Node a finds its lease lapsed and stops rather than send what is no longer its own.
    assert_eq!(a.wait_exit(), 1, "a node that lost its lease exits 1");
    let (_, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    assert!(
        !interrupted.is_empty(),
        "node a held claims when it was paused"
    );
    for id in &interrupted {
        if let Some(t) = receiver.first_seen(id) {
            assert!(
                t < resumed,
                "{id} was sent after the cluster interrupted it"
            );
        }
    }
}

#[test]
fn sigterm_of_a_node_under_load_hands_back_what_it_had_not_started() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::sigterm_of_a_node_under_load_hands_back_what_it_had_not_started",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (mut a, b, admin, key, customer) = two_nodes(&data, "8");
    a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/50/"), "events": ["*"]}),
    );
    let batch: Vec<Value> = (0..300)
        .map(
            |i| json!({"customer_id": customer, "event": "transactions.fetched", "data": {"n": i}}),
        )
        .collect();
    let (st, body) = a
        .api
        .post("/api/v1/events/batch", &admin, &json!({ "events": batch }));
    assert_eq!(st, 202, "{body}");
    let accepted: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    wait_for(30, "node a to be sending", || {
        (a.api.metric("webhooks_deliveries_in_flight")? > 0).then_some(())
    });
    a.signal("-TERM");
    assert_eq!(a.wait_exit(), 0);
    b.api.settled(60);
    let (succeeded, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    assert_eq!((succeeded, interrupted.len()), (300, 0), "{interrupted:?}");
}

#[test]
fn a_pause_made_by_one_node_holds_on_the_other_with_one_probe_a_step() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_pause_made_by_one_node_holds_on_the_other_with_one_probe_a_step",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    // A receiver that is up but unwell: 503 with `Retry-After: 2`.
    let receiver = Receiver::start(crate::support::Reply::RetryAfter(503, 2));
    let (a, b, admin, key, customer) = two_nodes(&data, "8");
    let (st, ep) = a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/"), "events": ["*"]}),
    );
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    let mut accepted = Vec::new();
    for (i, api) in [&a.api, &b.api].into_iter().cycle().take(40).enumerate() {
        let (st, e) = api.post(
            "/api/v1/events",
            &admin,
            &json!({"customer_id": customer, "event": "transactions.fetched", "data": {"i": i}}),
        );
        assert_eq!(st, 202, "{e}");
        accepted.push(e["id"].as_str().unwrap().to_owned());
    }
    let state = |api: &Api| {
        let (_, e) = api.get(&format!("/api/v1/endpoints/{id}"), &key);
        e["state"].clone()
    };
    let on_a = wait_for(30, "the endpoint to pause", || {
        let s = state(&a.api);
        (s["status"] == "paused").then_some(s)
    });
    assert_eq!(on_a["reason"], "http_503");
    // Both nodes hold it: the same stored pause, whichever node answers.
    assert_eq!(state(&b.api)["since"], on_a["since"]);
    // What was under way when it paused arrives at once; then one probe a step, from one
    // node or the other, never one from each: each 2 s (its Retry-After) after the last.
    for _ in 0..3 {
        receiver.next(30);
    }
    receiver.drain();
    let mut probes = Vec::new();
    for _ in 0..3 {
        receiver.next(30);
        probes.push(Instant::now());
    }
    for w in probes.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap.as_millis() >= 1500,
            "two probes {gap:?} apart: one a step"
        );
    }
    // The receiver recovers: the rest goes, each once, through both nodes.
    let tried = receiver.total();
    receiver.set_reply(crate::support::Reply::Status(204, ""));
    a.api.settled(60);
    let mut failed = 0;
    for e in &accepted {
        let (_, ev) = b.api.get(&format!("/api/v1/events/{e}"), &key);
        match ev["deliveries"][0]["status"].as_str().unwrap() {
            "succeeded" => assert_eq!(receiver.count(e), 1, "{e}"),
            "failed" => failed += 1,
            other => panic!("{e} ended {other}"),
        }
        assert!(receiver.count(e) <= 1, "{e} arrived twice");
    }
    // Only what was tried while it answered 503 failed (one more if a probe crossed the
    // change of answer); the rest waited.
    assert!(failed as u64 <= tried + 1, "{failed} failed, {tried} tried");
    assert!(failed < 40, "{failed} failed");
    assert_eq!(state(&b.api)["status"], "active");
    assert_eq!(state(&a.api)["status"], "active");
}

#[test]
fn a_key_made_on_one_node_works_on_the_other_at_once() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_key_made_on_one_node_works_on_the_other_at_once",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let (a, b, admin, _, _) = two_nodes(&data, "4");
    for (i, (maker, user)) in [(&a, &b), (&b, &a)].into_iter().enumerate() {
        // A provisioning script: create a customer through one node, use its key through
        // the other at once (no wait for the NOTIFY).
        let (st, c) = maker.api.post(
            "/api/v1/customers",
            &admin,
            &json!({"name": format!("provisioned-{i}")}),
        );
        assert_eq!(st, 201, "{c}");
        let key = c["api_key"].as_str().unwrap();
        let (st, eps) = user.api.get("/api/v1/endpoints", key);
        assert_eq!(st, 200, "{eps}");
        let (st, made) = user.api.post(
            "/api/v1/endpoints",
            key,
            &json!({"url": "http://127.0.0.1:9/", "events": ["*"]}),
        );
        assert_eq!(st, 201, "{made}");
        // A deleted key stops working on every node once the NOTIFY arrives.
        let cid = c["id"].as_str().unwrap();
        let (_, keys) = maker
            .api
            .get(&format!("/api/v1/customers/{cid}/api-keys"), &admin);
        let key_id = keys["data"][0]["id"].as_str().unwrap();
        let (st, _) = maker.api.delete(
            &format!("/api/v1/customers/{cid}/api-keys/{key_id}"),
            &admin,
        );
        assert_eq!(st, 204);
        wait_for(
            10,
            "the deleted key to stop working on the other node",
            || (user.api.get("/api/v1/endpoints", key).0 == 401).then_some(()),
        );
    }
    // A wrong key is still 401 (after the database said no), not an error.
    let (st, _) = b
        .api
        .get("/api/v1/endpoints", "whk_not_a_key_anywhere_0000000000");
    assert_eq!(st, 401);
}

#[test]
fn the_send_budget_is_one_for_the_cluster_not_one_per_node() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::the_send_budget_is_one_for_the_cluster_not_one_per_node",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let flags = |id: &'static str| {
        vec![
            "--node-id",
            id,
            "--workers",
            "4",
            "--max-sends-per-customer-per-min",
            "5",
        ]
    };
    let a = Proc::start_with(&data, &flags("budget-a"));
    let b = Proc::start_with(&data, &flags("budget-b"));
    let key = a.secret("api key (customer default):");
    let (st, ep) = a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "max_hold_secs": 0}),
    );
    assert_eq!(st, 201, "{ep}");
    let test = format!("/api/v1/endpoints/{}/test", ep["id"].as_str().unwrap());
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..8 {
        let api = if i % 2 == 0 { &a.api } else { &b.api };
        match api.send("POST", &test, &key, None, &[]).0 {
            202 => ok += 1,
            429 => refused += 1,
            other => panic!("test send answered {other}"),
        }
    }
    assert_eq!((ok, refused), (5, 3), "five a minute across both nodes");
}
