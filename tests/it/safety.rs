//! Data safety when things go wrong underneath: a delivery that cannot be loaded, a commit
//! that fails (full disk), and retention, driven by the store's fault switches and clock.

use std::time::Duration;

use serde_json::json;

use crate::support::{Receiver, Reply, TestServer};

#[test]
fn a_delivery_that_cannot_be_loaded_ends_failed_not_sending() {
    let s = TestServer::start();
    let rx = Receiver::start(Reply::Status(200, "ok"));
    let ep = s.endpoint(&s.key, &rx.url("/"), &["*"]);
    s.server().store.faults().fail_loads(true);
    let evt = s.event(&s.default_customer(), "transactions.fetched", "{}");
    let ds = s.finished_deliveries_of(&s.key, evt["id"].as_str().unwrap(), 1);
    assert_eq!(ds[0]["status"], "failed", "{:#}", ds[0]);
    assert_eq!(ds[0]["error"], "internal");
    assert!(ds[0]["error_detail"].as_str().unwrap().contains("not sent"));
    assert!(rx.drain().is_empty(), "nothing was sent");
    // The server goes on delivering once reads work again.
    s.server().store.faults().fail_loads(false);
    let evt = s.event(&s.default_customer(), "transactions.fetched", "{}");
    let ds = s.finished_deliveries_of(&s.key, evt["id"].as_str().unwrap(), 1);
    assert_eq!(ds[0]["status"], "succeeded");
    assert_eq!(ds[0]["endpoint_id"], ep["id"]);
}

/// SPEC §7 (issue 22): a write that fails (a full disk) refuses writes with 503 and leaves
/// the server alive (`/healthz` 200 degraded, `/readyz` 503); what was accepted stays
/// readable; once the file takes writes again the server writes again by itself (no restart,
/// which under systemd would loop while the disk is still full); and the result of a POST
/// that finished meanwhile, kept in memory, is written then.
#[test]
fn a_failed_commit_refuses_writes_then_recovers_by_itself() {
    let rx = Receiver::counting();
    let s = TestServer::start();
    let customer = s.default_customer();
    let kept = s.event(&customer, "transactions.fetched", r#"{"n":1}"#);
    // A POST under way when the disk fills: its receiver answers after a second.
    s.endpoint(&s.key, &rx.url("/delay/1000/"), &["*"]);
    let slow = s.event(&customer, "transactions.fetched", r#"{"n":2}"#);
    crate::support::wait_for(10, "the slow POST to start", || {
        (rx.total() >= 1).then_some(())
    });
    s.server().store.faults().fail_commits(true);
    let body = json!({"customer_id": customer, "event": "transactions.fetched", "data": {}});
    let (status, err) = s.api.post("/api/v1/events", &s.admin, &body);
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["error"]["code"], "unavailable");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resume by themselves"),
        "{err}"
    );
    // Alive but degraded: a liveness probe must not kill it; not ready for traffic.
    let (status, health) = s.api.get("/healthz", "");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("degraded")),
        "{health}"
    );
    assert!(health["reason"].is_string());
    let (status, ready) = s.api.get("/readyz", "");
    assert_eq!(status, 503, "{ready}");
    // What was accepted before stays readable.
    let (status, e) = s.api.get(
        &format!("/api/v1/events/{}", kept["id"].as_str().unwrap()),
        &s.key,
    );
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["data"]["n"], 1);
    // The slow POST ends while nothing can be written: its result waits in memory.
    let slow_path = format!("/api/v1/events/{}", slow["id"].as_str().unwrap());
    std::thread::sleep(Duration::from_millis(1500));
    let (_, e) = s.api.get(&slow_path, &s.key);
    if !crate::support::on_postgres() {
        // (On PostgreSQL the fault stops new writes only: results are written meanwhile.)
        assert_eq!(e["deliveries"][0]["status"], "sending", "{e}");
    }

    // Room on the disk again: writes resume by themselves.
    s.server().store.faults().fail_commits(false);
    let accepted = crate::support::wait_for(20, "writes to resume", || {
        let (status, v) = s.api.post("/api/v1/events", &s.admin, &body);
        (status == 202).then_some(v)
    });
    assert_eq!(accepted["deliveries"], 1);
    let (status, health) = s.api.get("/healthz", "");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("ok")),
        "{health}"
    );
    let (status, _) = s.api.get("/readyz", "");
    assert_eq!(status, 200);
    // The result kept in memory is written: the slow delivery succeeded, sent once.
    crate::support::wait_for(10, "the kept result to be written", || {
        let (_, e) = s.api.get(&slow_path, &s.key);
        (e["deliveries"][0]["status"] == "succeeded").then_some(())
    });
    // And the server delivers again.
    crate::support::wait_for(20, "the new event to be delivered", || {
        (rx.count(accepted["id"].as_str().unwrap()) == 1).then_some(())
    });
    assert_eq!(rx.count(slow["id"].as_str().unwrap()), 1, "sent once");
    let (status, list) = s.api.get("/api/v1/events", &s.key);
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
}

