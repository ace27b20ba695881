//! Hold, never burn: a receiver that is down pauses its endpoint; what was not tried waits,
//! and goes once the receiver is back, each delivery once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::small::SmallReceiver;
use crate::support::{Receiver, Reply, TestServer, wait_for};

fn endpoint_state(s: &TestServer, id: &str) -> Value {
    let (st, e) = s.api.get(&format!("/api/v1/endpoints/{id}"), &s.key);
    assert_eq!(st, 200, "{e}");
    e["state"].clone()
}

fn events(s: &TestServer, n: usize) {
    s.batch(n);
}

/// Every delivery of the customer with this status (all pages).
fn deliveries(s: &TestServer, status: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before = String::new();
    loop {
        let (_, page) = s.api.get(
            &format!("/api/v1/deliveries?status={status}&limit=250{before}"),
            &s.key,
        );
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => before = format!("&before={n}"),
            None => return all,
        }
    }
}

/// The failures once the POSTs under way when the endpoint paused have ended.
fn failed_once_quiet(s: &TestServer) -> Vec<Value> {
    wait_for(30, "the POSTs under way to end", || {
        deliveries(s, "sending").is_empty().then_some(())
    });
    deliveries(s, "failed")
}

fn settled(s: &TestServer) -> bool {
    deliveries(s, "pending").is_empty() && deliveries(s, "sending").is_empty()
}

#[test]
fn a_receiver_that_restarts_gets_what_waited_once_and_loses_at_most_what_was_in_flight() {
    let s = TestServer::start();
    let work = Duration::from_millis(2);
    let r = SmallReceiver::start(4, work);
    let port = r.port;
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let id = ep["id"].as_str().unwrap();
    events(&s, 20);
    wait_for(30, "the first 20 received", || {
        (r.total() >= 20).then_some(())
    });
    // The receiver goes away (a deploy): its port refuses connections.
    drop(r);
    events(&s, 30);
    let state = wait_for(30, "the endpoint to pause", || {
        let st = endpoint_state(&s, id);
        (st["status"] == "paused").then_some(st)
    });
    assert_eq!(state["reason"], "connection_refused", "{state}");
    let failed = failed_once_quiet(&s);
    // At most what was in flight when the receiver went (its limit, learnt from 20 POSTs:
    // at most 16); the rest waits.
    assert!(failed.len() <= 16, "{} failed", failed.len());
    assert!(failed.iter().all(|d| d["error"] == "connection_refused"));
    wait_for(10, "the rest to wait, counted", || {
        let st = endpoint_state(&s, id);
        (st["waiting"].as_u64()? as usize + failed.len() == 30).then_some(())
    });
    // Back on its port: the checks find it, one delivery goes alone, then the rest.
    let r = SmallReceiver::start_on(port, 4, work).expect("the port is free again");
    wait_for(60, "everything to settle", || settled(&s).then_some(()));
    let (distinct, twice) = r.distinct_and_twice();
    assert_eq!(twice, 0, "nothing is sent twice");
    assert_eq!(distinct + failed.len(), 30, "all that waited arrived");
    assert_eq!(deliveries(&s, "succeeded").len(), 20 + distinct);
    assert_eq!(endpoint_state(&s, id)["status"], "active");
}

#[test]
fn an_answer_503_with_retry_after_pauses_for_that_long_then_one_goes_alone() {
    let s = TestServer::start();
    let r = Receiver::start(Reply::RetryAfter(503, 2));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let id = ep["id"].as_str().unwrap();
    events(&s, 10);
    let state = wait_for(30, "the endpoint to pause", || {
        let st = endpoint_state(&s, id);
        (st["status"] == "paused").then_some(st)
    });
    assert_eq!(state["reason"], "http_503");
    let since = webhooks::domain::time::parse_rfc3339(state["since"].as_str().unwrap()).unwrap();
    let next =
        webhooks::domain::time::parse_rfc3339(state["next_check_at"].as_str().unwrap()).unwrap();
    assert_eq!(next - since, 2000, "its Retry-After");
    failed_once_quiet(&s);
    let burnt = r.drain().len();
    assert!(burnt <= 4, "only what was in flight: {burnt}");
    r.set_reply(Reply::Status(200, ""));
    wait_for(60, "everything to settle", || settled(&s).then_some(()));
    let got = r.drain();
    assert_eq!(got.len() + burnt, 10, "each once");
    assert_eq!(deliveries(&s, "failed").len(), burnt);
    assert_eq!(endpoint_state(&s, id)["status"], "active");
}

