//! The HTTP API: authentication, tenant isolation, validation errors, paging, idempotency,
//! customers and keys, OpenAPI and metrics.

use serde_json::{Value, json};

use crate::support::TestServer;

#[test]
fn every_customer_route_hides_another_customers_objects() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let (_, other_key) = s.customer("acme");
    let ep = s.endpoint(&s.key, "http://127.0.0.1:9/never", &["*"]);
    let ep_id = ep["id"].as_str().unwrap();
    let evt = s.event(&cus, "transactions.fetched", "{}");
    let evt_id = evt["id"].as_str().unwrap();
    let (_, list) = s.api.get("/api/v1/deliveries", &s.key);
    let dlv_id = list["data"][0]["id"].as_str().unwrap();

    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/v1/endpoints/{ep_id}"), None),
        (
            "PATCH",
            format!("/api/v1/endpoints/{ep_id}"),
            Some(json!({"enabled": false})),
        ),
        ("DELETE", format!("/api/v1/endpoints/{ep_id}"), None),
        (
            "POST",
            format!("/api/v1/endpoints/{ep_id}/rotate-secret"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/api/v1/endpoints/{ep_id}/test"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/api/v1/endpoints/{ep_id}/recover"),
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        ),
        ("GET", format!("/api/v1/events/{evt_id}"), None),
        ("GET", format!("/api/v1/deliveries/{dlv_id}"), None),
        ("POST", format!("/api/v1/deliveries/{dlv_id}/resend"), None),
    ];
    for (method, path, body) in &routes {
        let body = body.as_ref().map(Value::to_string);
        let (st, err) = s.api.send(method, path, &other_key, body.as_deref(), &[]);
        assert_eq!(st, 404, "{method} {path}: {err}");
        assert_eq!(err["error"]["code"], "not_found");
    }
    for path in ["/api/v1/endpoints", "/api/v1/events", "/api/v1/deliveries"] {
        let (st, body) = s.api.get(path, &other_key);
        assert_eq!(st, 200);
        assert_eq!(body["data"].as_array().unwrap().len(), 0, "{path}");
    }
    let (_, filtered) = s.api.get(
        &format!("/api/v1/deliveries?endpoint_id={ep_id}"),
        &other_key,
    );
    assert_eq!(filtered["data"].as_array().unwrap().len(), 0);
    // The owner still sees everything, untouched.
    let (st, still) = s.api.get(&format!("/api/v1/endpoints/{ep_id}"), &s.key);
    assert_eq!((st, still["enabled"].as_bool()), (200, Some(true)));
}

