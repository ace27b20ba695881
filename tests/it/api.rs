//! The HTTP API: authentication, tenant isolation, validation errors, paging, idempotency,
//! customers and keys, OpenAPI and metrics.

use serde_json::{Value, json};

use crate::support::TestServer;

#[test]
fn bad_input_gets_the_documented_status_and_code() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let ep = |body: Value| s.api.post("/api/v1/endpoints", &s.key, &body);
    let nested = format!(
        r#"{{"customer_id":"{cus}","event":"transactions.fetched","data":{{"a":{}{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let cases: Vec<((u16, Value), u16, &str)> = vec![
        (ep(json!({"url": "ftp://x", "events": ["*"]})), 422, "invalid_url"),
        (ep(json!({"url": "http://u:p@x.com/", "events": ["*"]})), 422, "invalid_url"),
        (ep(json!({"url": "http://x.com/", "events": []})), 422, "invalid_events"),
        (ep(json!({"url": "http://x.com/", "events": ["nope.nope"]})), 422, "unknown_event_type"),
        (
            ep(json!({"url": "http://x.com/", "events": ["transactions.fetched", "transactions.fetched"]})),
            422,
            "invalid_events",
        ),
        (ep(json!({"url": "http://x.com/", "events": ["*"], "colour": "red"})), 422, "unknown_field"),
        (ep(json!({"url": "http://x.com/", "events": ["*"], "headers": {"webhook-id": "x"}})), 422, "invalid_headers"),
        (ep(json!({"url": "http://x.com/", "events": ["*"], "rate_limit_per_sec": 0})), 422, "invalid_rate_limit"),
        (ep(json!({"url": "http://x.com/", "events": ["*"], "description": "x".repeat(1025)})), 422, "invalid_field"),
        (ep(json!({"events": ["*"]})), 422, "missing_field"),
        (ep(json!({"url": 5, "events": ["*"]})), 422, "invalid_field"),
        (
            s.api.post("/api/v1/events", &s.admin, &json!({"customer_id": cus, "event": "nope", "data": {}})),
            422,
            "unknown_event_type",
        ),
        (
            s.api.post("/api/v1/events", &s.admin, &json!({"customer_id": "cus_nobody", "event": "transactions.fetched", "data": {}})),
            422,
            "unknown_customer",
        ),
        (
            s.api.post("/api/v1/events", &s.admin, &json!({"customer_id": cus, "event": "transactions.fetched", "data": [1]})),
            422,
            "invalid_data",
        ),
        (
            s.api.post(
                "/api/v1/events",
                &s.admin,
                &json!({"customer_id": cus, "event": "transactions.fetched", "data": {"x": "y".repeat(256 * 1024)}}),
            ),
            422,
            "data_too_large",
        ),
        (s.api.get("/api/v1/endpoints?limit=0", &s.key), 422, "invalid_limit"),
        (s.api.get("/api/v1/endpoints?limit=251", &s.key), 422, "invalid_limit"),
        (s.api.get("/api/v1/endpoints?limit=abc", &s.key), 422, "invalid_limit"),
        (s.api.get("/api/v1/deliveries?status=lost", &s.key), 422, "invalid_status"),
        (s.api.send("POST", "/api/v1/endpoints", &s.key, Some("{\"url\":"), &[]), 400, "invalid_json"),
        (s.api.send("POST", "/api/v1/events", &s.admin, Some(&nested), &[]), 422, "data_too_deep"),
        (s.api.send("POST", "/api/v1/endpoints", &s.key, Some("{\"url\":"), &[]), 400, "invalid_json"),
        (s.api.send("POST", "/api/v1/endpoints", &s.key, Some(&"[".repeat(100_000)), &[]), 400, "invalid_json"),
        (
            s.api.send("POST", "/api/v1/endpoints", &s.key, Some("{}"), &[("content-type", "text/plain")]),
            415,
            "unsupported_media_type",
        ),
        (s.api.send("GET", "/api/v1/endpoints/ep_nope", &s.key, None, &[]), 404, "not_found"),
        (s.api.send("GET", "/api/v1/nothing-here", &s.key, None, &[]), 404, "not_found"),
        (s.api.send("PUT", "/api/v1/endpoints", &s.key, None, &[]), 405, "method_not_allowed"),
        (s.api.post("/api/v1/customers", &s.admin, &json!({"name": "default"})), 422, "name_taken"),
        (s.api.post("/api/v1/customers", &s.admin, &json!({"name": ""})), 422, "invalid_field"),
        (
            s.api.post("/api/v1/event-types", &s.admin, &json!({"name": "transactions.fetched", "description": "", "example": {}})),
            422,
            "event_type_exists",
        ),
        (
            s.api.post("/api/v1/event-types", &s.admin, &json!({"name": "Bad Name", "description": "", "example": {}})),
            422,
            "invalid_event_type",
        ),
    ];
    for (i, ((status, body), want_status, want_code)) in cases.into_iter().enumerate() {
        assert_eq!(status, want_status, "case {i}: {body}");
        assert_eq!(body["error"]["code"], want_code, "case {i}: {body}");
        assert!(body["error"]["message"].is_string(), "case {i}");
    }
    // A body over 1 MiB is refused before it is read to the end.
    let huge = format!(
        r#"{{"url":"http://x.com/","events":["*"],"description":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let (st, body) = s
        .api
        .send("POST", "/api/v1/endpoints", &s.key, Some(&huge), &[]);
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // Nothing was created by any of it, and the server is healthy.
    let (_, list) = s.api.get("/api/v1/endpoints", &s.key);
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert_eq!(s.api.get("/healthz", "").0, 200);
}