#[test]
fn a_pause_is_stored_and_the_actions_act_at_once() {
    let mut s = TestServer::start();
    // A port where nothing listens.
    let url = crate::support::dead_url();
    let ep = s.endpoint(&s.key, &url, &["*"]);
    let id = ep["id"].as_str().unwrap().to_owned();
    events(&s, 12);
    wait_for(30, "the endpoint to pause", || {
        (endpoint_state(&s, &id)["status"] == "paused").then_some(())
    });
    let failed = failed_once_quiet(&s).len();
    assert!((1..=4).contains(&failed), "{failed}");
    // A restart keeps the pause: nothing more is tried.
    s.restart();
    let state = endpoint_state(&s, &id);
    assert_eq!(state["status"], "paused", "{state}");
    wait_for(10, "the waiting ones counted", || {
        (endpoint_state(&s, &id)["waiting"].as_u64()? as usize == 12 - failed).then_some(())
    });
    // The metrics count the paused endpoint and what waits behind it (at its next check).
    wait_for(30, "the metrics to count the held deliveries", || {
        let (_, m) = s.api.send_raw("GET", "/metrics", "", None, &[]);
        let held = format!("webhooks_deliveries_held {}", 12 - failed);
        (m.contains("webhooks_endpoints_paused 1") && m.contains(&held)).then_some(())
    });
    // The command line shows it.
    let mut show = crate::support::webhooks(&s, &["endpoints", "show", &id]);
    show.env("WEBHOOKS_API_KEY", &s.key);
    let (code, out, err) = crate::support::run(show);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("state:       paused"), "{out}");
    assert!(out.contains("connection_refused"), "{out}");
    // Fail the waiting ones: never sent, `receiver_unavailable`; the pause goes on.
    let (st, n) = s.api.post(
        &format!("/api/v1/endpoints/{id}/fail-waiting"),
        &s.key,
        &json!({}),
    );
    assert_eq!(
        (st, n["deliveries"].as_u64()),
        (200, Some((12 - failed) as u64))
    );
    let unavailable = deliveries(&s, "failed")
        .iter()
        .filter(|d| d["error"] == "receiver_unavailable")
        .count();
    assert_eq!(unavailable, 12 - failed);
    // Resume: active at once.
    let (st, e) = s.api.post(
        &format!("/api/v1/endpoints/{id}/resume"),
        &s.key,
        &json!({}),
    );
    assert_eq!((st, e["state"]["status"].as_str()), (200, Some("active")));
    // Another customer's endpoint is not found.
    let (_, other) = s.customer("other");
    let (st, _) = s.api.post(
        &format!("/api/v1/endpoints/{id}/resume"),
        &other,
        &json!({}),
    );
    assert_eq!(st, 404);
}

#[test]
fn what_waits_longer_than_max_hold_secs_fails_unsent() {
    let s = TestServer::start();
    let url = crate::support::dead_url();
    let (st, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": url, "events": ["*"], "max_hold_secs": 1}),
    );
    assert_eq!(st, 201, "{ep}");
    assert_eq!(ep["max_hold_secs"], 1);
    let id = ep["id"].as_str().unwrap().to_owned();
    events(&s, 8);
    wait_for(30, "every delivery to end", || settled(&s).then_some(()));
    let failed = deliveries(&s, "failed");
    assert_eq!(failed.len(), 8);
    let expired = failed
        .iter()
        .filter(|d| d["error"] == "receiver_unavailable")
        .count();
    assert!(expired >= 4, "{expired} expired unsent");
    assert!(
        failed
            .iter()
            .filter(|d| d["error"] == "receiver_unavailable")
            .all(|d| d["started_at"].is_null())
    );
    assert_eq!(endpoint_state(&s, &id)["status"], "paused");
    // 0 = never hold: fail fast, no pause.
    let (st, _) = s.api.patch(
        &format!("/api/v1/endpoints/{id}"),
        &s.key,
        &json!({"max_hold_secs": 0, "url": format!("{url}x")}),
    );
    assert_eq!(st, 200);
    assert_eq!(
        endpoint_state(&s, &id)["status"],
        "active",
        "a new URL resumes"
    );
    events(&s, 6);
    wait_for(30, "every delivery to end", || settled(&s).then_some(()));
    assert_eq!(endpoint_state(&s, &id)["status"], "active", "never held");
    let refused = deliveries(&s, "failed")
        .iter()
        .filter(|d| d["error"] == "connection_refused")
        .count();
    assert!(refused >= 6);
}

