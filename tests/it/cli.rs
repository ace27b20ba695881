//! The client subcommands and the examples, run as a developer would: real processes
//! against a real server.

use crate::support::{BIN, Running, TestServer, json_lines, run, webhooks};
use std::process::Command;

fn listen(s: &TestServer, extra: &[&str]) -> (Running, String) {
    let mut args = vec!["listen", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let l = Running::spawn(webhooks(s, &args));
    let line = l.line_with("listening on ");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    (l, url)
}

#[test]
fn trigger_reaches_listen_with_a_verified_signature() {
    let s = TestServer::start();
    let (l, _) = listen(&s, &["--api-key", &s.key]);
    let (code, out, err) = run(webhooks(&s, &["trigger", "transactions.fetched"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("evt_") && out.contains("1 delivery"),
        "{out}"
    );
    l.line_with("transactions.fetched");
    l.line_with("signature verified");
    l.line_with("\"addedTransactionsCount\": \"17\"");

    // A second listen on the same URL reuses the endpoint instead of adding one.
    let (_, eps) = s.api.get("/api/v1/endpoints", &s.key);
    assert_eq!(eps["data"].as_array().unwrap().len(), 1);

    // --data, by text and from a file.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), r#"{"consentId":"from-file"}"#).unwrap();
    let at_file = format!("@{}", file.path().display());
    for data in [r#"{"consentId":"inline"}"#, at_file.as_str()] {
        let (code, _, err) = run(webhooks(
            &s,
            &["trigger", "consent.status.updated", "--data", data],
        ));
        assert_eq!(code, 0, "{err}");
    }
    l.line_with("\"consentId\": \"inline\"");
    l.line_with("\"consentId\": \"from-file\"");
}

#[test]
fn the_operator_listens_for_a_customer_with_the_admin_token() {
    let s = TestServer::start();
    s.customer("acme");
    let (l, url) = listen(&s, &["--customer", "acme"]);
    let (_, eps) = s.api.get(
        &format!("/api/v1/endpoints?customer_id={}", s.customer_id("acme")),
        &s.admin,
    );
    let eps = eps["data"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 1, "registered for acme");
    assert_eq!(eps[0]["url"], url.as_str());
    let (code, _, err) = run(webhooks(
        &s,
        &["trigger", "transactions.fetched", "--customer", "acme"],
    ));
    assert_eq!(code, 0, "{err}");
    l.line_with("signature verified");
    // An unknown customer is a usage error.
    let (code, _, err) = run(webhooks(
        &s,
        &["listen", "--listen", "127.0.0.1:0", "--customer", "nobody"],
    ));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn listen_reports_a_wrong_secret_and_rehearses_failures() {
    let s = TestServer::start();
    let (l, url) = listen(&s, &["--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
    s.endpoint(&s.key, &url, &["*"]);
    s.event(&s.default_customer(), "transactions.fetched", "{}");
    l.line_with("signature NOT verified: no signature in webhook-signature matches");

    let (_fail, _) = listen(&s, &["--api-key", &s.key, "--status", "500"]);
    let (code, out, _) = run(webhooks(&s, &["trigger", "transactions.fetched"]));
    assert_eq!(code, 0);
    let evt = out.split_whitespace().next().unwrap();
    // Two endpoints now: the wrong-secret one answers 200, the rehearsal 500.
    let ds = s.finished_deliveries_of(&s.key, evt, 2);
    let failed: Vec<_> = ds.iter().filter(|d| d["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["response_status"], 500);
}

#[test]
fn client_errors_are_one_line_with_the_right_exit_code() {
    let s = TestServer::start();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["trigger", "nope.nope"],
            2,
            "valid ones: transactions.fetched",
        ),
        (
            vec!["trigger", "transactions.fetched", "--data", "not json"],
            2,
            "--data is not valid JSON",
        ),
        (
            vec!["trigger", "transactions.fetched", "--data", "[1]"],
            2,
            "must be a JSON object",
        ),
        (
            vec!["trigger", "transactions.fetched", "--customer", "nobody"],
            2,
            "no customer named",
        ),
        (
            vec!["trigger", "transactions.fetched", "--token", "wha_wrong"],
            1,
            "refused the credentials",
        ),
        (vec!["customers", "add", "default"], 2, "already exists"),
        (vec!["trigger"], 2, "EVENT"),
        (
            vec!["customers", "list", "--token", "whk_a_customer_key"],
            2,
            "given a customer API key",
        ),
        (
            vec![
                "listen",
                "--api-key",
                "wha_the_admin_token",
                "--listen",
                "127.0.0.1:0",
            ],
            2,
            "given the admin token",
        ),
    ];
    for (args, want, needle) in cases {
        let (code, _, err) = run(webhooks(&s, &args));
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let mut no_token = webhooks(&s, &["customers", "list"]);
    no_token.env_remove("WEBHOOKS_ADMIN_TOKEN");
    let (code, _, err) = run(no_token);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");

    let mut down = Command::new(BIN);
    down.args([
        "trigger",
        "transactions.fetched",
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "x",
    ]);
    let (code, _, err) = run(down);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "error: cannot reach http://127.0.0.1:1: is `webhooks serve` running?"
    );
}

#[test]
fn customers_and_event_types_from_the_command_line() {
    let s = TestServer::start();
    let (code, out, _) = run(webhooks(&s, &["customers", "add", "acme"]));
    assert_eq!(code, 0);
    assert!(out.contains("api key: whk_"), "{out}");
    let (code, out, _) = run(webhooks(&s, &["customers", "list"]));
    assert_eq!(code, 0);
    assert!(out.contains("acme") && out.contains("default"), "{out}");
    let (code, out, _) = run(webhooks(
        &s,
        &["trigger", "analysisjob.completed", "--customer", "acme"],
    ));
    assert_eq!(code, 0);
    assert!(out.contains("0 deliveries"), "{out}");
    let (code, out, _) = run(webhooks(&s, &["event-types"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 7);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .starts_with("transactions.fetched")
    );
}

#[test]
fn trigger_says_when_nothing_subscribes_and_the_server_may_leave_out_its_scheme() {
    let s = TestServer::start();
    let bare = s.api.base.strip_prefix("http://").unwrap().to_owned();
    let mut cmd = webhooks(&s, &["trigger", "transactions.fetched"]);
    cmd.env("WEBHOOKS_SERVER", &bare);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("→ 0 deliveries"), "{out}");
    assert!(
        out.contains("no enabled endpoint of customer default subscribes"),
        "{out}"
    );
}

#[test]
fn trigger_wait_prints_each_outcome_and_fails_when_one_failed() {
    let s = TestServer::start();
    let ok = crate::support::Receiver::start(crate::support::Reply::Status(200, "ok"));
    let bad = crate::support::Receiver::start(crate::support::Reply::Status(503, "down"));
    let good = s.endpoint(&s.key, &ok.url("/"), &["transactions.fetched"]);
    let (code, out, err) = run(webhooks(&s, &["trigger", "transactions.fetched", "--wait"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(good["id"].as_str().unwrap()), "{out}");
    assert!(out.contains("succeeded  HTTP 200"), "{out}");
    s.endpoint(&s.key, &bad.url("/"), &["transactions.fetched"]);
    let (code, out, err) = run(webhooks(&s, &["trigger", "transactions.fetched", "--wait"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed  HTTP 503"), "{out}");
    assert!(err.contains("1 of 2 deliveries did not succeed"), "{err}");
}

#[test]
fn status_and_completions() {
    let s = TestServer::start();
    let (code, out, err) = run(webhooks(&s, &["status"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(reachable)"), "{out}");
    let engine = if crate::support::on_postgres() {
        "postgres"
    } else {
        "redb"
    };
    assert!(out.contains(&format!("engine:  {engine}")), "{out}");
    assert!(out.contains("queue:   0 pending, 0 sending"), "{out}");
    let (st, body) = s.api.get("/api/v1/status", &s.admin);
    assert_eq!(st, 200);
    assert_eq!(body["engine"], engine);
    assert_eq!(body["nodes"], 1);
    assert!(body["node_id"].as_str().is_some_and(|n| !n.is_empty()));
    // The operator's route: a customer key is refused.
    assert_eq!(s.api.get("/api/v1/status", &s.key).0, 401);
    let (code, out, _) = run(webhooks(&s, &["completions", "bash"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("webhooks") && out.contains("complete"),
        "{out}"
    );
    let (code, _, err) = run(webhooks(&s, &["completions", "tcsh"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn endpoints_and_deliveries_from_the_command_line() {
    let s = TestServer::start();
    let r = crate::support::Receiver::start(crate::support::Reply::Status(200, "ok"));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    let evt = s.event(&s.default_customer(), "transactions.fetched", "{}");
    let evt_id = evt["id"].as_str().unwrap();
    let dlv = s.finished_deliveries_of(&s.key, evt_id, 1)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = |args: &[&str]| {
        let mut cmd = webhooks(&s, args);
        cmd.env("WEBHOOKS_API_KEY", &s.key);
        run(cmd)
    };

    let (code, out, err) = customer(&["endpoints", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let eps = json_lines(&out);
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0]["id"], ep_id.as_str());
    let (code, out, _) = customer(&["endpoints", "show", &ep_id]);
    assert_eq!(code, 0);
    assert!(out.contains(ep["secret"].as_str().unwrap()), "{out}");
    let (code, out, _) = customer(&["endpoints", "disable", &ep_id, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out)[0]["enabled"], false);
    let (code, out, _) = customer(&["endpoints", "enable", &ep_id]);
    assert_eq!(code, 0);
    assert!(out.contains("enabled"), "{out}");

    let (code, out, err) = customer(&["deliveries", "list", "--endpoint", &ep_id, "--json"]);
    assert_eq!(code, 0, "{err}");
    let ds = json_lines(&out);
    assert_eq!((ds.len(), ds[0]["id"].as_str()), (1, Some(dlv.as_str())));
    assert_eq!(ds[0]["status"], "succeeded");
    let (code, out, _) = customer(&["deliveries", "list", "--status", "failed"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("DELIVERY") && out.contains("(none)"),
        "{out}"
    );
    let (code, out, _) = customer(&["deliveries", "resend", &dlv, "--json"]);
    assert_eq!(code, 0);
    let resent = json_lines(&out)[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(resent, dlv);
    s.finished_delivery(&s.key, &resent);
    let (code, out, _) = customer(&[
        "deliveries",
        "recover",
        &ep_id,
        "--since",
        "2000-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out)[0]["deliveries"], 0, "nothing failed");

    // --follow prints a new delivery once it has finished, one JSON object per line.
    let mut follow = webhooks(&s, &["deliveries", "list", "--follow", "--json"]);
    follow.env("WEBHOOKS_API_KEY", &s.key);
    let following = Running::spawn(follow);
    following.line_with(&resent);
    let next = s.event(&s.default_customer(), "transactions.fetched", "{}");
    let line = following.line_with(next["id"].as_str().unwrap());
    let d: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(d["status"], "succeeded", "{d}");
    drop(following);

    // Bad input is a usage error; the wrong kind of secret is named.
    let (code, _, err) = customer(&["endpoints", "show", "../customers"]);
    assert_eq!(code, 2, "{err}");
    let mut wrong = webhooks(&s, &["endpoints", "list"]);
    wrong.env("WEBHOOKS_API_KEY", &s.admin);
    let (code, _, err) = run(wrong);
    assert_eq!(code, 2);
    assert!(err.contains("admin token"), "{err}");

    // The operator, with the admin token (no API key): one customer's, or everyone's.
    let (code, out, err) = run(webhooks(
        &s,
        &["endpoints", "list", "--customer", "default", "--json"],
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["id"], ep_id.as_str());
    let (code, out, _) = run(webhooks(&s, &["deliveries", "list", "--json"]));
    assert_eq!(code, 0);
    assert!(json_lines(&out).iter().any(|d| d["id"] == dlv.as_str()));
    let (code, _, err) = run(webhooks(&s, &["endpoints", "list", "--customer", "nobody"]));
    assert_eq!(code, 2, "{err}");

    let (code, out, _) = customer(&["endpoints", "delete", &ep_id]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted"), "{out}");
    let (code, out, _) = customer(&["endpoints", "list", "--json"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn listen_forwards_verified_requests_to_the_app_and_answers_what_it_answered() {
    let s = TestServer::start();
    let app = crate::support::Receiver::start(crate::support::Reply::Status(201, "made it"));
    let (l, _) = listen(
        &s,
        &["--api-key", &s.key, "--forward-to", &app.url("/hooks")],
    );
    let (code, out, err) = run(webhooks(&s, &["trigger", "transactions.fetched", "--wait"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("succeeded  HTTP 201"), "{out}");
    l.line_with("signature verified");
    l.line_with("your app answered 201");
    // The app got the delivery as sent: body and signature headers.
    let got = app.next(10);
    assert_eq!(got.path, "/hooks");
    assert!(got.header("webhook-signature").is_some());
    assert!(
        got.body_str()
            .contains("\"event\":\"transactions.fetched\"")
    );
    // Not together with --status.
    let (code, _, err) = run(webhooks(
        &s,
        &["listen", "--forward-to", &app.url("/"), "--status", "500"],
    ));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_operators_commands_speak_json_too() {
    let s = TestServer::start();
    let r = crate::support::Receiver::start(crate::support::Reply::Status(200, "ok"));
    s.endpoint(&s.key, &r.url("/"), &["*"]);
    let (code, out, err) = run(webhooks(&s, &["status", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert!(json_lines(&out)[0]["version"].is_string());
    let (code, out, _) = run(webhooks(&s, &["customers", "add", "acme", "--json"]));
    assert_eq!(code, 0);
    assert!(json_lines(&out)[0]["api_key"].is_string());
    let (code, out, _) = run(webhooks(&s, &["customers", "list", "--json"]));
    assert_eq!((code, json_lines(&out).len()), (0, 2));
    let (code, out, _) = run(webhooks(&s, &["event-types", "--json"]));
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out)[0]["name"], "transactions.fetched");
    let (code, out, err) = run(webhooks(
        &s,
        &["trigger", "transactions.fetched", "--wait", "--json"],
    ));
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["deliveries"], 1);
    assert_eq!(lines[1]["status"], "succeeded");
}
