//! The public routes: the OpenAPI document (every route in it, with the errors it can
//! answer), health and metrics.

use crate::support::TestServer;

#[test]
fn openapi_health_and_metrics_are_public() {
    let s = TestServer::start();
    let (st, doc) = s.api.get("/api/v1/openapi.json", "");
    assert_eq!(st, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/customers", "post"),
        ("/api/v1/customers", "get"),
        ("/api/v1/customers/{id}", "get"),
        ("/api/v1/customers/{id}", "delete"),
        ("/api/v1/customers/{id}/api-keys", "post"),
        ("/api/v1/customers/{id}/api-keys", "get"),
        ("/api/v1/customers/{id}/api-keys/{key_id}", "delete"),
        ("/api/v1/events", "post"),
        ("/api/v1/events/batch", "post"),
        ("/api/v1/backup", "post"),
        ("/api/v1/events", "get"),
        ("/api/v1/events/{id}", "get"),
        ("/api/v1/event-types", "get"),
        ("/api/v1/event-types", "post"),
        ("/api/v1/endpoints", "get"),
        ("/api/v1/endpoints", "post"),
        ("/api/v1/endpoints/{id}", "get"),
        ("/api/v1/endpoints/{id}", "patch"),
        ("/api/v1/endpoints/{id}", "delete"),
        ("/api/v1/endpoints/{id}/rotate-secret", "post"),
        ("/api/v1/endpoints/{id}/test", "post"),
        ("/api/v1/endpoints/{id}/recover", "post"),
        ("/api/v1/deliveries", "get"),
        ("/api/v1/deliveries/{id}", "get"),
        ("/api/v1/deliveries/{id}/resend", "post"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    // Every route documents the errors its extractors and guards can answer.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let has = |status: &str| op["responses"].get(status).is_some();
            assert!(has("429"), "{method} {path}: 429");
            if op.get("security").is_some() {
                assert!(has("401"), "{method} {path}: 401");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "408", "413", "415", "422"] {
                    assert!(has(status), "{method} {path}: {status}");
                }
            }
            if path.contains('{') {
                assert!(has("404"), "{method} {path}: 404");
            }
        }
    }
    // A method a route does not take: 405 naming the ones it does.
    let url = format!("{}/api/v1/customers/{}", s.api.base, "cus_x");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let resp = agent
        .run(ureq::http::Request::put(&url).body(()).unwrap())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, DELETE");
    let (st, health) = s.api.get("/healthz", "");
    assert_eq!((st, health["status"].as_str()), (200, Some("ok")));
    s.event(&s.default_customer(), "transactions.fetched", "{}");
    let (st, text) = s.api.send_raw("GET", "/metrics", "", None, &[]);
    assert_eq!(st, 200);
    for name in [
        "webhooks_events_ingested_total 1",
        "webhooks_queue_depth",
        "webhooks_deliveries_in_flight",
        "webhooks_delivery_duration_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}
