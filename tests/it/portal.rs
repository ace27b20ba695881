//! The portal over plain HTTP: sign-in, CSRF refusal, escaping, tenant isolation, logout,
//! throttling and cookie attributes.

use serde_json::json;

use crate::support::{TestServer, Visitor, csrf_of};

#[test]
fn signing_in_sets_a_strict_http_only_cookie_and_logout_ends_the_session() {
    let s = TestServer::start();
    let mut v = Visitor::new(&s);
    let a = v.sign_in("/", "/login", "api_key", &s.key);
    assert_eq!((a.status, a.location.as_deref()), (303, Some("/webhooks")));
    let cookie = a
        .set_cookies
        .iter()
        .find(|c| c.starts_with("wh_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let page = v.get("/webhooks");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No endpoints yet"));
    assert!(!page.body.contains(&s.key), "the key is never shown back");

    let old = v.cookies.clone();
    let csrf = csrf_of(&page.body);
    let out = v.post("/logout", &[("csrf", &csrf)]);
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/")));
    v.cookies = old; // replaying the old cookie does not work any more
    let after = v.get("/webhooks");
    assert_eq!((after.status, after.location.as_deref()), (303, Some("/")));
}

#[test]
fn a_form_without_the_right_csrf_token_changes_nothing() {
    let s = TestServer::start();
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &s.key);
    for token in ["", "c_forged"] {
        let a = v.post(
            "/webhooks",
            &[
                ("csrf", token),
                ("url", "http://127.0.0.1:9/"),
                ("events", "*"),
            ],
        );
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(a.body.contains("security token"));
    }
    let (_, eps) = s.api.get("/api/v1/endpoints", &s.key);
    assert_eq!(eps["data"].as_array().unwrap().len(), 0);
    // The sign-in form is protected the same way.
    let mut stranger = Visitor::new(&s);
    let a = stranger.post("/login", &[("csrf", "l_forged"), ("api_key", &s.key)]);
    assert_eq!(a.status, 400);
    assert!(!a.set_cookies.iter().any(|c| c.starts_with("wh_session=")));
}

#[test]
fn user_text_is_escaped() {
    let s = TestServer::start();
    let evil = "<script>alert('x')</script>";
    let (st, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "description": evil}),
    );
    assert_eq!(st, 201);
    s.event(
        &s.default_customer(),
        "transactions.fetched",
        &json!({"note": evil}).to_string(),
    );
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &s.key);
    for path in [
        "/webhooks".to_owned(),
        format!("/webhooks/{}", ep["id"].as_str().unwrap()),
        "/events".to_owned(),
    ] {
        let page = v.get(&path);
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} is not escaped"
        );
        assert!(
            page.body.contains("&lt;script&gt;") || page.body.contains("&#60;script&#62;"),
            "{path}"
        );
    }
}

#[test]
fn another_customers_pages_are_not_found() {
    let s = TestServer::start();
    let ep = s.endpoint(&s.key, "http://127.0.0.1:9/", &["*"]);
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    let evt = s.event(&s.default_customer(), "transactions.fetched", "{}");
    let (_, other_key) = s.customer("acme");
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &other_key);
    let page = v.get("/webhooks");
    let csrf = csrf_of(&page.body);
    for path in [
        format!("/webhooks/{ep_id}"),
        format!("/webhooks/{ep_id}/delete"),
        format!("/events/{}", evt["id"].as_str().unwrap()),
        "/webhooks/ep_not-an-id".to_owned(),
    ] {
        assert_eq!(v.get(&path).status, 404, "{path}");
    }
    for action in ["toggle", "delete", "rotate", "test"] {
        let a = v.post(
            &format!("/webhooks/{ep_id}/{action}"),
            &[("csrf", &csrf), ("keep_old_for_secs", "0")],
        );
        assert_eq!(a.status, 404, "{action}");
    }
    let (st, still) = s.api.get(&format!("/api/v1/endpoints/{ep_id}"), &s.key);
    assert_eq!((st, still["enabled"].as_bool()), (200, Some(true)));
}

#[test]
fn each_sign_in_takes_only_its_own_secret_and_failures_are_slowed() {
    let s = TestServer::start();
    let mut v = Visitor::new(&s);
    assert_eq!(v.sign_in("/", "/login", "api_key", &s.admin).status, 401);
    assert_eq!(
        v.sign_in("/admin", "/admin/login", "token", &s.key).status,
        401
    );
    let ok = v.sign_in("/admin", "/admin/login", "token", &s.admin);
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/admin")));
    assert!(v.get("/admin").body.contains("Operator console"));
    // The operator's session does not open the customer pages.
    assert_eq!(v.get("/webhooks").status, 303);

    let mut attacker = Visitor::new(&s);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            attacker
                .sign_in("/", "/login", "api_key", "whk_guess")
                .status,
        );
    }
    // Failures count per address (this test's two above included), and the success in
    // between did not clear them.
    let first_429 = statuses.iter().position(|s| *s == 429).expect("throttled");
    assert_eq!(first_429, 3, "{statuses:?}");
    assert!(
        statuses[first_429..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
}

#[test]
fn deleting_a_customer_ends_its_sessions() {
    let s = TestServer::start();
    let (id, key) = s.customer("acme");
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &key);
    assert_eq!(v.get("/webhooks").status, 200);
    assert_eq!(
        s.api.delete(&format!("/api/v1/customers/{id}"), &s.admin).0,
        204
    );
    assert_eq!(v.get("/webhooks").status, 303);
}

