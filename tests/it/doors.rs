//! The doors an attacker or a careless operator finds (issue "close the doors"): a replaced
//! admin token ends operator sessions, sign-in forms take only tokens the server issued, a
//! recover stays within the send budget, the CLI never lets text drive the terminal, a given
//! admin token is never written to disk, and a customer key cannot name a customer.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Receiver, Reply, TestServer, wait_for};
use crate::support::{Visitor, csrf_of};

#[test]
fn a_new_admin_token_ends_every_operator_session_and_they_can_be_ended_by_hand() {
    let mut s = TestServer::start();
    let mut op = Visitor::new(&s);
    let ok = op.sign_in("/admin", "/admin/login", "token", &s.admin);
    assert_eq!(ok.status, 303);
    assert_eq!(op.get("/admin/dashboard").status, 200);
    // A plain restart with the same token signs nobody out.
    let same = s.admin.clone();
    s.restart_with(|a| a.admin_token = Some(same.clone()));
    op.base = s.api.base.clone();
    assert_eq!(
        op.get("/admin/dashboard").status,
        200,
        "same token: still in"
    );
    // A new token: the old session is over, the old token refused.
    let new = "wha_rotated_admin_token_for_the_test_0123456789".to_owned();
    s.restart_with(|a| a.admin_token = Some(new.clone()));
    op.base = s.api.base.clone();
    let after = op.get("/admin/dashboard");
    assert_eq!(after.status, 303, "signed out");
    assert_eq!(after.location.as_deref(), Some("/admin"));
    assert_eq!(s.api.get("/api/v1/status", &s.admin).0, 401);
    // Ended by hand: DELETE /api/v1/operator-sessions, with the admin token only.
    let mut op = Visitor::new(&s);
    assert_eq!(
        op.sign_in("/admin", "/admin/login", "token", &new).status,
        303
    );
    assert_eq!(op.get("/admin/dashboard").status, 200);
    assert_eq!(s.api.delete("/api/v1/operator-sessions", &s.key).0, 401);
    let (st, _) = s.api.delete("/api/v1/operator-sessions", &new);
    assert_eq!(st, 204);
    assert_eq!(op.get("/admin/dashboard").status, 303, "ended");
    // And from the command line.
    let mut op = Visitor::new(&s);
    op.sign_in("/admin", "/admin/login", "token", &new);
    let mut end = crate::support::webhooks(&s, &["operator-sessions", "end"]);
    end.env("WEBHOOKS_ADMIN_TOKEN", &new);
    let (code, out, err) = crate::support::run(end);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ended"), "{out}");
    assert_eq!(op.get("/admin/dashboard").status, 303);
}

#[test]
fn sign_in_forms_take_only_tokens_the_server_issued() {
    let s = TestServer::start();
    // A made-up pair: the cookie and the field agree, but the server never issued it.
    let mut v = Visitor::new(&s);
    v.cookies.push(("wh_login".into(), "x".into()));
    let forged = v.post("/login", &[("csrf", "x"), ("api_key", &s.key)]);
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("form expired"));
    let mut v = Visitor::new(&s);
    v.cookies.push(("wh_login".into(), "x".into()));
    let forged = v.post("/admin/login", &[("csrf", "x"), ("token", &s.admin)]);
    assert_eq!(forged.status, 400);
    // A portal link is not spent by a made-up pair.
    let cus = s.default_customer();
    let (st, link) = s.api.post(
        &format!("/api/v1/customers/{cus}/portal-links"),
        &s.admin,
        &json!({}),
    );
    assert_eq!(st, 201, "{link}");
    let path = link["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&s.api.base)
        .unwrap()
        .to_owned();
    let mut v = Visitor::new(&s);
    v.cookies.push(("wh_login".into(), "l_made.up.pair".into()));
    let a = v.post(&path, &[("csrf", "l_made.up.pair")]);
    assert_ne!(a.status, 303, "not signed in");
    // The real form still works, after a restart too (the key is stored).
    let mut v = Visitor::new(&s);
    let page = v.get(&path);
    let csrf = csrf_of(&page.body);
    assert_eq!(v.post(&path, &[("csrf", &csrf)]).status, 303);
    let mut v = Visitor::new(&s);
    assert_eq!(v.sign_in("/", "/login", "api_key", &s.key).status, 303);
}

#[test]
fn a_form_issued_before_a_restart_still_signs_in() {
    let mut s = TestServer::start();
    let mut v = Visitor::new(&s);
    let csrf = csrf_of(&v.get("/").body);
    s.restart();
    v.base = s.api.base.clone();
    assert_eq!(
        v.post("/login", &[("csrf", &csrf), ("api_key", &s.key)])
            .status,
        303
    );
}