#[test]
fn held_deliveries_expire_only_once_older_than_max_hold_secs_by_the_stores_clock() {
    let s = TestServer::start();
    let (st, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": crate::support::dead_url(), "events": ["*"], "max_hold_secs": 3600}),
    );
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    events(&s, 6);
    let waiting = wait_for(30, "the endpoint to pause with deliveries waiting", || {
        let state = endpoint_state(&s, &id);
        let n = state["waiting"].as_u64().unwrap_or(0);
        (state["status"] == "paused" && n > 0 && deliveries(&s, "sending").is_empty()).then_some(n)
    });
    let tried = deliveries(&s, "failed");
    assert!(
        tried.iter().all(|d| d["error"] != "receiver_unavailable"),
        "nothing expires within the hour: {tried:?}"
    );
    assert_eq!(tried.len() + deliveries(&s, "pending").len(), 6);
    // Two hours on, by the store's clock: the next check fails the waiting ones, unsent.
    s.server()
        .store
        .clock()
        .advance(Duration::from_secs(2 * 3600));
    wait_for(30, "the held deliveries to expire", || {
        settled(&s).then_some(())
    });
    let expired: Vec<Value> = deliveries(&s, "failed")
        .into_iter()
        .filter(|d| d["error"] == "receiver_unavailable")
        .collect();
    assert_eq!(expired.len() as u64, waiting, "{expired:?}");
    assert!(expired.iter().all(|d| d["started_at"].is_null()));
    assert_eq!(
        endpoint_state(&s, &id)["status"],
        "paused",
        "the pause goes on"
    );
}

#[test]
fn kill_9_while_paused_loses_nothing_and_sends_nothing_twice() {
    use crate::support::Proc;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let mut p = Proc::start(&data);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    // A receiver that goes away: its port refuses connections until it comes back.
    let r = SmallReceiver::start(2, Duration::from_millis(1));
    let port = r.port;
    let (st, ep) = p.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": r.url("/"), "events": ["*"]}),
    );
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    drop(r);
    let (_, customers) = p.api.get("/api/v1/customers", &admin);
    let cus = customers["data"][0]["id"].as_str().unwrap().to_owned();
    let batch: Vec<Value> = (0..25)
        .map(|i| json!({"customer_id": cus, "event": "transactions.fetched", "data": {"n": i}}))
        .collect();
    let (st, _) = p
        .api
        .post("/api/v1/events/batch", &admin, &json!({ "events": batch }));
    assert_eq!(st, 202);
    let state = |api: &crate::support::Api| {
        let (_, e) = api.get(&format!("/api/v1/endpoints/{id}"), &key);
        e["state"].clone()
    };
    wait_for(30, "the endpoint to pause", || {
        (state(&p.api)["status"] == "paused").then_some(())
    });
    let count = |api: &crate::support::Api, status: &str| {
        let (_, d) = api.get(
            &format!("/api/v1/deliveries?status={status}&limit=250"),
            &key,
        );
        d["data"].as_array().unwrap().len()
    };
    wait_for(30, "the POSTs under way to end", || {
        (count(&p.api, "sending") == 0).then_some(())
    });
    let burnt = count(&p.api, "failed");
    // Killed while paused, with the receiver still down.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let mut p = Proc::start(&data);
    assert_eq!(
        state(&p.api)["status"],
        "paused",
        "the pause outlives the process"
    );
    let r = SmallReceiver::start_on(port, 2, Duration::from_millis(1)).expect("the port is free");
    wait_for(60, "everything to settle", || {
        (count(&p.api, "pending") == 0 && count(&p.api, "sending") == 0).then_some(())
    });
    let (distinct, twice) = r.distinct_and_twice();
    assert_eq!(twice, 0, "nothing is sent twice");
    assert_eq!(distinct + burnt, 25, "nothing that waited is lost");
    assert_eq!(
        count(&p.api, "interrupted"),
        0,
        "nothing was in flight at the kill"
    );
    assert_eq!(state(&p.api)["status"], "active");
    p.child.kill().unwrap();
    let _ = p.child.wait();
}