#[test]
fn a_portal_link_signs_a_customer_in_once_and_only_by_its_post() {
    let s = TestServer::start();
    let (id, key) = s.customer("acme");
    let make = format!("/api/v1/customers/{id}/portal-links");
    let empty = serde_json::json!({});
    assert_eq!(
        s.api.post(&make, &key, &empty).0,
        401,
        "the operator's route"
    );
    let (st, link) = s.api.post(&make, &s.admin, &empty);
    assert_eq!(st, 201, "{link}");
    assert!(link["expires_at"].is_string());
    let url = link["url"].as_str().unwrap();
    let path = url
        .strip_prefix(&s.api.base)
        .expect("the link is on this server");
    // Opening it (again and again, as a mail scanner would) spends nothing.
    let mut v = Visitor::new(&s);
    for _ in 0..2 {
        let page = v.get(path);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Continue") && page.body.contains("acme"));
    }
    let raw = ureq::get(url).call().unwrap();
    assert_eq!(
        raw.headers().get("referrer-policy").unwrap(),
        "no-referrer",
        "the token never leaks as a referrer"
    );
    // The POST spends it and signs in.
    let csrf = csrf_of(&v.get(path).body);
    let a = v.post(path, &[("csrf", &csrf)]);
    assert_eq!((a.status, a.location.as_deref()), (303, Some("/webhooks")));
    assert_eq!(v.get("/webhooks").status, 200);
    // A second use is refused, opened or posted.
    let mut w = Visitor::new(&s);
    let again = w.get(path);
    assert_eq!(again.status, 404);
    assert!(again.body.contains("used already or has expired"));
    assert_eq!(w.post(path, &[("csrf", &csrf)]).status, 404);
    assert_eq!(w.get("/webhooks").status, 303);
    // No link for a customer that does not exist; nothing but a link token is one.
    let missing = "/api/v1/customers/cus_01M8GNG7X8E5K1T5H91J3G4DM8/portal-links";
    assert_eq!(s.api.post(missing, &s.admin, &empty).0, 404);
    assert_eq!(w.get("/portal-link/whk_nope").status, 404);
    // Deleting the customer ends the link's session too.
    assert_eq!(
        s.api.delete(&format!("/api/v1/customers/{id}"), &s.admin).0,
        204
    );
    assert_eq!(v.get("/webhooks").status, 303);
}

#[test]
fn the_operator_can_end_a_customers_sessions() {
    let s = TestServer::start();
    let (id, key) = s.customer("acme");
    let (_, other_key) = s.customer("globex");
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &key);
    let mut w = Visitor::new(&s);
    w.sign_in("/", "/login", "api_key", &other_key);
    assert_eq!(v.get("/webhooks").status, 200);
    let path = format!("/api/v1/customers/{id}/sessions");
    assert_eq!(s.api.delete(&path, &key).0, 401, "the operator's route");
    assert_eq!(s.api.delete(&path, &s.admin).0, 204);
    assert_eq!(v.get("/webhooks").status, 303, "signed out");
    assert_eq!(
        w.get("/webhooks").status,
        200,
        "another customer stays signed in"
    );
    // The key still works: signing in again is possible.
    v.sign_in("/", "/login", "api_key", &key);
    assert_eq!(v.get("/webhooks").status, 200);
    let missing = "/api/v1/customers/cus_01M8GNG7X8E5K1T5H91J3G4DM8/sessions";
    assert_eq!(s.api.delete(missing, &s.admin).0, 404);
}

#[test]
fn assets_are_embedded_and_pages_load_nothing_from_elsewhere() {
    let s = TestServer::start();
    let mut v = Visitor::new(&s);
    for path in ["/static/style.css", "/static/app.js", "/static/favicon.svg"] {
        let a = v.get(path);
        assert_eq!(a.status, 200, "{path}");
        assert!(!a.body.is_empty());
    }
    assert_eq!(v.get("/static/nope.css").status, 404);
    v.sign_in("/", "/login", "api_key", &s.key);
    let page = v.get("/webhooks").body;
    for attr in ["src=\"http", "href=\"http", "url(http"] {
        assert!(!page.contains(attr), "{attr}");
    }
}

fn head_of(s: &TestServer, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = s.api.base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept-encoding: gzip\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase()
}

#[test]
fn assets_and_json_are_compressed_but_pages_never_are() {
    let s = TestServer::start();
    assert!(head_of(&s, "/static/style.css").contains("content-encoding: gzip"));
    assert!(head_of(&s, "/api/v1/openapi.json").contains("content-encoding: gzip"));
    // A page carries a CSRF token next to what the query says: never compressed (BREACH).
    let page = head_of(&s, "/?q=abc");
    assert!(page.contains("content-type: text/html"), "{page}");
    assert!(!page.contains("content-encoding: gzip"), "{page}");
}

#[test]
fn the_wrong_kind_of_secret_at_a_sign_in_form_says_where_it_goes() {
    let s = TestServer::start();
    let mut v = Visitor::new(&s);
    let a = v.sign_in("/", "/login", "api_key", &s.admin);
    assert!(a.body.contains("operators sign in at /admin"), "{}", a.body);
    let mut v = Visitor::new(&s);
    let a = v.sign_in("/admin", "/admin/login", "token", &s.key);
    assert!(a.body.contains("customers sign in at /"), "{}", a.body);
    // A missing page keeps a way around.
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &s.key);
    let missing = v.get("/webhooks/ep_01M8GNG7X8E5K1T5H91J3G4DM8");
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains(r#"href="/webhooks""#),
        "{}",
        missing.body
    );
}
