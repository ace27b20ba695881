//! The portal in a real headless Chromium, driven through chromedriver (WebDriver): what a
//! customer and the operator do, click by click. With `SCREENSHOTS=dir` it also saves a
//! picture of each main page there (`scripts/screenshots` does that).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{Receiver, Reply, TestServer};

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        // Its own process group: dropping the driver ends the browsers it started too.
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {bin} ({e}): the browser tests need Debian's chromium and \
                     chromium-driver; scripts/test installs them"
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        crate::support::wait_for(20, "chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Self {
            child,
            url,
            _profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn browser(&self) -> Client {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    "--disable-crash-reporter", "--disable-breakpad",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("chromedriver starts a headless chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page under test, with the helpers a person's eyes and hands would use.
struct Page<'a> {
    c: &'a Client,
    base: String,
    shots: Option<std::path::PathBuf>,
}

impl Page<'_> {
    async fn go(&self, path: &str) {
        self.c
            .goto(&format!("{}{}", self.base, path))
            .await
            .unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Clicks something that loads a new page, and waits until the new page is there.
    async fn submit(&self, css: &str) {
        let old = self.c.find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "clicking {css} loaded no page");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.c
            .wait()
            .for_element(Locator::Css("body"))
            .await
            .unwrap();
    }

    async fn text(&self) -> String {
        self.c
            .wait()
            .for_element(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    /// Reloads until the element `css` shows `needle` (deliveries finish in the background);
    /// returns the whole page's text.
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let part = match self.c.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let t = self.text().await;
            if part.contains(needle) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {needle:?}:\n{t}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
            self.c.refresh().await.unwrap();
        }
    }

    /// The page is no wider than the window: nothing scrolls sideways as a whole.
    async fn fits(&self) {
        let widths = self
            .c
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .unwrap();
        let (page, window) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            page <= window,
            "{}: {page} px wide in a {window} px window",
            self.path().await
        );
    }

    /// Every label of every chart on the page is drawn at least 11 px tall (HTML text: an
    /// SVG's text would shrink with it on a phone); returns how many labels were measured.
    async fn chart_text_readable(&self) -> usize {
        let got = self
            .c
            .execute(
                "const svgText = document.querySelectorAll('.chart svg text').length;
                 const sizes = Array.from(document.querySelectorAll('.chart span'))
                   .filter(e => e.getClientRects().length > 0)
                   .map(e => parseFloat(getComputedStyle(e).fontSize) *
                             (e.getBoundingClientRect().height > 0 ? 1 : 0));
                 return [svgText, sizes];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            got[0],
            0,
            "{}: no text inside a chart's SVG",
            self.path().await
        );
        let sizes: Vec<f64> = got[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            sizes.iter().all(|px| *px >= 11.0),
            "{}: chart labels under 11 px: {sizes:?}",
            self.path().await
        );
        sizes.len()
    }

    /// The bars of the charts under `css`: per bar (succeeded, failed, interrupted, and how
    /// many rectangles it is drawn with).
    async fn bars(&self, css: &str) -> Vec<(u64, u64, u64, u64)> {
        let got = self
            .c
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0] + ' svg g.bar')).map(g =>
                   [+g.dataset.succeeded, +g.dataset.failed, +g.dataset.interrupted,
                    g.querySelectorAll('rect').length])",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        got.as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let n = |i: usize| b[i].as_u64().unwrap();
                (n(0), n(1), n(2), n(3))
            })
            .collect()
    }

    /// The status pills of the delivery log's rows.
    async fn log_statuses(&self) -> Vec<String> {
        let got = self
            .c
            .execute(
                "return Array.from(document.querySelectorAll('#log tbody tr .pill')).map(p => p.textContent)",
                vec![],
            )
            .await
            .unwrap();
        got.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            self.c
                .execute("window.scrollTo(0, 0)", vec![])
                .await
                .unwrap();
            let png = self.c.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }
}

fn screenshots_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("SCREENSHOTS")?);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

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