#[test]
fn a_429_reopens_at_half_the_rate_that_drew_it_and_suggests_it() {
    let s = TestServer::start();
    let r = Receiver::start(Reply::Status(200, ""));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let id = ep["id"].as_str().unwrap();
    events(&s, 30);
    wait_for(30, "the first 30 received", || {
        (r.total() >= 30).then_some(())
    });
    wait_for(30, "the first 30 to settle", || settled(&s).then_some(()));
    r.set_reply(Reply::RetryAfter(429, 1));
    events(&s, 200);
    let state = wait_for(30, "the endpoint to pause", || {
        let st = endpoint_state(&s, id);
        (st["status"] == "paused").then_some(st)
    });
    assert_eq!(state["reason"], "http_429");
    let rate = state["suggested_rate_limit_per_sec"]
        .as_u64()
        .expect("a rate is suggested");
    assert!(rate >= 1, "{state}");
    // The portal's banner says so.
    let page = crate::support::page_of(&s, &format!("/webhooks/{id}"));
    assert!(page.contains("asked to slow down (429)"), "{page}");
    assert!(page.contains(&format!("{rate}/s")), "{page}");
    failed_once_quiet(&s);
    r.set_reply(Reply::Status(200, ""));
    wait_for(60, "the endpoint to reopen", || {
        (endpoint_state(&s, id)["status"] == "active").then_some(())
    });
}

#[test]
fn a_hung_receiver_pauses_its_endpoint_after_one_timeout() {
    // The test servers' request timeout is 3 s: the first POSTs time out, the rest wait.
    let s = TestServer::start();
    let r = Receiver::start(Reply::Hang);
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let id = ep["id"].as_str().unwrap();
    events(&s, 12);
    let state = wait_for(30, "the endpoint to pause", || {
        let st = endpoint_state(&s, id);
        (st["status"] == "paused").then_some(st)
    });
    assert_eq!(state["reason"], "timeout", "{state}");
    let failed = failed_once_quiet(&s);
    // Only the POSTs already under way (its small start: 4) timed out; nothing more was tried.
    assert!(
        !failed.is_empty() && failed.len() <= 4,
        "{} failed",
        failed.len()
    );
    assert!(failed.iter().all(|d| d["error"] == "timeout"));
    // The receiver saw those, and at most the one delivery that probes it (it accepts
    // connections, so its check passes; the probe hangs too and the pause goes on).
    let seen = r.drain().len();
    assert!(
        seen <= failed.len() + 1,
        "{seen} received, {} failed",
        failed.len()
    );
    wait_for(10, "the rest to wait, counted", || {
        let waiting = endpoint_state(&s, id)["waiting"].as_u64()? as usize;
        (waiting + failed.len() + 1 >= 12).then_some(())
    });
}

/// The command line's `endpoints fail-waiting` and `endpoints resume` (issue 19): what waits
/// fails unsent and is counted; resume makes the endpoint active at once; a mistyped id is a
/// usage error and another customer's endpoint is not found: exit 2, each in one line.
#[test]
fn the_command_line_fails_the_waiting_ones_and_resumes() {
    let s = TestServer::start();
    let url = crate::support::dead_url();
    let ep = s.endpoint(&s.key, &url, &["*"]);
    let id = ep["id"].as_str().unwrap().to_owned();
    events(&s, 8);
    let waiting = wait_for(30, "the endpoint to pause with deliveries waiting", || {
        let st = endpoint_state(&s, &id);
        (st["status"] == "paused" && st["waiting"].as_u64()? > 0).then(|| st["waiting"].as_u64())?
    });
    let cli = |args: &[&str], key: &str| {
        let mut cmd = crate::support::webhooks(&s, args);
        cmd.env("WEBHOOKS_API_KEY", key);
        crate::support::run(cmd)
    };
    let (code, out, err) = cli(&["endpoints", "fail-waiting", &id], &s.key);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{waiting} waiting deliveries failed, never sent")),
        "{out}"
    );
    let unsent = deliveries(&s, "failed")
        .iter()
        .filter(|d| d["error"] == "receiver_unavailable")
        .count() as u64;
    assert_eq!(unsent, waiting);
    let (code, out, err) = cli(&["endpoints", "resume", &id], &s.key);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    assert_ne!(endpoint_state(&s, &id)["status"], "paused");
    let (code, _, err) = cli(&["endpoints", "resume", "not-an-id"], &s.key);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (_, other) = s.customer("other");
    let (code, _, err) = cli(&["endpoints", "fail-waiting", &id], &other);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no endpoint") || err.contains("not found"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
