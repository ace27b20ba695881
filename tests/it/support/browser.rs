//! The browser the portal tests drive: chromedriver started on a free port with headless
//! Chromium (`Driver`), and a page's helpers (`Page`: go, fill, submit, read, measure, shoot).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

/// A page under test, with the helpers a person's eyes and hands would use.
pub struct Page<'a> {
    pub c: &'a Client,
    pub base: String,
    pub shots: Option<std::path::PathBuf>,
}

pub fn screenshots_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("SCREENSHOTS")?);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

impl Driver {
    pub fn start() -> Self {
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

    pub async fn browser(&self) -> Client {
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

impl Page<'_> {
    pub async fn go(&self, path: &str) {
        self.c
            .goto(&format!("{}{}", self.base, path))
            .await
            .unwrap();
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Clicks something that loads a new page, and waits until the new page is there.
    pub async fn submit(&self, css: &str) {
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

    pub async fn text(&self) -> String {
        self.c
            .wait()
            .for_element(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    /// Reloads until the element `css` shows `needle` (deliveries finish in the background);
    /// returns the whole page's text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
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
    pub async fn fits(&self) {
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
    pub async fn chart_text_readable(&self) -> usize {
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
    pub async fn bars(&self, css: &str) -> Vec<(u64, u64, u64, u64)> {
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
    pub async fn log_statuses(&self) -> Vec<String> {
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

    pub async fn shot(&self, name: &str) {
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
