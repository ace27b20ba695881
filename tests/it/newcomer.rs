//! What a newcomer meets at the command line: `deliveries list` pages and `--follow` never
//! skips, `listen --json`, `event-types` with a customer key, `health`, and messages that
//! say what to do (a missing object, no credentials, a closed pipe).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Receiver, TestServer};
use crate::support::{Running, json_lines, run, webhooks};

fn as_customer(s: &TestServer, args: &[&str]) -> std::process::Command {
    let mut cmd = webhooks(s, args);
    cmd.env("WEBHOOKS_API_KEY", &s.key)
        .env_remove("WEBHOOKS_ADMIN_TOKEN");
    cmd
}

fn batch(s: &TestServer, n: usize) {
    s.batch(n);
}

#[test]
fn follow_shows_every_delivery_of_a_burst_once() {
    let s = TestServer::start();
    let r = Receiver::counting();
    s.endpoint(&s.key, &r.url("/"), &["*"]);
    // One delivery first: once `--follow` has shown it, it has its starting point.
    let first = s.event(&s.default_customer(), "transactions.fetched", "{}");
    s.finished_deliveries_of(&s.key, first["id"].as_str().unwrap(), 1);
    let following = Running::spawn(as_customer(
        &s,
        &["deliveries", "list", "--follow", "--json"],
    ));
    following.line_with(first["id"].as_str().unwrap());
    // Then a burst far beyond one page.
    batch(&s, 1000);
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < 1000 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = following
            .out
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {} of 1000 shown", seen.len()));
        let d: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(d["status"], "succeeded", "{d}");
        assert!(
            seen.insert(d["id"].as_str().unwrap().to_owned()),
            "shown twice: {d}"
        );
    }
}

#[test]
fn deliveries_list_pages_and_says_when_more_exist() {
    let s = TestServer::start();
    let r = Receiver::counting();
    s.endpoint(&s.key, &r.url("/"), &["*"]);
    batch(&s, 5);
    crate::support::wait_for(30, "5 deliveries done", || (r.total() >= 5).then_some(()));
    let (code, out, err) = run(as_customer(&s, &["deliveries", "list", "--limit", "3"]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("DELIVERY"), "a header: {out}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("dlv_")).count(),
        3,
        "{out}"
    );
    assert!(out.contains("(more"), "{out}");
    let (_, out, _) = run(as_customer(
        &s,
        &["deliveries", "list", "--limit", "300", "--json"],
    ));
    assert_eq!(json_lines(&out).len(), 5);
    // The operator's lists say whose each row is.
    let (code, out, err) = run(webhooks(&s, &["deliveries", "list"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("CUSTOMER"), "{out}");
    assert!(out.contains(&s.default_customer()), "{out}");
}

#[test]
fn the_api_lists_deliveries_after_one_oldest_first() {
    let s = TestServer::start();
    let r = Receiver::counting();
    s.endpoint(&s.key, &r.url("/"), &["*"]);
    batch(&s, 7);
    let (_, all) = s.api.get("/api/v1/deliveries?limit=10", &s.key);
    let mut ids: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    assert_eq!(ids.len(), 7);
    let (st, page) = s.api.get(
        &format!("/api/v1/deliveries?after={}&limit=4", ids[0]),
        &s.key,
    );
    assert_eq!(st, 200, "{page}");
    let got: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ids[1..5].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let next = page["next"].as_str().expect("more after");
    let (_, rest) = s
        .api
        .get(&format!("/api/v1/deliveries?after={next}&limit=4"), &s.key);
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert!(rest["next"].is_null());
    // The operator sees the same, across customers.
    let (_, op) = s
        .api
        .get(&format!("/api/v1/deliveries?after={}", ids[5]), &s.admin);
    assert_eq!(op["data"][0]["id"], ids[6].as_str());
}

#[test]
fn listen_json_prints_one_object_per_request() {
    let s = TestServer::start();
    let mut cmd = as_customer(&s, &["listen", "--listen", "127.0.0.1:0", "--json"]);
    cmd.stderr(Stdio::null());
    let l = Running::spawn(cmd);
    // The banner went to stderr: the first stdout line is the first webhook.
    crate::support::wait_for(20, "listen to register", || {
        let (_, eps) = s.api.get("/api/v1/endpoints", &s.key);
        (!eps["data"].as_array()?.is_empty()).then_some(())
    });
    let (code, _, err) = run(webhooks(&s, &["trigger", "transactions.fetched"]));
    assert_eq!(code, 0, "{err}");
    let line = l.out.recv_timeout(Duration::from_secs(20)).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["event"], "transactions.fetched");
    assert_eq!(v["verified"], true);
    assert!(v["id"].as_str().unwrap().starts_with("evt_"));
    assert!(v["body"]["data"].is_object());
    assert!(v["time"].is_string());
}

#[test]
fn messages_say_what_to_do() {
    let s = TestServer::start();
    // The catalog with a customer key.
    let (code, out, err) = run(as_customer(&s, &["event-types"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("transactions.fetched"), "{out}");
    // A missing object is named, with the command that lists them.
    let (code, _, err) = run(as_customer(
        &s,
        &["endpoints", "show", "ep_01M8GNG7X8E5K1T5H91J3G4DM8"],
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("no endpoint ep_01M8GNG7X8E5K1T5H91J3G4DM8")
            && err.contains("webhooks endpoints list"),
        "{err}"
    );
    // An empty variable is no credentials.
    let mut empty = webhooks(&s, &["status"]);
    empty.env("WEBHOOKS_ADMIN_TOKEN", "");
    let (code, _, err) = run(empty);
    assert_eq!(code, 2);
    assert!(err.contains("no credentials"), "{err}");
    // Lists say when they are empty.
    let (code, out, _) = run(as_customer(&s, &["endpoints", "list"]));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ENDPOINT") && out.contains("(none)"),
        "{out}"
    );
    // Liveness without credentials.
    let mut health = webhooks(&s, &["health"]);
    health.env_remove("WEBHOOKS_ADMIN_TOKEN");
    let (code, out, err) = run(health);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let s = TestServer::start();
    let mut child = webhooks(&s, &["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read a little, then go away.
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.code() == Some(0), "{status:?} {err}");
}
