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
fn a_schema_1_file_is_migrated_and_its_idempotency_keys_still_replay() {
    if crate::support::on_postgres() {
        return crate::support::skipped(
            "safety::a_schema_1_file_is_migrated_and_its_idempotency_keys_still_replay",
            "a data file's test (a data file's migration; the database's schema is tested in cluster.rs); not on PostgreSQL",
        );
    }
    use redb::{ReadableDatabase, ReadableTable};
    use webhooks::store::redb::tables::{IDEMPOTENCY, META, SESSIONS};
    let mut s = TestServer::start();
    let customer = s.default_customer();
    let body = format!(
        r#"{{"customer_id":"{customer}","event":"transactions.fetched","data":{{"a":1}}}}"#
    );
    let send = |api: &crate::support::Api, admin: &str, body: &str| {
        api.send(
            "POST",
            "/api/v1/events",
            admin,
            Some(body),
            &[("idempotency-key", "k-1")],
        )
    };
    let (status, first) = send(&s.api, &s.admin, &body);
    assert_eq!(status, 202);
    let data = s.data.clone();
    let (key, admin) = (s.key.clone(), s.admin.clone());
    s.stop();

    // Turn the file back into what schema 1 wrote: the answer as rendered JSON text, no
    // sessions table.
    {
        let db = crate::support::open_raw(&data);
        let rows: Vec<((String, String), serde_json::Value)> = {
            let tx = db.begin_read().unwrap();
            let t = tx.open_table(IDEMPOTENCY).unwrap();
            t.iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    let (c, key) = k.value();
                    (
                        (c.to_owned(), key.to_owned()),
                        serde_json::from_slice(v.value()).unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(rows.len(), 1);
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(IDEMPOTENCY).unwrap();
            for ((c, k), rec) in &rows {
                let a = &rec["accepted"][0];
                let answer = serde_json::json!({
                    "id": a["id"], "event": a["event"], "customer_id": a["customer_id"],
                    "created_at": first["created_at"], "deliveries": a["deliveries"],
                });
                let old = serde_json::json!({
                    "request_hash": rec["request_hash"],
                    "response": answer.to_string(),
                    "created_at": rec["created_at"],
                });
                t.insert((c.as_str(), k.as_str()), old.to_string().as_bytes())
                    .unwrap();
            }
            tx.open_table(META)
                .unwrap()
                .insert("schema_version", 1u64.to_le_bytes().as_slice())
                .unwrap();
        }
        tx.delete_table(SESSIONS).unwrap();
        as_schema_2(&tx);
        tx.commit().unwrap();
    }

    let again = crate::support::restart_on(data);
    let api = crate::support::Api::new(&format!("http://{}", again.addr));
    let (status, replay) = send(&api, &admin, &body);
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay, first, "the same answer as the first time");
    let (status, _) = send(&api, &admin, &body.replace(r#""a":1"#, r#""a":2"#));
    assert_eq!(status, 409);
    assert_eq!(api.get("/api/v1/endpoints", &key).0, 200);
    again.shutdown();
}

/// Schema 2's queue tables, gone since schema 3.
const OLD_PENDING: redb::TableDefinition<(&str, &str), ()> = redb::TableDefinition::new("pending");
const OLD_SENDING: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("sending");

/// Turns a current data file's tables into schema 2's: events and deliveries go (a test
/// writes them back in schema 2's JSON), results, claim marks and statistics do not exist,
/// the queue is the `pending` and `sending` tables.
fn as_schema_2(tx: &redb::WriteTransaction) {
    use webhooks::store::redb::tables::*;
    for t in [EVENTS, DELIVERIES] {
        tx.delete_table(t).unwrap();
        tx.open_table(t).unwrap();
    }
    for t in [
        CUSTOMER_EVENTS,
        CUSTOMER_DELIVERIES,
        ENDPOINT_DELIVERIES,
        EVENT_DELIVERIES,
    ] {
        tx.delete_table(t).unwrap();
        tx.open_table(t).unwrap();
    }
    tx.delete_table(RESULTS).unwrap();
    tx.delete_table(CLAIMS).unwrap();
    tx.delete_table(LATE).unwrap();
    tx.delete_table(STATS).unwrap();
    tx.open_table(OLD_PENDING).unwrap();
    tx.open_table(OLD_SENDING).unwrap();
}

#[test]
fn a_schema_2_file_is_migrated_with_its_queue_results_and_bodies() {
    if crate::support::on_postgres() {
        return crate::support::skipped(
            "safety::a_schema_2_file_is_migrated_with_its_queue_results_and_bodies",
            "a data file's test (a data file's migration); not on PostgreSQL",
        );
    }
    use redb::ReadableDatabase;
    use webhooks::domain::{Event, IdGen, IdKind};
    use webhooks::store::redb::tables::*;
    let rx = Receiver::start(Reply::Status(200, "ok"));
    let mut s = TestServer::start();
    let customer = s.default_customer();
    let url = rx.url("/hook");
    let ep = s.endpoint(&s.key, &url, &["*"]);
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    let (data, key, admin) = (s.data.clone(), s.key.clone(), s.admin.clone());
    s.stop();

    // Three events as schema 2 wrote them (JSON records, the body a JSON string), one
    // delivery each: finished, claimed when the server stopped, and waiting.
    let ids = IdGen::new();
    let now = webhooks::domain::time::now_ms();
    let mut made = Vec::new();
    {
        let db = crate::support::open_raw(&data);
        let tx = db.begin_write().unwrap();
        as_schema_2(&tx);
        for (n, state) in ["succeeded", "sending", "pending"].into_iter().enumerate() {
            let (evt, dlv) = (ids.next(IdKind::Event), ids.next(IdKind::Delivery));
            let payload = format!(r#"{{"n":{n},"text":"a \"quote\" and é"}}"#);
            let (body, start) = Event::wire_body("transactions.fetched", &payload);
            let event = json!({
                "id": evt, "customer_id": customer, "event": "transactions.fetched",
                "test": false, "created_at": now, "body": body, "data_start": start,
            });
            let done = state == "succeeded";
            let delivery = json!({
                "id": dlv, "event_id": evt, "endpoint_id": ep_id, "customer_id": customer,
                "event": "transactions.fetched", "url": url,
                "status": if done { "succeeded" } else { "pending" },
                "response_status": done.then_some(200), "response_body": done.then_some("ok"),
                "error": null, "error_detail": null, "duration_ms": done.then_some(12),
                "created_at": now, "started_at": done.then_some(now),
                "finished_at": done.then_some(now + 12), "resend_of": null, "test": false,
            });
            let (c, e, d) = (customer.as_str(), evt.as_str(), dlv.as_str());
            tx.open_table(EVENTS)
                .unwrap()
                .insert(e, event.to_string().as_bytes())
                .unwrap();
            tx.open_table(CUSTOMER_EVENTS)
                .unwrap()
                .insert((c, e), ())
                .unwrap();
            tx.open_table(DELIVERIES)
                .unwrap()
                .insert(d, delivery.to_string().as_bytes())
                .unwrap();
            tx.open_table(CUSTOMER_DELIVERIES)
                .unwrap()
                .insert((c, d), ())
                .unwrap();
            tx.open_table(ENDPOINT_DELIVERIES)
                .unwrap()
                .insert((ep_id.as_str(), d), ())
                .unwrap();
            tx.open_table(EVENT_DELIVERIES)
                .unwrap()
                .insert((e, d), ())
                .unwrap();
            match state {
                "sending" => {
                    tx.open_table(OLD_SENDING)
                        .unwrap()
                        .insert(d, ep_id.as_str())
                        .unwrap();
                }
                "pending" => {
                    tx.open_table(OLD_PENDING)
                        .unwrap()
                        .insert((ep_id.as_str(), d), ())
                        .unwrap();
                }
                _ => {}
            }
            made.push((evt, dlv, body, payload));
        }
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 2u64.to_le_bytes().as_slice())
            .unwrap();
        tx.commit().unwrap();
        // Nothing of schema 3 is there yet.
        let read = db.begin_read().unwrap();
        assert!(read.open_table(RESULTS).is_err());
    }

    let again = crate::support::restart_on(data);
    let api = crate::support::Api::new(&format!("http://{}", again.addr));
    // The waiting delivery goes out, byte for byte the body schema 2 kept.
    let got = rx.next(20);
    assert_eq!(got.body_str(), made[2].2);
    assert_eq!(got.header("webhook-id"), Some(made[2].0.as_str()));
    let delivery = |i: usize| {
        crate::support::wait_for(20, "the delivery to settle", || {
            let (status, d) = api.get(&format!("/api/v1/deliveries/{}", made[i].1), &key);
            assert_eq!(status, 200, "{d}");
            (!matches!(d["status"].as_str(), Some("pending" | "sending"))).then_some(d)
        })
    };
    let finished = delivery(0);
    assert_eq!(finished["status"], "succeeded");
    assert_eq!(finished["response_status"], 200);
    assert_eq!(finished["duration_ms"], 12);
    assert_eq!(
        delivery(1)["status"],
        "interrupted",
        "claimed when it stopped"
    );
    assert_eq!(delivery(2)["status"], "succeeded");
    for (evt, _, _, payload) in &made {
        let (status, e) = api.get(&format!("/api/v1/events/{evt}"), &key);
        assert_eq!(status, 200, "{e}");
        let want: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(e["data"], want);
        assert_eq!(e["deliveries"].as_array().unwrap().len(), 1);
    }
    let (_, status) = api.get("/api/v1/status", &admin);
    assert_eq!(
        (&status["pending"], &status["sending"]),
        (&json!(0), &json!(0)),
        "{status}"
    );
    assert!(rx.drain().is_empty(), "nothing else was sent");
    again.shutdown();
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