#[test]
fn a_recover_starts_only_what_the_send_budget_allows() {
    let s = TestServer::start_with(|a| a.max_sends_per_customer_per_min = 5);
    let r = Receiver::start(Reply::Status(500, "down"));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let id = ep["id"].as_str().unwrap().to_owned();
    s.batch(12);
    wait_for(30, "12 failures", || {
        let (_, d) = s
            .api
            .get("/api/v1/deliveries?status=failed&limit=100", &s.key);
        (d["data"].as_array()?.len() == 12).then_some(())
    });
    let (st, first) = s.api.post(
        &format!("/api/v1/endpoints/{id}/recover"),
        &s.key,
        &json!({"since": "2000-01-01T00:00:00Z"}),
    );
    assert_eq!(st, 202, "{first}");
    assert_eq!(first, json!({"deliveries": 5, "left": 7}));
    // The budget is spent: a second call waits for it.
    let (st, e) = s.api.post(
        &format!("/api/v1/endpoints/{id}/recover"),
        &s.key,
        &json!({"since": "2000-01-01T00:00:00Z"}),
    );
    assert_eq!(st, 429, "{e}");
    assert_eq!(e["error"]["code"], "rate_limited");
    // The portal asks first, with the count.
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &s.key);
    let csrf = csrf_of(&v.get(&format!("/webhooks/{id}")).body);
    let ask = v.post(
        &format!("/webhooks/{id}/recover"),
        &[("csrf", &csrf), ("since", "2000-01-01T00:00")],
    );
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("failed deliveries"), "{}", ask.body);
    assert!(ask.body.contains(r#"name="confirm" value="1""#));
}

#[test]
fn the_command_line_shows_control_characters_instead_of_obeying_them() {
    let s = TestServer::start();
    let (st, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"],
                "description": "shop\u{1b}]0;pwned\u{7}\u{1b}[2J"}),
    );
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap();
    let mut show = crate::support::webhooks(&s, &["endpoints", "show", id]);
    show.env("WEBHOOKS_API_KEY", &s.key);
    let (code, out, err) = crate::support::run(show);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("shop\\x{1b}]0;pwned"), "{out}");
    // --json stays exact JSON.
    let mut json = crate::support::webhooks(&s, &["endpoints", "show", id, "--json"]);
    json.env("WEBHOOKS_API_KEY", &s.key);
    let (_, out, _) = crate::support::run(json);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["description"], "shop\u{1b}]0;pwned\u{7}\u{1b}[2J");
}

#[test]
fn a_given_admin_token_is_never_written_to_the_secrets_file() {
    if crate::support::on_postgres() {
        return crate::support::skipped(
            "doors::a_given_admin_token_is_never_written_to_the_secrets_file",
            "starts on a data file of its own",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let token = "wha_given_by_the_operator_0123456789abcdef";
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("WEBHOOKS_ADMIN_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = crate::support::lines_of(child.stdout.take().unwrap());
    let banner = crate::support::next_line_with(&lines, "first start:", 20);
    assert!(
        banner.contains("the API key of customer default is in"),
        "{banner}"
    );
    let secrets = std::fs::read_to_string(dir.path().join("w.redb.first-start.txt")).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!secrets.contains(token), "{secrets}");
    assert!(!secrets.contains("admin token"), "{secrets}");
    assert!(
        secrets.contains("api key (customer default): whk_"),
        "{secrets}"
    );
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "*.first-start.txt"));
}

#[test]
fn a_customer_key_cannot_name_a_customer_and_the_operator_cannot_name_a_missing_one() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let (other, _) = s.customer("other");
    for path in [
        format!("/api/v1/endpoints?customer_id={other}"),
        format!("/api/v1/deliveries?customer_id={cus}"),
    ] {
        let (st, e) = s.api.get(&path, &s.key);
        assert_eq!(st, 422, "{path}: {e}");
        assert_eq!(e["error"]["code"], "unknown_field");
    }
    let (st, e) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "customer_id": other}),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("unknown_field"))
    );
    // The operator naming a customer that does not exist: 404, for a list and an action.
    let nobody = "cus_01M8GNG7X8E5K1T5H91J3G4DM8";
    let (st, _) = s
        .api
        .get(&format!("/api/v1/endpoints?customer_id={nobody}"), &s.admin);
    assert_eq!(st, 404);
    let (st, _) = s.api.post(
        &format!("/api/v1/endpoints?customer_id={nobody}"),
        &s.admin,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"]}),
    );
    assert_eq!(st, 404);
    let (st, _) = s.api.get(
        &format!("/api/v1/stats/deliveries?customer_id={nobody}"),
        &s.admin,
    );
    assert_eq!(st, 404);
}
