//! Delivery end to end: the exact signed request, subscriptions, failures, resend, recover,
//! secret rotation.

use serde_json::json;

use crate::support::{Receiver, Reply, TestServer};

#[test]
fn a_delivery_is_the_enablenow_payload_signed_the_standard_webhooks_way() {
    let s = TestServer::start();
    let r = Receiver::start(Reply::Status(200, "ok"));
    let cus = s.default_customer();
    let (status, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": r.url("/hook"), "events": ["transactions.fetched"],
                "headers": {"X-Team": "payments"}}),
    );
    assert_eq!(status, 201);
    // Key order, number spelling and inner spacing are the producer's.
    let data = r#"{"userId":"usr_1","amount":1.50,"z":1,"a":[1, 2]}"#;
    let accepted = s.event(&cus, "transactions.fetched", data);
    assert_eq!(accepted["deliveries"], 1);

    let got = r.next(10);
    assert_eq!(got.path, "/hook");
    assert_eq!(
        got.body_str(),
        format!(r#"{{"event":"transactions.fetched","data":{data}}}"#)
    );
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got.header("user-agent").unwrap().starts_with("webhooks/"));
    assert_eq!(got.header("x-team"), Some("payments"));
    assert_eq!(got.header("webhook-id"), accepted["id"].as_str());
    let wh = standardwebhooks::Webhook::new(ep["secret"].as_str().unwrap()).unwrap();
    wh.verify(&got.body, &got.header_map())
        .expect("the signature verifies with the standardwebhooks crate");

    let (_, list) = s.api.get("/api/v1/deliveries", &s.key);
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let d = s.finished_delivery(&s.key, &id);
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["response_status"], 200);
    assert_eq!(d["response_body"], "ok");
    assert_eq!(d["error"], serde_json::Value::Null);
    assert!(d["duration_ms"].is_u64());
    for field in ["started_at", "finished_at", "created_at"] {
        assert!(d[field].as_str().unwrap().ends_with('Z'), "{field}");
    }
}

