//! What an attacker or a careless client can do to the server over HTTP: slow bodies, many
//! connections, token guessing, amplification through one customer key, oversized lists.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{TestServer, wait_for};

fn connect(s: &TestServer) -> TcpStream {
    let addr = s.api.base.strip_prefix("http://").unwrap();
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// Reads an answer's head (status line and headers).
fn status_of(c: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn a_trickling_body_is_cut_off_and_does_not_hold_the_server() {
    let s = TestServer::start_with(|a| a.read_timeout_secs = 1);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = connect(&s);
            c.write_all(
                b"POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\napi_key=",
            )
            .unwrap();
            c
        })
        .collect();
    let mut api = connect(&s);
    api.write_all(
        format!(
            "POST /api/v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{",
            s.admin
        )
        .as_bytes(),
    )
    .unwrap();
    // Meanwhile the server answers others.
    assert_eq!(s.api.get("/healthz", "").0, 200);
    let head = status_of(&mut api);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    for c in &mut slow {
        let head = status_of(c);
        // The portal's form reader turns the cut-off into 400; either way it is answered.
        assert!(
            head.starts_with("HTTP/1.1 408") || head.starts_with("HTTP/1.1 400"),
            "{head}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    // Many connections need many open files: the server took its hard limit.
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert_eq!(soft, hard);
}

#[test]
fn a_trickling_chunked_body_is_cut_off_even_where_no_handler_reads_it() {
    let s = TestServer::start_with(|a| a.read_timeout_secs = 1);
    let started = Instant::now();
    // No token: the route refuses before it would read the body; and an unknown route.
    let mut conns: Vec<TcpStream> = ["/api/v1/events", "/api/v1/nowhere"]
        .iter()
        .map(|path| {
            let mut c = connect(&s);
            c.write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{{\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            c
        })
        .collect();
    for c in &mut conns {
        let head = status_of(c);
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        // And the connection is closed, not held for the rest of the body.
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let s = TestServer::start();
    let mut c = connect(&s);
    c.write_all(
        b"POST /api/v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000000\r\n\r\n",
    )
    .unwrap();
    let head = status_of(&mut c);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}

#[test]
fn connections_per_address_are_capped_except_for_trusted_proxies() {
    let s = TestServer::start_with(|a| a.max_connections_per_ip = 3);
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut open: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = connect(&s);
            c.write_all(request).unwrap();
            let head = status_of(&mut c);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            c
        })
        .collect();
    let mut fourth = connect(&s);
    fourth.write_all(request).unwrap();
    let head = status_of(&mut fourth);
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    // Closing one makes room again.
    drop(open.pop());
    wait_for(10, "a connection slot to free", || {
        let mut c = connect(&s);
        c.write_all(request).unwrap();
        status_of(&mut c).starts_with("HTTP/1.1 200").then_some(())
    });

    let s = TestServer::start_with(|a| {
        a.max_connections_per_ip = 1;
        a.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    });
    let _held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = connect(&s);
            c.write_all(request).unwrap();
            let head = status_of(&mut c);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            c
        })
        .collect();
}

#[test]
fn guessing_bearer_tokens_is_throttled_per_client_address() {
    let s = TestServer::start();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(s.api.get("/api/v1/customers", "wha_guess").0);
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    // While throttled even the right token is refused: guesses cannot be mixed in.
    let (st, body) = s.api.send("GET", "/api/v1/customers", &s.admin, None, &[]);
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_the_proxy() {
    let s = TestServer::start_with(|a| a.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]);
    let from = |client: &str, token: &str| {
        s.api
            .send(
                "GET",
                "/api/v1/customers",
                token,
                None,
                &[("x-forwarded-for", client)],
            )
            .0
    };
    for _ in 0..30 {
        from("203.0.113.9", "wha_guess");
    }
    assert_eq!(from("203.0.113.9", &s.admin), 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(from("198.51.100.7", &s.admin), 200);
    // A client cannot pick its address by writing the header itself when it is not behind a
    // trusted proxy: without the proxy flag the peer address counts.
    let direct = TestServer::start();
    for i in 0..30 {
        direct.api.send(
            "GET",
            "/api/v1/customers",
            "wha_guess",
            None,
            &[("x-forwarded-for", &format!("192.0.2.{i}"))],
        );
    }
    assert_eq!(direct.api.get("/api/v1/customers", &direct.admin).0, 429);
}

#[test]
fn a_customer_cannot_make_endpoints_or_sends_without_bound() {
    let s = TestServer::start_with(|a| {
        a.max_endpoints_per_customer = 3;
        a.max_sends_per_customer_per_min = 5;
    });
    let make = || {
        s.api.post(
            "/api/v1/endpoints",
            &s.key,
            &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "enabled": false}),
        )
    };
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let (st, e) = make();
            assert_eq!(st, 201, "{e}");
            e["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let (st, err) = make();
    assert_eq!(st, 422, "{err}");
    assert_eq!(err["error"]["code"], "limit_reached");
    // Another customer has its own count.
    let (_, other_key) = s.customer("other");
    let (st, _) = s.api.post(
        "/api/v1/endpoints",
        &other_key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"]}),
    );
    assert_eq!(st, 201);
    // Deleting one makes room.
    assert_eq!(
        s.api
            .delete(&format!("/api/v1/endpoints/{}", ids[0]), &s.key)
            .0,
        204
    );
    assert_eq!(make().0, 201);

    let test = format!("/api/v1/endpoints/{}/test", ids[1]);
    for _ in 0..5 {
        let (st, body) = s.api.send("POST", &test, &s.key, None, &[]);
        assert_eq!(st, 202, "{body}");
    }
    let (st, body) = s.api.send("POST", &test, &s.key, None, &[]);
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let (st, text) = s.api.send_raw("POST", &test, &s.key, None, &[]);
    assert_eq!(st, 429, "{text}");
    // Resends and recovers draw on the same budget.
    let (_, log) = s.api.get("/api/v1/deliveries", &s.key);
    let dlv = log["data"][0]["id"].as_str().unwrap();
    let (st, _) = s.api.send(
        "POST",
        &format!("/api/v1/deliveries/{dlv}/resend"),
        &s.key,
        None,
        &[],
    );
    assert_eq!(st, 429);
    let (st, _) = s.api.post(
        &format!("/api/v1/endpoints/{}/recover", ids[1]),
        &s.key,
        &json!({"since": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(st, 429);
    // Another customer still has its own budget.
    let (_, other_eps) = s.api.get("/api/v1/endpoints", &other_key);
    let other_ep = other_eps["data"][0]["id"].as_str().unwrap();
    let (st, _) = s.api.send(
        "POST",
        &format!("/api/v1/endpoints/{other_ep}/test"),
        &other_key,
        None,
        &[],
    );
    assert_eq!(st, 202);
}

#[test]
fn a_recover_starts_only_what_the_budget_allows_and_spends_it() {
    let s = TestServer::start_with(|a| a.max_sends_per_customer_per_min = 3);
    // Nothing listens on port 9, and the endpoint never holds: every delivery fails, ready
    // to be recovered.
    let (_, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "max_hold_secs": 0}),
    );
    let customer = s.default_customer();
    for _ in 0..5 {
        let e = s.event(&customer, "transactions.fetched", "{}");
        s.finished_deliveries_of(&s.key, e["id"].as_str().unwrap(), 1);
    }
    let (st, body) = s.api.post(
        &format!("/api/v1/endpoints/{}/recover", ep["id"].as_str().unwrap()),
        &s.key,
        &json!({"since": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(st, 202, "{body}");
    assert_eq!(
        body,
        json!({"deliveries": 3, "left": 2}),
        "the budget's three, oldest first"
    );
    // The budget of three is spent: nothing more this minute.
    let (st, text) = s.api.send_raw(
        "POST",
        &format!("/api/v1/endpoints/{}/test", ep["id"].as_str().unwrap()),
        &s.key,
        None,
        &[],
    );
    assert_eq!(st, 429, "{text}");
}

#[test]
fn event_types_are_paged_and_examples_are_small() {
    let s = TestServer::start();
    for i in 0..5 {
        let (st, body) = s.api.post(
            "/api/v1/event-types",
            &s.admin,
            &json!({"name": format!("custom.type{i}"), "description": "d", "example": {"i": i}}),
        );
        assert_eq!(st, 201, "{body}");
    }
    let mut names = Vec::new();
    let mut path = "/api/v1/event-types?limit=3".to_owned();
    loop {
        let (st, page) = s.api.get(&path, &s.key);
        assert_eq!(st, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        names.extend(data.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(n) => path = format!("/api/v1/event-types?limit=3&before={n}"),
            None => break,
        }
    }
    assert_eq!(names.len(), 12, "{names:?}");
    assert_eq!(names[0], "transactions.fetched", "EnableNow's types first");
    assert_eq!(names[7], "custom.type0");
    assert_eq!(names[11], "custom.type4");

    let big = "x".repeat(17 * 1024);
    let (st, body) = s.api.post(
        "/api/v1/event-types",
        &s.admin,
        &json!({"name": "custom.big", "description": "d", "example": {"big": big}}),
    );
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["error"]["code"], "example_too_large");
    let (st, body) = s.api.get("/api/v1/event-types?before=", &s.key);
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_before");
}

#[test]
fn every_answer_says_nosniff_and_rate_limits_have_a_range() {
    let s = TestServer::start();
    for (path, token) in [
        ("/healthz", ""),
        ("/api/v1/nothing", ""),
        ("/", ""),
        ("/api/v1/customers", s.admin.as_str()),
    ] {
        let url = format!("{}{path}", s.api.base);
        let mut req = ureq::http::Request::builder().uri(&url);
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let resp = agent.run(req.body(()).unwrap()).unwrap();
        assert_eq!(
            resp.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
        assert!(resp.headers().get("strict-transport-security").is_none());
    }
    for rate in [0u64, 1_000_001, 4_294_967_295] {
        let (st, body) = s.api.post(
            "/api/v1/endpoints",
            &s.key,
            &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "rate_limit_per_sec": rate}),
        );
        assert_eq!(st, 422, "{rate}: {body}");
    }
    let (st, _) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "rate_limit_per_sec": 1_000_000}),
    );
    assert_eq!(st, 201);
}