/// axe-core (Deque's accessibility engine, from npm: scripts/test installs it under
/// `target/axe`) on every page of the portal and the console, at 1280 and 390 px: no
/// violation of serious or critical impact.
#[test]
fn axe_finds_no_serious_accessibility_problem_on_any_page_at_two_widths() {
    let axe_path = std::env::var("WEBHOOKS_AXE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/axe/node_modules/axe-core/axe.min.js")
        });
    let Ok(axe) = std::fs::read_to_string(&axe_path) else {
        return crate::support::skipped(
            "browser::axe_finds_no_serious_accessibility_problem_on_any_page_at_two_widths",
            "needs axe-core from npm at target/axe (scripts/test installs it)",
        );
    };
    let s = TestServer::start();
    let receiver = Receiver::start(Reply::Status(200, r#"{"ok":true}"#));
    let ep = s.endpoint(&s.key, &receiver.url("/hook"), &["*"]);
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    let evt = s.event(&s.default_customer(), "transactions.fetched", r#"{"n":1}"#);
    let evt_id = evt["id"].as_str().unwrap().to_owned();
    let dlv = s.finished_deliveries_of(&s.key, &evt_id, 1)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cid = s.default_customer();
    // A second endpoint whose receiver is down: paused, with its banner and badge.
    let down = s.endpoint(&s.key, &crate::support::dead_url(), &["*"]);
    let down_id = down["id"].as_str().unwrap().to_owned();
    s.event(&s.default_customer(), "transactions.fetched", r#"{"n":2}"#);
    crate::support::wait_for(30, "the dead endpoint to pause", || {
        let (_, e) = s.api.get(&format!("/api/v1/endpoints/{down_id}"), &s.key);
        (e["state"]["status"] == "paused").then_some(())
    });
    // A third whose receiver answers 500 to all: after five, it is marked failing.
    let bad_receiver = Receiver::start(Reply::Status(500, "no"));
    let bad = s.endpoint(&s.key, &bad_receiver.url("/bad"), &["*"]);
    let bad_id = bad["id"].as_str().unwrap().to_owned();
    s.batch(5);
    crate::support::wait_for(30, "five failures at the failing endpoint", || {
        let (_, page) = s
            .api
            .get("/api/v1/deliveries?status=failed&limit=250", &s.key);
        let n = page["data"]
            .as_array()?
            .iter()
            .filter(|d| d["endpoint_id"] == bad_id.as_str())
            .count();
        (n == 5).then_some(())
    });
    let driver = Driver::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let customer_pages = [
        "/webhooks".to_owned(),
        format!("/webhooks/{ep_id}"),
        format!("/webhooks/{ep_id}/delete"),
        format!("/webhooks/{down_id}"),
        format!("/webhooks/{bad_id}"),
        "/events".to_owned(),
        format!("/events/{evt_id}"),
        format!("/deliveries/{dlv}"),
        format!("/deliveries/{dlv}?to=not-a-url"),
        "/no-such-page".to_owned(),
    ];
    let operator_pages = [
        "/admin".to_owned(),
        "/admin/dashboard".to_owned(),
        format!("/admin/customers/{cid}"),
        format!("/admin/events/{evt_id}"),
        format!("/admin/customers/{cid}/deliveries/{dlv}"),
        format!("/admin/customers/{cid}/delete"),
    ];
    let found = rt.block_on(async {
        let c = driver.browser().await;
        let p = Page {
            c: &c,
            base: s.api.base.clone(),
            shots: None,
        };
        let mut found: Vec<String> = Vec::new();
        let mut checked = 0;
        let check = async |path: &str, found: &mut Vec<String>| {
            // An empty path checks the page a form just answered with (not reloaded).
            for width in [1280u32, 390] {
                c.set_window_size(width, 1000).await.unwrap();
                if !path.is_empty() {
                    p.go(path).await;
                }
                let got = c
                    .execute_async(
                        &format!(
                            "const done = arguments[arguments.length - 1];
                             {axe}
                             axe.run(document, {{resultTypes: ['violations']}})
                               .then(r => done(r.violations
                                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                                 .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' — ' +
                                      v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))
                               .catch(e => done(['axe failed: ' + e]));"
                        ),
                        vec![],
                    )
                    .await
                    .unwrap();
                for v in got.as_array().unwrap() {
                    found.push(format!("{path} at {width} px: {}", v.as_str().unwrap()));
                }
            }
        };
        // Signed out: the two sign-in pages.
        for path in ["/", "/admin"] {
            check(path, &mut found).await;
            checked += 2;
        }
        c.set_window_size(1280, 1000).await.unwrap();
        p.go("/").await;
        p.fill("input[name=api_key]", &s.key).await;
        p.submit("form button[type=submit]").await;
        // Health at a glance: the list's badges, and the failing endpoint's banner.
        p.go("/webhooks").await;
        let badges = c.find_all(Locator::Css(".pill")).await.unwrap();
        let mut seen = Vec::new();
        for b in badges {
            seen.push(b.text().await.unwrap());
        }
        assert!(
            seen.iter().any(|t| t == "failing") && seen.iter().any(|t| t == "paused"),
            "{seen:?}"
        );
        p.go(&format!("/webhooks/{bad_id}")).await;
        let banner = p.wait_for_text("#failing", "Failing").await;
        assert!(!banner.is_empty());
        p.go(&format!("/webhooks/{down_id}")).await;
        assert!(p.text().await.contains("paused"));
        for path in &customer_pages {
            check(path, &mut found).await;
            checked += 2;
        }
        c.delete_all_cookies().await.unwrap();
        c.set_window_size(1280, 1000).await.unwrap();
        p.go("/admin").await;
        p.fill("input[name=token]", &s.admin).await;
        p.submit("form button[type=submit]").await;
        for path in &operator_pages {
            check(path, &mut found).await;
            checked += 2;
        }
        // The pages that show a one-time secret: a new customer's key, a sign-in link.
        c.set_window_size(1280, 1000).await.unwrap();
        p.go("/admin").await;
        p.fill(
            "form[action='/admin/customers'] input[name=name]",
            "Axe Ltd",
        )
        .await;
        p.submit("form[action='/admin/customers'] button[type=submit]")
            .await;
        assert!(p.text().await.contains("Axe Ltd"));
        check("", &mut found).await;
        p.go(&format!("/admin/customers/{cid}")).await;
        p.submit("form[action$='/portal-link'] button[type=submit]")
            .await;
        check("", &mut found).await;
        checked += 4;
        c.close().await.unwrap();
        eprintln!("axe: {checked} page states checked");
        found
    });
    assert!(found.is_empty(), "axe-core found:\n{}", found.join("\n"));
}