#[test]
fn the_largest_event_arrives_whole_and_signed() {
    // Data of nearly 256 KiB: far more than the sender's 16 KiB buffers.
    let s = TestServer::start();
    let r = Receiver::start(Reply::Status(200, "ok"));
    let ep = s.endpoint(&s.key, &r.url("/big"), &["*"]);
    let data = format!(r#"{{"blob":"{}"}}"#, "x".repeat(255 * 1024));
    s.event(&s.default_customer(), "transactions.fetched", &data);
    let got = r.next(10);
    assert_eq!(
        got.body_str(),
        format!(r#"{{"event":"transactions.fetched","data":{data}}}"#)
    );
    let wh = standardwebhooks::Webhook::new(ep["secret"].as_str().unwrap()).unwrap();
    wh.verify(&got.body, &got.header_map()).unwrap();
}

#[test]
fn only_enabled_subscribed_endpoints_receive_an_event() {
    let s = TestServer::start();
    let r = Receiver::start(Reply::Status(204, ""));
    let cus = s.default_customer();
    s.endpoint(&s.key, &r.url("/fetched"), &["transactions.fetched"]);
    s.endpoint(&s.key, &r.url("/status"), &["consent.status.updated"]);
    s.endpoint(&s.key, &r.url("/all"), &["*"]);
    let off = s.endpoint(&s.key, &r.url("/disabled"), &["*"]);
    let (st, _) = s.api.patch(
        &format!("/api/v1/endpoints/{}", off["id"].as_str().unwrap()),
        &s.key,
        &json!({"enabled": false}),
    );
    assert_eq!(st, 200);

    let accepted = s.event(&cus, "transactions.fetched", "{}");
    assert_eq!(accepted["deliveries"], 2);
    let ds = s.finished_deliveries_of(&s.key, accepted["id"].as_str().unwrap(), 2);
    assert!(ds.iter().all(|d| d["status"] == "succeeded"));
    let mut paths: Vec<String> = (0..2).map(|_| r.next(10).path).collect();
    paths.sort();
    assert_eq!(paths, ["/all", "/fetched"]);

    // `*` includes types the operator adds later.
    let (st, _) = s.api.post(
        "/api/v1/event-types",
        &s.admin,
        &json!({"name": "payments.settled", "description": "A payment settled", "example": {"id": "p"}}),
    );
    assert_eq!(st, 201);
    let accepted = s.event(&cus, "payments.settled", r#"{"id":"p1"}"#);
    assert_eq!(accepted["deliveries"], 1);
    assert_eq!(r.next(10).path, "/all");
}

#[test]
fn failures_are_recorded_once_with_their_reason() {
    let s = TestServer::start_with(|a| a.request_timeout_secs = 1);
    let cus = s.default_customer();
    let error500 = Receiver::start(Reply::Status(500, "boom"));
    let hanging = Receiver::start(Reply::Hang);
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e1 = s.endpoint(&s.key, &error500.url("/"), &["analysisjob.completed"]);
    let e2 = s.endpoint(&s.key, &hanging.url("/"), &["analysisjob.completed"]);
    let e3 = s.endpoint(
        &s.key,
        &format!("http://127.0.0.1:{closed_port}/"),
        &["analysisjob.completed"],
    );
    let accepted = s.event(&cus, "analysisjob.completed", r#"{"jobId":"j"}"#);
    assert_eq!(accepted["deliveries"], 3);
    let ds = s.finished_deliveries_of(&s.key, accepted["id"].as_str().unwrap(), 3);
    let by = |ep: &serde_json::Value| {
        ds.iter()
            .find(|d| d["endpoint_id"] == ep["id"])
            .unwrap()
            .clone()
    };
    let d1 = by(&e1);
    assert_eq!(
        (
            d1["status"].as_str(),
            d1["response_status"].as_u64(),
            d1["error"].as_str()
        ),
        (Some("failed"), Some(500), None)
    );
    assert_eq!(d1["response_body"], "boom");
    let d2 = by(&e2);
    assert_eq!(
        (d2["status"].as_str(), d2["error"].as_str()),
        (Some("failed"), Some("timeout"))
    );
    assert_eq!(d2["response_status"], serde_json::Value::Null);
    let d3 = by(&e3);
    assert_eq!(
        (d3["status"].as_str(), d3["error"].as_str()),
        (Some("failed"), Some("connection_refused"))
    );
    // One attempt each, never retried.
    error500.next(5);
    hanging.next(5);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(error500.drain().is_empty() && hanging.drain().is_empty());
}

#[test]
fn resend_keeps_the_webhook_id_and_recover_resends_only_failures_in_the_window() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let r = Receiver::start(Reply::Status(500, "no"));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let ep_id = ep["id"].as_str().unwrap();
    let a = s.event(&cus, "transactions.fetched", "{}");
    let first = r.next(10);
    let da = s.finished_deliveries_of(&s.key, a["id"].as_str().unwrap(), 1)[0].clone();
    assert_eq!(da["status"], "failed");

    r.set_reply(Reply::Status(200, "ok"));
    let b = s.event(&cus, "consent.status.updated", "{}");
    r.next(10);
    s.finished_deliveries_of(&s.key, b["id"].as_str().unwrap(), 1);

    let (st, again) = s.api.send(
        "POST",
        &format!("/api/v1/deliveries/{}/resend", da["id"].as_str().unwrap()),
        &s.key,
        None,
        &[],
    );
    assert_eq!(st, 202);
    assert_eq!(again["resend_of"], da["id"]);
    let second = r.next(10);
    assert_eq!(second.header("webhook-id"), first.header("webhook-id"));
    assert_eq!(
        s.finished_delivery(&s.key, again["id"].as_str().unwrap())["status"],
        "succeeded"
    );

    // Recover: a has succeeded since (its resend), b succeeded: nothing to do.
    let recover = |body: serde_json::Value| {
        let (st, n) = s
            .api
            .post(&format!("/api/v1/endpoints/{ep_id}/recover"), &s.key, &body);
        assert_eq!(st, 202);
        n["deliveries"].as_u64().unwrap()
    };
    let since_2000 = json!({"since": "2000-01-01T00:00:00Z"});
    assert_eq!(recover(since_2000.clone()), 0);

    // c fails; recovering sends it once, and again only once more after that fails too.
    r.set_reply(Reply::Status(503, "down"));
    let c = s.event(&cus, "analysisjob.completed", "{}");
    let c_first = r.next(10);
    s.finished_deliveries_of(&s.key, c["id"].as_str().unwrap(), 1);
    assert_eq!(
        recover(json!({"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"})),
        0,
        "outside the window"
    );
    assert_eq!(recover(since_2000.clone()), 1);
    assert_eq!(
        r.next(10).header("webhook-id"),
        c_first.header("webhook-id")
    );
    s.finished_deliveries_of(&s.key, c["id"].as_str().unwrap(), 2);
    assert_eq!(
        recover(since_2000),
        1,
        "one per event, not one per failed attempt"
    );
    r.next(10);
}

#[test]
fn rotating_the_secret_signs_with_both_during_the_overlap() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let r = Receiver::start(Reply::Status(200, ""));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let path = format!(
        "/api/v1/endpoints/{}/rotate-secret",
        ep["id"].as_str().unwrap()
    );
    let old = ep["secret"].as_str().unwrap().to_owned();

    let (st, body) = s
        .api
        .post(&path, &s.key, &json!({"keep_old_for_secs": 3600}));
    assert_eq!(st, 200);
    let new = body["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    s.event(&cus, "transactions.fetched", "{}");
    let got = r.next(10);
    assert_eq!(
        got.header("webhook-signature").unwrap().split(' ').count(),
        2
    );
    for secret in [&old, &new] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&got.body, &got.header_map())
            .expect("both secrets verify during the overlap");
    }

    // Without overlap (empty body allowed): only the newest secret signs.
    let (st, body) = s.api.send("POST", &path, &s.key, None, &[]);
    assert_eq!(st, 200);
    let newest = body["secret"].as_str().unwrap().to_owned();
    s.event(&cus, "transactions.fetched", "{}");
    let got = r.next(10);
    assert_eq!(
        got.header("webhook-signature").unwrap().split(' ').count(),
        1
    );
    standardwebhooks::Webhook::new(&newest)
        .unwrap()
        .verify(&got.body, &got.header_map())
        .unwrap();
    assert!(
        standardwebhooks::Webhook::new(&new)
            .unwrap()
            .verify(&got.body, &got.header_map())
            .is_err()
    );

    let (st, _) = s
        .api
        .post(&path, &s.key, &json!({"keep_old_for_secs": 604801}));
    assert_eq!(st, 422);
}

#[test]
fn a_test_event_reaches_even_a_disabled_unsubscribed_endpoint() {
    let s = TestServer::start();
    let r = Receiver::start(Reply::Status(200, ""));
    let ep = s.endpoint(&s.key, &r.url("/"), &["consent.accounts.updated"]);
    let id = ep["id"].as_str().unwrap();
    s.api.patch(
        &format!("/api/v1/endpoints/{id}"),
        &s.key,
        &json!({"enabled": false}),
    );
    let (st, sent) = s.api.post(
        &format!("/api/v1/endpoints/{id}/test"),
        &s.key,
        &json!({"event": "databridge.share.created"}),
    );
    assert_eq!(st, 202, "{sent}");
    let got = r.next(10);
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["event"], "databridge.share.created");
    assert_eq!(body["data"]["shareId"], "shr_9b2e41");
    let (_, e) = s.api.get(
        &format!("/api/v1/events/{}", sent["event_id"].as_str().unwrap()),
        &s.key,
    );
    assert_eq!(e["test"], true);
    let d = s.finished_delivery(&s.key, sent["delivery_id"].as_str().unwrap());
    assert_eq!(d["status"], "succeeded");

    // Default type: the first subscribed one.
    let (st, sent) = s.api.send(
        "POST",
        &format!("/api/v1/endpoints/{id}/test"),
        &s.key,
        None,
        &[],
    );
    assert_eq!(st, 202);
    let body: serde_json::Value = serde_json::from_slice(&r.next(10).body).unwrap();
    assert_eq!(body["event"], "consent.accounts.updated");
    assert!(sent["delivery_id"].is_string());
}

