//! axe-core (an accessibility engine no one here wrote, from npm) on every portal and console
//! page, in their states that matter (paused, failing, a one-time secret shown), at 1280 and
//! 390 px: no serious or critical violation.

use fantoccini::Locator;

use crate::support::browser::{Driver, Page};
use crate::support::{Receiver, Reply, TestServer};

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
            "accessibility::axe_finds_no_serious_accessibility_problem_on_any_page_at_two_widths",
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
            shots: crate::support::browser::screenshots_dir(),
        };
        let mut found: Vec<String> = Vec::new();
        let mut checked = 0;
        // With SCREENSHOTS=dir, a picture of every page state at both widths, numbered.
        let shot_no = std::cell::Cell::new(0);
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
                let at: String = p
                    .path()
                    .await
                    .chars()
                    .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
                    .collect();
                let n = shot_no.get();
                shot_no.set(n + 1);
                p.shot(&format!("page-{:02}-{width}{at}", n / 2)).await;
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