#[test]
fn tokens_reach_only_their_own_routes() {
    let s = TestServer::start();
    let operator = [
        ("GET", "/api/v1/customers"),
        ("POST", "/api/v1/customers"),
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/event-types"),
    ];
    let customer = [
        ("GET", "/api/v1/endpoints"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/deliveries"),
    ];
    for (m, p) in operator {
        for token in [s.key.as_str(), "", "wha_wrong", "whk_wrong"] {
            let (st, body) = s.api.send(m, p, token, Some("{}"), &[]);
            assert_eq!(st, 401, "{m} {p} with {token:?}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    for (m, p) in customer {
        for token in ["", "whk_wrong", "wha_wrong"] {
            let (st, _) = s.api.send(m, p, token, None, &[]);
            assert_eq!(st, 401, "{m} {p} with {token:?}");
        }
        // The operator may read every customer's (see the support test below).
        assert_eq!(s.api.send(m, p, &s.admin, None, &[]).0, 200, "{m} {p}");
    }
    for token in [&s.admin, &s.key] {
        let (st, body) = s.api.get("/api/v1/event-types", token);
        assert_eq!(st, 200);
        assert_eq!(body["data"].as_array().unwrap().len(), 7);
        assert_eq!(body["data"][0]["name"], "transactions.fetched");
    }
}

#[test]
fn the_operator_acts_on_any_customers_objects_through_the_customer_routes() {
    let s = TestServer::start();
    let r = crate::support::Receiver::start(crate::support::Reply::Status(500, "no"));
    let (acme, acme_key) = s.customer("acme");
    let (globex, _) = s.customer("globex");
    // Creating an endpoint as the operator names the customer.
    let body = json!({"url": r.url("/"), "events": ["*"]});
    let (st, err) = s.api.post("/api/v1/endpoints", &s.admin, &body);
    assert_eq!(
        (st, err["error"]["code"].as_str()),
        (422, Some("customer_id_required"))
    );
    let (st, ep) = s.api.post(
        &format!("/api/v1/endpoints?customer_id={acme}"),
        &s.admin,
        &body,
    );
    assert_eq!(st, 201, "{ep}");
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    // …or names it in the body.
    let in_body = json!({"url": r.url("/body"), "events": ["*"], "customer_id": globex});
    let (st, ep) = s.api.post("/api/v1/endpoints", &s.admin, &in_body);
    assert_eq!(st, 201, "{ep}");
    assert_eq!(
        s.api
            .get(
                &format!("/api/v1/endpoints/{}", ep["id"].as_str().unwrap()),
                &s.admin
            )
            .1["id"],
        ep["id"]
    );
    let (_, globex_eps) = s
        .api
        .get(&format!("/api/v1/endpoints?customer_id={globex}"), &s.admin);
    assert_eq!(globex_eps["data"].as_array().unwrap().len(), 1);
    // A customer's own key cannot name a customer: 422, nothing made.
    let count = || {
        let (_, eps) = s.api.get("/api/v1/endpoints", &acme_key);
        eps["data"].as_array().unwrap().len()
    };
    let before = count();
    let (st, own) = s.api.post("/api/v1/endpoints", &acme_key, &in_body);
    assert_eq!(
        (st, own["error"]["code"].as_str()),
        (422, Some("unknown_field"))
    );
    assert_eq!(count(), before);
    let nobody = json!({"url": r.url("/x"), "events": ["*"], "customer_id": "cus_nope"});
    assert_eq!(s.api.post("/api/v1/endpoints", &s.admin, &nobody).0, 404);
    let (st, _) = s.api.post(
        "/api/v1/endpoints?customer_id=cus_01M8GNG7X8E5K1T5H91J3G4DM8",
        &s.admin,
        &body,
    );
    assert_eq!(st, 404);
    // The customer sees it as its own.
    let (_, mine) = s.api.get("/api/v1/endpoints", &acme_key);
    assert_eq!(mine["data"][0]["id"], ep_id.as_str());

    let evt = s.event(&acme, "transactions.fetched", "{}");
    let evt_id = evt["id"].as_str().unwrap();
    let dlv = s.finished_deliveries_of(&acme_key, evt_id, 1)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Lists: every customer's when no customer is named, else only that one's.
    let (_, all) = s.api.get("/api/v1/deliveries", &s.admin);
    assert_eq!(all["data"][0]["id"], dlv.as_str());
    let (_, none) = s.api.get(
        &format!("/api/v1/deliveries?customer_id={globex}"),
        &s.admin,
    );
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    let (_, failed) = s.api.get(
        &format!("/api/v1/deliveries?customer_id={acme}&status=failed&endpoint_id={ep_id}"),
        &s.admin,
    );
    assert_eq!(failed["data"][0]["id"], dlv.as_str());
    let (_, events) = s.api.get("/api/v1/events", &s.admin);
    assert_eq!(events["data"][0]["id"], evt_id);
    // A customer that does not exist is not found.
    let (st, _) = s.api.get("/api/v1/endpoints?customer_id=nobody", &s.admin);
    assert_eq!(st, 404);
    // Objects: acted on as their owner's.
    assert_eq!(
        s.api.get(&format!("/api/v1/events/{evt_id}"), &s.admin).0,
        200
    );
    assert_eq!(
        s.api.get(&format!("/api/v1/deliveries/{dlv}"), &s.admin).0,
        200
    );
    let (st, again) = s.api.post(
        &format!("/api/v1/deliveries/{dlv}/resend"),
        &s.admin,
        &json!({}),
    );
    assert!(st == 201 || st == 202, "{st} {again}");
    let (st, off) = s.api.send(
        "PATCH",
        &format!("/api/v1/endpoints/{ep_id}"),
        &s.admin,
        Some(r#"{"enabled":false}"#),
        &[],
    );
    assert_eq!((st, off["enabled"].as_bool()), (200, Some(false)));
    let unknown = "/api/v1/endpoints/ep_01M8GNG7X8E5K1T5H91J3G4DM8";
    assert_eq!(s.api.get(unknown, &s.admin).0, 404);
    assert_eq!(
        s.api
            .delete(&format!("/api/v1/endpoints/{ep_id}"), &s.admin)
            .0,
        204
    );
}

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

#[test]
fn delivery_stats_count_each_customers_own_by_minute_and_hour() {
    use crate::support::{Receiver, Reply};
    let s = TestServer::start();
    let ok = Receiver::start(Reply::Status(200, "ok"));
    let bad = Receiver::start(Reply::Status(500, "no"));
    let cus = s.default_customer();
    let (acme, acme_key) = s.customer("acme");
    let good_ep = s.endpoint(&s.key, &ok.url("/a"), &["*"]);
    let bad_ep = s.endpoint(&s.key, &bad.url("/b"), &["transactions.fetched"]);
    let acme_ep = s.endpoint(&acme_key, &ok.url("/c"), &["*"]);
    for _ in 0..3 {
        let e = s.event(&cus, "transactions.fetched", "{}");
        s.finished_deliveries_of(&s.key, e["id"].as_str().unwrap(), 2);
    }
    let e = s.event(&acme, "transactions.fetched", "{}");
    s.finished_deliveries_of(&acme_key, e["id"].as_str().unwrap(), 1);

    let sum = |v: &Value| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .fold((0, 0, 0), |a, b| {
                let n = |k: &str| b[k].as_u64().unwrap();
                (
                    a.0 + n("succeeded"),
                    a.1 + n("failed"),
                    a.2 + n("interrupted"),
                )
            })
    };
    let get = |path: &str, token: &str| {
        let (status, body) = s.api.get(path, token);
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    // A customer sees its own: by default the last 24 hours by the hour.
    let mine = get("/api/v1/stats/deliveries", &s.key);
    assert_eq!(mine["bucket"], "hour");
    let buckets = mine["data"].as_array().unwrap();
    assert!((24..=25).contains(&buckets.len()), "{}", buckets.len());
    assert_eq!(sum(&mine), (3, 3, 0));
    let timed = buckets.iter().find(|b| b["succeeded"] != 0).unwrap();
    assert!(
        timed["p50_ms"].is_u64() && timed["p95_ms"].is_u64(),
        "{timed}"
    );
    assert!(
        buckets.iter().any(|b| b["p50_ms"].is_null()),
        "empty hours have no percentiles"
    );
    let one = |ep: &Value, token: &str| {
        get(
            &format!(
                "/api/v1/stats/deliveries?endpoint_id={}&bucket=minute&since={}",
                ep["id"].as_str().unwrap(),
                webhooks::domain::time::rfc3339(webhooks::domain::time::now_ms() - 10 * 60_000),
            ),
            token,
        )
    };
    let minutes = one(&good_ep, &s.key);
    assert!((10..=11).contains(&minutes["data"].as_array().unwrap().len()));
    assert_eq!(sum(&minutes), (3, 0, 0));
    assert_eq!(sum(&one(&bad_ep, &s.key)), (0, 3, 0));
    // Another customer's endpoint is not found, whoever asks.
    let path = format!(
        "/api/v1/stats/deliveries?endpoint_id={}",
        acme_ep["id"].as_str().unwrap()
    );
    assert_eq!(s.api.get(&path, &s.key).0, 404);
    assert_eq!(sum(&get("/api/v1/stats/deliveries", &acme_key)), (1, 0, 0));
    // The operator: everyone's, one customer's, any endpoint.
    assert_eq!(sum(&get("/api/v1/stats/deliveries", &s.admin)), (4, 3, 0));
    let path = format!("/api/v1/stats/deliveries?customer_id={acme}");
    assert_eq!(sum(&get(&path, &s.admin)), (1, 0, 0));
    assert_eq!(sum(&one(&acme_ep, &s.admin)), (1, 0, 0));
    // Bad ranges get a 422 with a code.
    for (query, code) in [
        (
            "bucket=minute&since=2026-01-01T00:00:00Z",
            "too_many_buckets",
        ),
        ("bucket=day", "invalid_bucket"),
        ("since=yesterday", "invalid_time"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "invalid_range",
        ),
    ] {
        let (status, body) = s
            .api
            .get(&format!("/api/v1/stats/deliveries?{query}"), &s.key);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some(code)),
            "{query}"
        );
    }
    // Exactly a day by the minute is allowed.
    let (status, body) = s.api.get(
        "/api/v1/stats/deliveries?bucket=minute&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
        &s.key,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1440);
}

#[test]
fn the_delivery_log_filters_by_event_type_and_time() {
    use crate::support::{Receiver, Reply};
    let s = TestServer::start();
    let rx = Receiver::start(Reply::Status(200, "ok"));
    let cus = s.default_customer();
    s.endpoint(&s.key, &rx.url("/a"), &["*"]);
    let a = s.event(&cus, "transactions.fetched", "{}");
    s.finished_deliveries_of(&s.key, a["id"].as_str().unwrap(), 1);
    let between = webhooks::domain::time::rfc3339(webhooks::domain::time::now_ms() + 1);
    crate::support::wait_for(5, "the clock to move on", || {
        (webhooks::domain::time::rfc3339(webhooks::domain::time::now_ms()) > between).then_some(())
    });
    let b = s.event(&cus, "categorizationjob.completed", "{}");
    s.finished_deliveries_of(&s.key, b["id"].as_str().unwrap(), 1);
    let events_of = |query: &str| -> Vec<String> {
        let (status, body) = s.api.get(&format!("/api/v1/deliveries?{query}"), &s.key);
        assert_eq!(status, 200, "{query}: {body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["event"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        events_of("event_type=transactions.fetched"),
        vec!["transactions.fetched"]
    );
    assert_eq!(
        events_of(&format!("since={between}")),
        vec!["categorizationjob.completed"]
    );
    assert_eq!(
        events_of(&format!("until={between}")),
        vec!["transactions.fetched"]
    );
    assert_eq!(events_of("status=succeeded").len(), 2);
    assert!(events_of("event_type=databridge.share.updated").is_empty());
    let (status, body) = s.api.get("/api/v1/deliveries?since=soon", &s.key);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_time"))
    );
}