#[test]
fn deleting_an_endpoint_drops_its_pending_deliveries() {
    // A new endpoint starts with 4 in flight, and an endpoint at its limit claims nothing
    // ahead: the rest waits in the store.
    let s = TestServer::start();
    let cus = s.default_customer();
    let r = Receiver::start(Reply::Hang);
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    for _ in 0..6 {
        s.event(&cus, "transactions.fetched", "{}");
    }
    for _ in 0..4 {
        r.next(10);
    }
    let depth = |s: &TestServer| {
        let (_, m) = s.api.send_raw("GET", "/metrics", "", None, &[]);
        m.lines()
            .find_map(|l| l.strip_prefix("webhooks_queue_depth "))
            .map(|v| v.trim().to_owned())
    };
    assert_eq!(depth(&s).as_deref(), Some("2"));
    let (st, _) = s.api.delete(
        &format!("/api/v1/endpoints/{}", ep["id"].as_str().unwrap()),
        &s.key,
    );
    assert_eq!(st, 204);
    assert_eq!(depth(&s).as_deref(), Some("0"));
    let (_, list) = s.api.get("/api/v1/deliveries", &s.key);
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert!(
        r.drain().is_empty(),
        "nothing pending was sent after the delete"
    );
}

#[test]
fn disabling_an_endpoint_fails_what_waits_for_it() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let r = Receiver::start(Reply::Hang);
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let id = ep["id"].as_str().unwrap();
    // 4 in flight (hanging: a new endpoint starts with 4), 2 still pending.
    let events: Vec<String> = (0..6)
        .map(|_| {
            s.event(&cus, "transactions.fetched", "{}")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for _ in 0..4 {
        r.next(10);
    }
    s.api.patch(
        &format!("/api/v1/endpoints/{id}"),
        &s.key,
        &json!({"enabled": false}),
    );
    let (_, failed) = s.api.get("/api/v1/deliveries?status=failed", &s.key);
    let failed = failed["data"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|d| d["error"] == "endpoint_disabled"));
    let failed_events: Vec<&str> = failed
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert!(
        failed_events.contains(&events[4].as_str()) && failed_events.contains(&events[5].as_str())
    );
}

