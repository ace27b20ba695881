//! Data files of older schemas opened by this build: migrated forward with their queue,
//! results, bodies and idempotency keys.

use serde_json::json;

use crate::support::{Receiver, Reply, TestServer};

#[test]
fn a_schema_1_file_is_migrated_and_its_idempotency_keys_still_replay() {
    if crate::support::on_postgres() {
        return crate::support::skipped(
            "migration::a_schema_1_file_is_migrated_and_its_idempotency_keys_still_replay",
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
            "migration::a_schema_2_file_is_migrated_with_its_queue_results_and_bodies",
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
