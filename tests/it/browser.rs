//! The portal in a real headless Chromium, driven through chromedriver (WebDriver): what a
//! customer and the operator do, click by click. With `SCREENSHOTS=dir` it also saves a
//! picture of each main page there (`scripts/screenshots` does that).

use fantoccini::Locator;

use crate::support::browser::{Driver, Page, screenshots_dir};
use crate::support::{Receiver, Reply, TestServer};

#[test]
fn a_customer_and_the_operator_use_the_portal_in_a_browser() {
    let s = TestServer::start();
    let receiver = Receiver::start(Reply::Status(500, "not yet"));
    let driver = Driver::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let p = Page {
            c: &c,
            base: s.api.base.clone(),
            shots: screenshots_dir(),
        };

        // Sign in with the API key; a wrong key is refused.
        p.go("/").await;
        p.shot("01-login").await;
        p.fill("input[name=api_key]", "whk_wrong").await;
        p.submit("form button[type=submit]").await;
        assert!(p.text().await.contains("That API key is not valid."));
        p.fill("input[name=api_key]", &s.key).await;
        p.submit("form button[type=submit]").await;
        assert_eq!(p.path().await, "/webhooks");
        assert!(p.text().await.contains("No endpoints yet"));
        p.shot("02-webhooks-empty").await;

        // A bad URL gets its message next to the field; then create the endpoint.
        p.fill("#url", "ftp://example.com/hook").await;
        p.submit("#new button[type=submit]").await;
        let t = p.text().await;
        assert!(
            t.contains("Pick at least one event type.") && t.contains("url must start with http"),
            "{t}"
        );
        p.fill("#url", &receiver.url("/enablenow")).await;
        p.click("input[name=events][value='transactions.fetched']")
            .await;
        p.fill("#description", "Production receiver <script>").await;
        p.submit("#new button[type=submit]").await;
        assert!(p.path().await.starts_with("/webhooks/ep_"));
        let endpoint_path = p.path().await;
        assert!(p.text().await.contains("Endpoint added."));

        // An event arrives, fails (the receiver answers 500), and is resent from its row.
        let cus = s.default_customer();
        s.event(&cus, "transactions.fetched", r#"{"consentId":"cns_1"}"#);
        let log = p.wait_for_text("#log table", "failed").await;
        assert!(log.contains("500") && log.contains("not yet"), "{log}");
        receiver.set_reply(Reply::Status(200, "thanks"));
        p.submit("#log table button.secondary").await;
        assert!(p.text().await.contains("Delivery sent again."));
        let t = p.wait_for_text("#log table", "succeeded").await;
        assert!(t.contains("thanks"));

        // Send test event (a type the endpoint does not subscribe to).
        let test_type = p.c.find(Locator::Css("#test-event")).await.unwrap();
        test_type
            .select_by_value("categorizationjob.completed")
            .await
            .unwrap();
        p.submit("form[action$='/test'] button").await;
        p.wait_for_text("#log table", "categorizationjob.completed")
            .await;
        let t = p.wait_for_text("#chart", "3 deliveries").await;
        // The chart: one bar per hour the three deliveries finished in (one, unless the
        // test straddles an hour), stacked by outcome — two succeeded, one failed.
        let (_, ds) = s.api.get("/api/v1/deliveries", &s.key);
        let hours: std::collections::BTreeSet<String> = ds["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["finished_at"].as_str().unwrap()[..13].to_owned())
            .collect();
        let bars = p.bars("#chart").await;
        assert_eq!(bars.len(), hours.len(), "{bars:?} {hours:?}\n{t}");
        let sum = bars
            .iter()
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        assert_eq!(sum, (2, 1, 0), "{bars:?}");
        for b in &bars {
            let outcomes = [b.0, b.1, b.2].iter().filter(|n| **n > 0).count() as u64;
            assert_eq!(b.3, outcomes, "one rectangle per outcome: {bars:?}");
        }
        p.shot("03-endpoint").await;

        // The log's filters: failed only; then "find" with an event's id opens the event.
        c.find(Locator::Css("#f-status"))
            .await
            .unwrap()
            .select_by_value("failed")
            .await
            .unwrap();
        p.submit("form.log-filter button").await;
        assert_eq!(p.log_statuses().await, vec!["failed"]);
        let failed_event = ds["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["status"] == "failed")
            .unwrap()["event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        p.fill("#f-find", &failed_event).await;
        p.submit("form.log-filter button").await;
        assert_eq!(p.path().await, format!("/events/{failed_event}"));
        p.go(&format!(
            "{endpoint_path}?status=succeeded&event=categorizationjob.completed#log"
        ))
        .await;
        assert_eq!(
            p.log_statuses().await,
            vec!["succeeded"],
            "the test event's"
        );
        p.go(&format!("{endpoint_path}?since=nonsense#log")).await;
        assert!(p.text().await.contains("From: enter a date and time"));
        p.go(&endpoint_path).await;

        // A log row opens its delivery: the request as sent, the body, the receiver's answer.
        p.submit("#log tbody tr a[href^='/deliveries/']").await;
        assert!(p.path().await.starts_with("/deliveries/dlv_"));
        let page = p.text().await;
        for shown in [
            "The request as sent",
            "webhook-signature",
            "webhook-timestamp",
            "\"event\":",
            "The receiver's answer",
            "Copy as curl",
        ] {
            assert!(
                page.contains(shown),
                "the delivery page shows {shown:?}:\n{page}"
            );
        }
        p.fits().await;
        p.shot("17-delivery").await;
        p.go(&endpoint_path).await;

        // Reveal the secret; rotate it.
        let (_, eps) = s.api.get("/api/v1/endpoints", &s.key);
        let secret = eps["data"][0]["secret"].as_str().unwrap().to_owned();
        p.click("details summary").await;
        let shown = c
            .find(Locator::Css("#secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(shown, secret);
        p.submit("form[action$='/rotate'] button").await;
        let flash = c
            .find(Locator::Css("#flash-secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(flash.starts_with("whsec_") && flash != secret);

        // Disable, then the Events tab, then delete with confirmation.
        p.submit("form[action$='/toggle'] button").await;
        assert!(p.text().await.contains("Endpoint disabled"));
        p.go("/webhooks").await;
        assert!(p.text().await.contains("disabled"));
        p.shot("04-webhooks").await;
        p.submit("nav.tabs a[href='/events']").await;
        let t = p.text().await;
        assert!(t.contains("transactions.fetched") && t.contains("categorizationjob.completed"));
        p.shot("05-events").await;
        p.go(&format!("{endpoint_path}/delete")).await;
        p.submit("form button.danger").await;
        assert_eq!(p.path().await, "/webhooks");
        assert!(p.text().await.contains("Endpoint deleted."));
        p.submit("header form button").await;
        assert_eq!(p.path().await, "/");

        // The operator: sign in, create a customer, trigger an event, see its deliveries.
        p.go("/admin").await;
        p.fill("input[name=token]", &s.key).await; // a customer key is not an admin token
        p.submit("form button[type=submit]").await;
        assert!(
            p.text()
                .await
                .contains("That is a customer's API key: customers sign in at /.")
        );
        p.fill("input[name=token]", &s.admin).await;
        p.submit("form button[type=submit]").await;
        assert!(p.text().await.contains("Operator console"));
        p.fill("#customer-name", "acme").await;
        p.submit("form[action='/admin/customers'] button").await;
        let key = c
            .find(Locator::Css("#flash-secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(key.starts_with("whk_"));
        s.endpoint(&key, &receiver.url("/acme"), &["*"]);
        // Nothing listens on port 1: every delivery there fails (connection refused).
        let down = s.endpoint(&key, "http://127.0.0.1:1/down", &["*"]);
        p.shot("06-console").await;
        let customer = c.find(Locator::Css("#trigger-customer")).await.unwrap();
        let acme_id = s.customer_id("acme");
        customer.select_by_value(&acme_id).await.unwrap();
        let kind = c.find(Locator::Css("#trigger-type")).await.unwrap();
        kind.select_by_value("databridge.share.updated")
            .await
            .unwrap();
        let data = c.find(Locator::Css("#trigger-data")).await.unwrap();
        assert!(
            data.prop("value")
                .await
                .unwrap()
                .unwrap()
                .contains("accepted")
        );
        p.submit("form[action='/admin/trigger'] button").await;
        let path = p.path().await;
        assert!(
            path.starts_with("/admin/events/evt_"),
            "{path}: {}",
            p.text().await
        );
        assert!(p.text().await.contains("sent to 2 endpoints"));
        let t = p.wait_for_text("main", "succeeded").await;
        assert!(t.contains("acme"), "{t}");
        p.wait_for_text("main", "connection").await;
        p.shot("07-triggered").await;

        // The dashboard: every customer's deliveries by minute, and the failing endpoint.
        p.go("/admin/dashboard").await;
        let t = p.wait_for_text("#failing", "127.0.0.1:1/down").await;
        assert!(t.contains("1 of 1 failed"), "{t}");
        let sum = p
            .bars("#per-minute")
            .await
            .iter()
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        assert_eq!(
            sum,
            (3, 2, 0),
            "two succeeded and one failed before, one of each now"
        );
        assert_eq!(
            p.bars("#failing").await.len(),
            1,
            "the failing endpoint's one bar"
        );
        assert!(t.contains(down["id"].as_str().unwrap()));
        p.shot("12-dashboard").await;

        // The support view of a customer: its endpoints, events and log; Resend from there.
        p.go("/admin").await;
        p.submit(&format!("a[href='/admin/customers/{acme_id}']"))
            .await;
        let t = p.text().await;
        assert!(
            t.contains("read-only view")
                && t.contains("127.0.0.1:1/down")
                && t.contains("databridge.share.updated"),
            "{t}"
        );
        assert_eq!(p.bars("#chart").await.len(), 1);
        c.find(Locator::Css("#f-status"))
            .await
            .unwrap()
            .select_by_value("failed")
            .await
            .unwrap();
        p.submit("form.log-filter button").await;
        assert_eq!(p.log_statuses().await, vec!["failed"]);
        p.shot("14-support").await;
        p.submit("#log table button.secondary").await;
        assert!(p.text().await.contains("Delivery sent again."));
        assert_eq!(p.path().await, format!("/admin/customers/{acme_id}"));
        crate::support::wait_for(20, "the resend to be logged", || {
            let (_, log) = s.api.get(
                &format!("/api/v1/deliveries?customer_id={acme_id}"),
                &s.admin,
            );
            (log["data"].as_array().unwrap().len() == 3).then_some(())
        });
        p.submit("form[action$='/portal-link'] button").await;
        let link = c
            .find(Locator::Css("#flash-secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            link.starts_with(&format!("{}/portal-link/wpl_", s.api.base)),
            "{link}"
        );

        // A phone's width: the same pages, still usable, none scrolling sideways.
        c.set_window_size(390, 844).await.unwrap();
        p.go(&path).await;
        p.fits().await;
        p.shot("08-event-phone").await;
        p.go("/admin").await;
        p.fits().await;
        p.shot("09-console-phone").await;
        p.go("/admin/dashboard").await;
        p.fits().await;
        assert!(
            p.chart_text_readable().await > 0,
            "the dashboard's charts have labels"
        );
        p.shot("13-dashboard-phone").await;
        p.go(&format!("/admin/customers/{acme_id}")).await;
        p.fits().await;
        // And the customer's pages, signed in again at that width.
        p.go("/").await;
        p.fits().await;
        p.fill("input[name=api_key]", &s.key).await;
        p.submit("form button[type=submit]").await;
        assert_eq!(p.path().await, "/webhooks");
        let phone_ep = s.endpoint(
            &s.key,
            &receiver.url("/a-rather-long-path/that/should/break/sensibly/at/390px"),
            &["*"],
        );
        let phone_ep_page = format!("/webhooks/{}", phone_ep["id"].as_str().unwrap());
        for page in ["/webhooks", "/events", phone_ep_page.as_str()] {
            p.go(page).await;
            p.fits().await;
        }
        assert!(
            p.chart_text_readable().await > 0,
            "the endpoint's chart has labels"
        );
        p.shot("15-endpoint-phone").await;
        p.shot("10-events-phone").await;

        // A portal link the operator made: Continue signs in once; the link is then spent.
        c.delete_all_cookies().await.unwrap();
        let (st, link) = s.api.post(
            &format!("/api/v1/customers/{}/portal-links", s.default_customer()),
            &s.admin,
            &serde_json::json!({}),
        );
        assert_eq!(st, 201, "{link}");
        let link_path = link["url"]
            .as_str()
            .unwrap()
            .strip_prefix(&s.api.base)
            .unwrap()
            .to_owned();
        p.go(&link_path).await;
        assert!(p.text().await.contains("Continue to Webhooks"));
        p.fits().await;
        p.shot("11-portal-link").await;
        p.submit("form button[type=submit]").await;
        assert_eq!(p.path().await, "/webhooks");
        p.go(&link_path).await;
        assert!(p.text().await.contains("This link cannot be used"));
        c.close().await.unwrap();
    });
    let got = receiver.drain();
    assert!(got.iter().any(|r| r.path == "/acme"));
}

#[test]
fn a_paused_endpoint_is_seen_and_acted_on_in_a_browser() {
    let s = TestServer::start();
    // A port where nothing listens: the endpoint pauses and its deliveries wait.
    let url = crate::support::dead_url();
    let ep = s.endpoint(&s.key, &url, &["*"]);
    let id = ep["id"].as_str().unwrap().to_owned();
    s.batch(6);
    crate::support::wait_for(30, "the endpoint to pause with deliveries waiting", || {
        let (_, e) = s.api.get(&format!("/api/v1/endpoints/{id}"), &s.key);
        (e["state"]["status"] == "paused" && e["state"]["waiting"].as_u64()? > 0).then_some(())
    });
    let driver = Driver::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let p = Page {
            c: &c,
            base: s.api.base.clone(),
            shots: screenshots_dir(),
        };
        p.go("/").await;
        p.fill("input[name=api_key]", &s.key).await;
        p.submit("form button[type=submit]").await;
        // The list shows the badge; the endpoint's page opens with the banner.
        assert!(p.text().await.contains("paused"));
        p.go(&format!("/webhooks/{id}")).await;
        let t = p.text().await;
        assert!(
            t.contains("Paused") && t.contains("connection refused"),
            "{t}"
        );
        assert!(t.contains("waiting, untried"), "{t}");
        p.fits().await;
        p.shot("16-endpoint-paused").await;
        // Fail the waiting ones: said so, and the pause goes on.
        p.submit("form[action$='/fail-waiting'] button").await;
        assert!(p.text().await.contains("never sent"));
        // Resume now: the banner is gone.
        p.submit("form[action$='/resume'] button").await;
        assert!(!p.text().await.contains("untried"));
        c.close().await.unwrap();
    });
    let (_, e) = s.api.get(&format!("/api/v1/endpoints/{id}"), &s.key);
    assert_eq!(e["state"]["status"], "active");
}