#[test]
fn retention_prunes_old_events_and_keeps_recent_ones() {
    let s = TestServer::start();
    let rx = Receiver::start(Reply::Status(200, "ok"));
    s.endpoint(&s.key, &rx.url("/"), &["*"]);
    let evt = s.event(&s.default_customer(), "transactions.fetched", "{}");
    let id = evt["id"].as_str().unwrap().to_owned();
    let ds = s.finished_deliveries_of(&s.key, &id, 1);
    let dlv = ds[0]["id"].as_str().unwrap().to_owned();
    let clock = s.server().store.clock();
    // 29 days on: inside the 30-day retention, kept.
    clock.advance(Duration::from_secs(29 * 86_400));
    s.server().prune_now();
    assert_eq!(s.api.get(&format!("/api/v1/events/{id}"), &s.key).0, 200);
    // Two days more: gone, with its delivery.
    clock.advance(Duration::from_secs(2 * 86_400));
    s.server().prune_now();
    assert_eq!(s.api.get(&format!("/api/v1/events/{id}"), &s.key).0, 404);
    assert_eq!(
        s.api.get(&format!("/api/v1/deliveries/{dlv}"), &s.key).0,
        404
    );
}

#[test]
fn retention_keeps_an_event_whose_delivery_is_still_pending() {
    let s = TestServer::start();
    // One send a second: the second delivery waits, pending, while the clock jumps.
    let rx = Receiver::start(Reply::Status(200, "ok"));
    let (status, _) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": rx.url("/"), "events": ["*"], "rate_limit_per_sec": 1}),
    );
    assert_eq!(status, 201);
    let customer = s.default_customer();
    let ids: Vec<String> = (0..3)
        .map(|_| {
            s.event(&customer, "transactions.fetched", "{}")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The first is sent at once; at one a second, the others wait pending meanwhile.
    s.finished_deliveries_of(&s.key, &ids[0], 1);
    s.server()
        .store
        .clock()
        .advance(Duration::from_secs(31 * 86_400));
    s.server().prune_now();
    let statuses: Vec<u16> = ids
        .iter()
        .map(|id| s.api.get(&format!("/api/v1/events/{id}"), &s.key).0)
        .collect();
    // What had finished went; what had not is still there (it may have finished since).
    assert_eq!(statuses, [404, 200, 200]);
}

#[test]
fn idempotency_keys_are_forgotten_after_a_day() {
    let s = TestServer::start();
    let customer = s.default_customer();
    let send = |data: &str| {
        let body = format!(
            r#"{{"customer_id":"{customer}","event":"transactions.fetched","data":{data}}}"#
        );
        s.api.send(
            "POST",
            "/api/v1/events",
            &s.admin,
            Some(&body),
            &[("idempotency-key", "k-1")],
        )
    };
    let (status, first) = send(r#"{"a":1}"#);
    assert_eq!(status, 202);
    assert_eq!(send(r#"{"a":1}"#).1["id"], first["id"], "a replay");
    assert_eq!(send(r#"{"a":2}"#).0, 409, "same key, other body");
    // 23 hours on the key still holds, even after a retention pass.
    let clock = s.server().store.clock();
    clock.advance(Duration::from_secs(23 * 3600));
    s.server().prune_now();
    assert_eq!(send(r#"{"a":2}"#).0, 409);
    // Past a day it is forgotten: the same key makes a new event.
    clock.advance(Duration::from_secs(2 * 3600));
    s.server().prune_now();
    let (status, again) = send(r#"{"a":2}"#);
    assert_eq!(status, 202);
    assert_ne!(again["id"], first["id"]);
}

#[test]
fn a_portal_session_survives_a_restart() {
    let mut s = TestServer::start();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let (status, session) = crate::support::portal_sign_in(&s.api.base, &s.key);
    assert_eq!(status, 303);
    let session = session.unwrap();
    let data = s.data.clone();
    s.stop();
    let again = crate::support::restart_on(data.clone());
    let resp = agent
        .get(format!("http://{}/webhooks", again.addr))
        .header("cookie", &session)
        .call()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "still signed in after a restart"
    );
    again.shutdown();
    // The store holds only a hash of the token.
    let token = session.split_once('=').unwrap().1;
    let raw = match crate::support::database_for(&data) {
        Some(url) => {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let rows = db
                .query("SELECT token_hash || record FROM sessions", &[])
                .unwrap();
            assert!(!rows.is_empty());
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<String>()
                .into_bytes()
        }
        None => std::fs::read(&data).unwrap(),
    };
    assert!(
        !raw.windows(token.len()).any(|w| w == token.as_bytes()),
        "the session token itself is not stored"
    );
}

#[test]
fn deleting_an_endpoint_mid_flight_leaves_no_trace_of_it() {
    if crate::support::on_postgres() {
        return crate::support::skipped(
            "safety::deleting_an_endpoint_mid_flight_leaves_no_trace_of_it",
            "a data file's test (the data file's own tables are read below); not on PostgreSQL",
        );
    }
    use redb::{ReadableDatabase, ReadableTableMetadata};
    use webhooks::store::redb::tables::{CLAIMS, DELIVERIES, RESULTS};
    let mut s = TestServer::start();
    let hang = Receiver::start(Reply::Hang);
    let ep = s.endpoint(&s.key, &hang.url("/"), &["*"]);
    let cus = s.default_customer();
    for _ in 0..40 {
        s.event(&cus, "transactions.fetched", "{}");
    }
    crate::support::wait_for(10, "POSTs to be in flight", || {
        let (_, st) = s.api.get("/api/v1/status", &s.admin);
        (st["sending"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    let id = ep["id"].as_str().unwrap();
    assert_eq!(
        s.api.delete(&format!("/api/v1/endpoints/{id}"), &s.key).0,
        204
    );
    drop(hang); // the POSTs in flight end now, after their endpoint is gone
    let other = Receiver::start(Reply::Status(200, "ok"));
    s.endpoint(&s.key, &other.url("/"), &["*"]);
    let evt = s.event(&cus, "transactions.fetched", "{}");
    s.finished_deliveries_of(&s.key, evt["id"].as_str().unwrap(), 1);
    crate::support::wait_for(10, "the queue to be empty", || {
        let (_, st) = s.api.get("/api/v1/status", &s.admin);
        (st["pending"] == 0 && st["sending"] == 0).then_some(())
    });
    let data = s.data.clone();
    s.stop();
    let db = crate::support::open_raw(&data);
    let tx = db.begin_read().unwrap();
    // One delivery is left (the other endpoint's), with its result; the deleted endpoint
    // has no claim mark and its late results were not written.
    assert_eq!(tx.open_table(DELIVERIES).unwrap().len().unwrap(), 1);
    assert_eq!(tx.open_table(RESULTS).unwrap().len().unwrap(), 1);
    assert!(tx.open_table(CLAIMS).unwrap().get(id).unwrap().is_none());
}
