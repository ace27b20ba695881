//! The portal's word on an endpoint's health and a delivery: the paused banner and its
//! actions, the failing mark and what to do, a delivery's request, answer and a curl that
//! verifies.

use serde_json::json;

use crate::support::{TestServer, Visitor, csrf_of};

#[test]
fn a_paused_endpoint_opens_with_a_banner_and_its_actions_work() {
    let s = TestServer::start();
    let url = crate::support::dead_url();
    let ep = s.endpoint(&s.key, &url, &["*"]);
    let id = ep["id"].as_str().unwrap().to_owned();
    let cus = s.default_customer();
    for _ in 0..8 {
        s.event(&cus, "transactions.fetched", "{}");
    }
    crate::support::wait_for(30, "the endpoint to pause", || {
        let (_, e) = s.api.get(&format!("/api/v1/endpoints/{id}"), &s.key);
        (e["state"]["status"] == "paused" && e["state"]["waiting"].as_u64()? > 0).then_some(())
    });
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &s.key);
    let list = v.get("/webhooks");
    assert!(
        list.body.contains("pill paused"),
        "the list shows the badge"
    );
    let page = v.get(&format!("/webhooks/{id}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<strong>Paused</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("connection refused"));
    assert!(page.body.contains("Resume now") && page.body.contains("Fail the waiting ones"));
    // The operator sees it on the dashboard, with its badge.
    let mut op = Visitor::new(&s);
    op.sign_in("/admin", "/admin/login", "token", &s.admin);
    let dash = op.get("/admin/dashboard");
    assert!(dash.body.contains(r#"id="paused""#), "{}", dash.body);
    assert!(dash.body.contains(&id) && dash.body.contains("pill paused"));
    // Without the CSRF token nothing happens.
    let forged = v.post(&format!("/webhooks/{id}/fail-waiting"), &[("csrf", "nope")]);
    assert_ne!(forged.status, 303);
    let csrf = csrf_of(&page.body);
    let a = v.post(&format!("/webhooks/{id}/fail-waiting"), &[("csrf", &csrf)]);
    assert_eq!(a.status, 303);
    let after = v.get(&format!("/webhooks/{id}"));
    assert!(after.body.contains("never sent"), "the flash says so");
    let (_, e) = s.api.get(&format!("/api/v1/endpoints/{id}"), &s.key);
    assert_eq!(e["state"]["waiting"], 0);
    let csrf = csrf_of(&after.body);
    let a = v.post(&format!("/webhooks/{id}/resume"), &[("csrf", &csrf)]);
    assert_eq!(a.status, 303);
    let (_, e) = s.api.get(&format!("/api/v1/endpoints/{id}"), &s.key);
    assert_eq!(e["state"]["status"], "active");
    assert!(
        !v.get(&format!("/webhooks/{id}"))
            .body
            .contains("<strong>Paused</strong>")
    );
}

/// The answer's head to a raw GET asking for gzip (the test's HTTP client would decode it).

#[test]
fn an_endpoint_that_keeps_failing_is_marked_with_what_to_do() {
    let s = TestServer::start();
    let bad = crate::support::Receiver::start(crate::support::Reply::Status(500, "nope"));
    let good = crate::support::Receiver::start(crate::support::Reply::Status(200, "ok"));
    let failing = s.endpoint(&s.key, &bad.url("/"), &["*"]);
    let healthy = s.endpoint(&s.key, &good.url("/"), &["*"]);
    let cus = s.default_customer();
    for _ in 0..6 {
        let e = s.event(&cus, "transactions.fetched", "{}");
        s.finished_deliveries_of(&s.key, e["id"].as_str().unwrap(), 2);
    }
    let mut v = Visitor::new(&s);
    v.sign_in("/", "/login", "api_key", &s.key);
    let list = v.get("/webhooks").body;
    assert_eq!(list.matches("pill failing").count(), 1, "{list}");
    assert!(list.contains("0%") && list.contains("100%"), "{list}");
    let id = failing["id"].as_str().unwrap();
    let page = v.get(&format!("/webhooks/{id}")).body;
    assert!(page.contains("<strong>Failing</strong>"), "{page}");
    assert!(
        page.contains("6 of 6 deliveries in the last hour failed"),
        "{page}"
    );
    let ok_page = v.get(&format!("/webhooks/{}", healthy["id"].as_str().unwrap()));
    assert!(!ok_page.body.contains("<strong>Failing</strong>"));
    // The operator's support view: the same health, and the log of one endpoint.
    let mut op = Visitor::new(&s);
    op.sign_in("/admin", "/admin/login", "token", &s.admin);
    let support = op.get(&format!("/admin/customers/{cus}")).body;
    assert!(support.contains("pill failing"), "{support}");
    let only = op
        .get(&format!("/admin/customers/{cus}?endpoint={id}"))
        .body;
    assert!(
        only.contains("nope") && !only.contains(">200<"),
        "only the failing endpoint's log"
    );
}

/// What `askama` escaped in a page, back to text.
fn unescape(html: &str) -> String {
    html.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Issue 24: one delivery's page, from a log row — the request as it was sent (headers with
/// custom values masked, the body), the receiver's answer, and "Copy as curl", whose command
/// (run by a real shell, with `'`, `$(` and a newline in the body) reaches a receiver with
/// the same body and `webhook-id` and a signature that verifies. Another customer gets 404;
/// the operator sees it in the support view.
#[test]
fn a_delivery_page_shows_the_request_the_answer_and_a_curl_that_verifies() {
    use crate::support::{Receiver, Reply};
    let s = TestServer::start();
    let rx = Receiver::start(Reply::Status(200, r#"{"ok":true}"#));
    let (st, ep) = s.api.post(
        "/api/v1/endpoints",
        &s.key,
        &json!({"url": rx.url("/hook"), "events": ["*"], "headers": {"x-api-key": "sekret-123"}}),
    );
    assert_eq!(st, 201, "{ep}");
    let data = r#"{"note":"it's $(whoami)\nnext line","n":1}"#;
    let evt = s.event(&s.default_customer(), "transactions.fetched", data);
    let evt_id = evt["id"].as_str().unwrap();
    let sent = rx.next(10);
    let d = &s.finished_deliveries_of(&s.key, evt_id, 1)[0];
    let dlv = d["id"].as_str().unwrap();

    let mut v = Visitor::new(&s);
    assert_eq!(v.sign_in("/", "/login", "api_key", &s.key).status, 303);
    let ep_page = v.get(&format!("/webhooks/{}", ep["id"].as_str().unwrap()));
    assert!(
        ep_page
            .body
            .contains(&format!("href=\"/deliveries/{dlv}\"")),
        "every log row links to its delivery"
    );
    assert!(ep_page.body.contains(&format!("href=\"/events/{evt_id}\"")));

    let page = v.get(&format!("/deliveries/{dlv}"));
    assert_eq!(page.status, 200);
    let text = unescape(&page.body);
    let signature = sent.header("webhook-signature").unwrap();
    let timestamp = sent.header("webhook-timestamp").unwrap();
    for shown in [
        "The request as sent",
        "webhook-id",
        evt_id,
        timestamp,
        signature,
        "x-api-key",
        "••••••",
        "The receiver's answer",
        "200",
        "\"ok\": true",
        "\"note\": \"it's $(whoami)\\nnext line\"",
    ] {
        assert!(text.contains(shown), "the page shows {shown:?}");
    }
    assert!(
        !text.contains("sekret-123"),
        "custom header values are masked"
    );

    // Copy as curl, to a receiver of our own.
    let bench = Receiver::start(Reply::Status(204, ""));
    let to = bench.url("/from-curl");
    let page = v.get(&format!(
        "/deliveries/{dlv}?to={}",
        form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
    ));
    let text = unescape(&page.body);
    let cmd = text
        .split("<pre class=\"payload\" id=\"curl-command\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .expect("the page shows the command");
    assert!(cmd.starts_with("curl -X POST "), "{cmd}");
    assert!(!cmd.contains("sekret-123"), "custom headers are left out");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} --silent --show-error --max-time 10"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = bench.next(10);
    assert_eq!(got.path, "/from-curl");
    assert_eq!(got.body, sent.body, "the same body, byte for byte");
    assert_eq!(got.header("webhook-id"), Some(evt_id));
    let wh = standardwebhooks::Webhook::new(ep["secret"].as_str().unwrap()).unwrap();
    wh.verify(&got.body, &got.header_map())
        .expect("signed afresh: it verifies now");

    // A URL that cannot be used is said so, in the form.
    let page = v.get(&format!(
        "/deliveries/{dlv}?to=file%3A%2F%2F%2Fetc%2Fpasswd"
    ));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("cannot be used"), "{}", page.body);
    assert!(!page.body.contains("curl -X POST"));

    // Another customer: 404, as for an id that does not exist.
    let (other_id, other_key) = s.customer("other");
    let mut o = Visitor::new(&s);
    o.sign_in("/", "/login", "api_key", &other_key);
    assert_eq!(o.get(&format!("/deliveries/{dlv}")).status, 404);

    // The operator, in the support view of the right customer only.
    let mut op = Visitor::new(&s);
    op.sign_in("/admin", "/admin/login", "token", &s.admin);
    let cid = s.default_customer();
    let support = op.get(&format!("/admin/customers/{cid}"));
    assert!(
        support
            .body
            .contains(&format!("/admin/customers/{cid}/deliveries/{dlv}"))
    );
    let page = op.get(&format!("/admin/customers/{cid}/deliveries/{dlv}"));
    assert_eq!(page.status, 200);
    assert!(unescape(&page.body).contains(signature));
    assert_eq!(
        op.get(&format!("/admin/customers/{other_id}/deliveries/{dlv}"))
            .status,
        404
    );
}