#[test]
fn lists_page_newest_first() {
    let s = TestServer::start();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            s.endpoint(&s.key, &format!("http://127.0.0.1:9/{i}"), &["*"])["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(b) => format!("/api/v1/endpoints?limit=2&before={b}"),
            None => "/api/v1/endpoints?limit=2".to_owned(),
        };
        let (st, page) = s.api.get(&path, &s.key);
        assert_eq!(st, 200);
        for e in page["data"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(n) => before = Some(n.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.into_iter().rev().collect();
    assert_eq!(seen, newest_first);
}

#[test]
fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_body() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let body =
        format!(r#"{{"customer_id":"{cus}","event":"transactions.fetched","data":{{"n":"1"}}}}"#);
    let key = [("Idempotency-Key", "order-42")];
    let (st1, first) = s
        .api
        .send("POST", "/api/v1/events", &s.admin, Some(&body), &key);
    let (st2, second) = s
        .api
        .send("POST", "/api/v1/events", &s.admin, Some(&body), &key);
    assert_eq!((st1, st2), (202, 202));
    assert_eq!(first, second);
    let other = body.replace(r#""n":"1""#, r#""n":"2""#);
    let (st3, conflict) = s
        .api
        .send("POST", "/api/v1/events", &s.admin, Some(&other), &key);
    assert_eq!(
        (st3, conflict["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    let (_, events) = s.api.get("/api/v1/events", &s.key);
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    // The key is scoped to the customer: another customer may use it.
    let (other_cus, _) = s.customer("acme");
    let body2 = body.replace(&cus, &other_cus);
    let (st4, fresh) = s
        .api
        .send("POST", "/api/v1/events", &s.admin, Some(&body2), &key);
    assert_eq!(st4, 202);
    assert_ne!(fresh["id"], first["id"]);
}

#[test]
fn customers_and_keys_are_managed_by_the_operator() {
    let s = TestServer::start();
    let (id, key) = s.customer("acme");
    assert_eq!(s.api.get("/api/v1/endpoints", &key).0, 200);
    let (st, c) = s.api.get(&format!("/api/v1/customers/{id}"), &s.admin);
    assert_eq!((st, c["name"].as_str()), (200, Some("acme")));

    let (st, k2) = s.api.send(
        "POST",
        &format!("/api/v1/customers/{id}/api-keys"),
        &s.admin,
        None,
        &[],
    );
    assert_eq!(st, 201);
    let key2 = k2["api_key"].as_str().unwrap();
    assert_eq!(s.api.get("/api/v1/endpoints", key2).0, 200);
    // A key's use is recorded without holding up the request: wait for it.
    let keys = crate::support::wait_for(10, "last_used_at to be recorded", || {
        let (_, keys) = s
            .api
            .get(&format!("/api/v1/customers/{id}/api-keys"), &s.admin);
        let keys = keys["data"].as_array().unwrap().clone();
        keys.iter()
            .any(|k| k["last_used_at"].is_string())
            .then_some(keys)
    });
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .all(|k| k.get("api_key").is_none() && k["prefix"].is_string())
    );

    let (st, _) = s.api.delete(
        &format!(
            "/api/v1/customers/{id}/api-keys/{}",
            k2["id"].as_str().unwrap()
        ),
        &s.admin,
    );
    assert_eq!(st, 204);
    assert_eq!(s.api.get("/api/v1/endpoints", key2).0, 401);

    s.endpoint(&key, "http://127.0.0.1:9/", &["*"]);
    let (st, _) = s.api.delete(&format!("/api/v1/customers/{id}"), &s.admin);
    assert_eq!(st, 204);
    assert_eq!(s.api.get("/api/v1/endpoints", &key).0, 401);
    assert_eq!(
        s.api.get(&format!("/api/v1/customers/{id}"), &s.admin).0,
        404
    );
    // The name is free again.
    s.customer("acme");
}

#[test]
fn a_batch_is_accepted_all_together_or_not_at_all() {
    let s = TestServer::start();
    let cus = s.default_customer();
    s.endpoint(&s.key, "http://127.0.0.1:9/", &["transactions.fetched"]);
    let event = |name: &str| json!({"customer_id": cus, "event": name, "data": {"k": "v"}});
    let (st, body) = s.api.post(
        "/api/v1/events/batch",
        &s.admin,
        &json!({"events": [event("transactions.fetched"), event("consent.status.updated")]}),
    );
    assert_eq!(st, 202, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(
        (
            data[0]["deliveries"].as_u64(),
            data[1]["deliveries"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert!(data[0]["id"].as_str().unwrap() < data[1]["id"].as_str().unwrap());

    // One bad event refuses the whole batch, and says which.
    let (st, err) = s.api.post(
        "/api/v1/events/batch",
        &s.admin,
        &json!({"events": [event("transactions.fetched"), event("nope.nope")]}),
    );
    assert_eq!(
        (st, err["error"]["code"].as_str()),
        (422, Some("unknown_event_type"))
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1]")
    );
    let (_, events) = s.api.get("/api/v1/events", &s.key);
    assert_eq!(events["data"].as_array().unwrap().len(), 2);

    for bad in [
        json!({"events": []}),
        json!({"events": vec![event("transactions.fetched"); 1001]}),
    ] {
        let (st, err) = s.api.post("/api/v1/events/batch", &s.admin, &bad);
        assert_eq!(
            (st, err["error"]["code"].as_str()),
            (422, Some("invalid_batch"))
        );
    }
    assert_eq!(
        s.api
            .post("/api/v1/events/batch", &s.key, &json!({"events": []}))
            .0,
        401
    );
}

#[test]
fn hostile_requests_get_4xx_json_and_the_server_stays_healthy() {
    let s = TestServer::start();
    let cases: Vec<(u16, String)> = vec![
        // Invalid UTF-8 inside a JSON string.
        {
            let (st, body) = s.api.send_raw(
                "POST",
                "/api/v1/endpoints",
                &s.key,
                Some(b"{\"url\":\"http://x.com/\xff\xfe\",\"events\":[\"*\"]}"),
                &[],
            );
            (st, body)
        },
        // Absurd and hostile query values.
        {
            let (st, b) = s.api.send_raw(
                "GET",
                "/api/v1/endpoints?limit=99999999999999999999999",
                &s.key,
                None,
                &[],
            );
            (st, b)
        },
        {
            let (st, b) = s.api.send_raw(
                "GET",
                "/api/v1/deliveries?limit=-1&before=%00%ff",
                &s.key,
                None,
                &[],
            );
            (st, b)
        },
        {
            let long = format!("/api/v1/endpoints?before={}", "x".repeat(1000));
            let (st, b) = s.api.send_raw("GET", &long, &s.key, None, &[]);
            (st, b)
        },
        // Path tricks.
        {
            let (st, b) = s.api.send_raw(
                "GET",
                "/api/v1/endpoints/..%2F..%2Fcustomers",
                &s.key,
                None,
                &[],
            );
            (st, b)
        },
        {
            let (st, b) = s
                .api
                .send_raw("GET", "/api/v1/customers/%2e%2e", &s.admin, None, &[]);
            (st, b)
        },
        // A JSON body that is not an object, and one that is a huge string.
        {
            let (st, b) = s.api.send_raw(
                "POST",
                "/api/v1/customers",
                &s.admin,
                Some(b"\"just a string\""),
                &[],
            );
            (st, b)
        },
        {
            let big = format!("{{\"name\":\"{}\"}}", "n".repeat(900 * 1024));
            let (st, b) = s.api.send_raw(
                "POST",
                "/api/v1/customers",
                &s.admin,
                Some(big.as_bytes()),
                &[],
            );
            (st, b)
        },
    ];
    for (i, (status, body)) in cases.iter().enumerate() {
        assert!((400..500).contains(status), "case {i}: {status} {body}");
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("case {i}: not JSON: {body}"));
        assert!(v["error"]["code"].is_string(), "case {i}: {body}");
    }
    // Headers far over any sane size are refused by the HTTP layer, not a panic.
    let status_line = {
        use std::io::{Read, Write};
        let addr = s.api.base.trim_start_matches("http://").to_owned();
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        let huge = "h".repeat(256 * 1024);
        let req = format!("GET /api/v1/endpoints HTTP/1.1\r\nhost: x\r\nx-huge: {huge}\r\n\r\n");
        let _ = conn.write_all(req.as_bytes());
        let mut answer = vec![0u8; 64];
        let n = conn.read(&mut answer).unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    assert!(
        status_line.starts_with("HTTP/1.1 4") || status_line.is_empty(),
        "{status_line}"
    );
    assert_eq!(s.api.get("/healthz", "").0, 200);
    let (_, list) = s.api.get("/api/v1/customers", &s.admin);
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
}
