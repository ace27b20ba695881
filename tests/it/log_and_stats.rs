//! The delivery log's filters and the delivery statistics, each customer counting its own.

use serde_json::Value;

use crate::support::TestServer;

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