#[test]
fn redirects_are_not_followed_and_only_4_kib_of_an_answer_is_kept() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let moved = Receiver::start(Reply::Redirect("http://127.0.0.1:9/elsewhere"));
    let big = Receiver::start(Reply::Big(200, 100_000));
    let e1 = s.endpoint(&s.key, &moved.url("/"), &["*"]);
    s.endpoint(&s.key, &big.url("/"), &["*"]);
    let accepted = s.event(&cus, "transactions.fetched", "{}");
    let ds = s.finished_deliveries_of(&s.key, accepted["id"].as_str().unwrap(), 2);
    for d in ds {
        if d["endpoint_id"] == e1["id"] {
            assert_eq!(
                (d["status"].as_str(), d["response_status"].as_u64()),
                (Some("failed"), Some(302))
            );
        } else {
            assert_eq!(d["status"], "succeeded");
            assert_eq!(d["response_body"].as_str().unwrap().len(), 4096);
        }
    }
}

#[test]
fn block_private_networks_refuses_loopback_even_by_name() {
    let s = TestServer::start_with(|a| a.block_private_networks = true);
    let cus = s.default_customer();
    let r = Receiver::start(Reply::Status(200, ""));
    s.endpoint(&s.key, &r.url("/by-ip"), &["*"]);
    s.endpoint(
        &s.key,
        &format!("http://localhost:{}/by-name", r.port),
        &["*"],
    );
    s.endpoint(
        &s.key,
        &format!("http://[::ffff:127.0.0.1]:{}/mapped", r.port),
        &["*"],
    );
    let accepted = s.event(&cus, "transactions.fetched", "{}");
    let ds = s.finished_deliveries_of(&s.key, accepted["id"].as_str().unwrap(), 3);
    for d in &ds {
        assert_eq!(
            (d["status"].as_str(), d["error"].as_str()),
            (Some("failed"), Some("blocked")),
            "{d}"
        );
        assert!(!d["error_detail"].as_str().unwrap().contains("127.0.0.1"));
    }
    assert!(r.drain().is_empty());
}
