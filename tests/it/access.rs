//! Who may see what: a customer's key never reaches another customer's objects (404), each
//! token only its own routes, and the operator acts on any customer's objects through the
//! customer routes.

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
