//! Shared fixtures: the real server on port 0 with a temp data file, a JSON client, local
//! receivers that report what they got, and a wait-for-condition helper.

pub mod browser;
pub mod pki;
pub mod process;
pub mod receiver;
pub mod small;
pub mod visitor;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webhooks::config::{LogFormat, ServeArgs};
use webhooks::serve::Server;

pub use process::{BIN, Proc, Running, ingest_until, json_lines, run, webhooks};
pub use receiver::{Receiver, Reply};
pub use visitor::{Visitor, csrf_of, page_of};

/// Lines of a child's output, read on a thread.
pub type Lines = crossbeam_channel::Receiver<String>;

pub fn lines_of(out: impl std::io::Read + Send + 'static) -> Lines {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The next line that contains `needle`, skipping others; fails the test after `secs`.
pub fn next_line_with(lines: &Lines, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no line with {needle:?}; saw {seen:#?}"),
        }
    }
}

/// Posts the portal's sign-in form at `base` with this API key (fetching the form first for
/// its double-submit token, as a browser would); (status, the session cookie if one was set).
pub fn portal_sign_in(base: &str, api_key: &str) -> (u16, Option<String>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let mut page = agent.get(format!("{base}/")).call().unwrap();
    let cookie = page.headers().get("set-cookie").unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = page.body_mut().read_to_string().unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap();
    let csrf = csrf.split('"').next().unwrap();
    let resp = agent
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .content_type("application/x-www-form-urlencoded")
        .send(format!("api_key={api_key}&csrf={csrf}"))
        .unwrap();
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("wh_session=") && !c.ends_with('='));
    (resp.status().as_u16(), session)
}

/// A URL on 127.0.0.1 where nothing listens (a receiver that is down): connections refused.
pub fn dead_url() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/", dead.local_addr().unwrap())
}

/// Waits until `f` gives `Some`, failing the test after `secs` (a bound that catches a hang).
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The PostgreSQL cluster the suite runs against instead of data files, if any
/// (`WEBHOOKS_TEST_DATABASE`, set by scripts/test for its second pass).
pub fn pg_base() -> Option<String> {
    std::env::var("WEBHOOKS_TEST_DATABASE")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn on_postgres() -> bool {
    pg_base().is_some()
}

/// Says, past the test harness's capture (straight to standard error), that a test did not
/// run here and why: a skipped test must never look like a passed one.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// On PostgreSQL, the database that stands for the data file `data`: one per path (so a
/// restart on the same path finds the same data), created on first use.
pub fn database_for(data: &std::path::Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let base = pg_base()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let name = format!("wh_{:016x}", h.finish());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .expect("the test cluster (WEBHOOKS_TEST_DATABASE) answers");
    if let Err(e) = admin.batch_execute(&format!("CREATE DATABASE {name}")) {
        // Two creating it at once: the loser may see the catalog's unique index instead.
        let exists = e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE)
            || e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION);
        assert!(exists, "cannot create the test database: {e}");
    }
    let (root, _) = base.rsplit_once('/').expect("a URL with a database");
    Some(format!("{root}/{name}"))
}

pub fn serve_args(data: PathBuf) -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: database_for(&data),
        lease_secs: None,
        data,
        workers: 8,
        admin_token: None,
        block_private_networks: false,
        retention_days: 30,
        connect_timeout_secs: 2,
        request_timeout_secs: 3,
        log_format: LogFormat::Text,
        tls_cert: None,
        tls_key: None,
        ca_file: None,
        trusted_proxies: Vec::new(),
        max_connections_per_ip: 256,
        read_timeout_secs: 30,
        max_auth_failures_per_min: 20,
        node_id: None,
        public_url: None,
        max_endpoints_per_customer: 100,
        max_sends_per_customer_per_min: 120,
        max_hold_hours: 24,
    }
}

/// Starts a server again on a data file a stopped in-process server used. The stopped one's
/// HTTP worker threads may let go of the file a moment after `stop` returns (a new process
/// has no such wait), so an "in use" answer is retried for a while.
pub fn restart_on(data: PathBuf) -> Server {
    wait_for(10, "the data file to be free", || {
        match Server::start(&serve_args(data.clone())) {
            Ok(s) => Some(s),
            Err(webhooks::serve::StartError::Open(webhooks::store::OpenError::InUse(_))) => None,
            Err(e) => panic!("the server does not start again: {e}"),
        }
    })
}

impl TestServer {
    /// Stops the server and starts it again on the same data with changed settings.
    pub fn restart_with(&mut self, tweak: impl Fn(&mut ServeArgs)) {
        self.stop();
        let data = self.data.clone();
        let server = wait_for(10, "the data file to be free", || {
            let mut args = serve_args(data.clone());
            tweak(&mut args);
            match Server::start(&args) {
                Ok(s) => Some(s),
                Err(webhooks::serve::StartError::Open(webhooks::store::OpenError::InUse(_))) => {
                    None
                }
                Err(e) => panic!("the server does not start again: {e}"),
            }
        });
        self.api = Api::new(&format!("http://{}", server.addr));
        self.server = Some(server);
    }
}

/// Opens a data file with redb itself, once a stopped in-process server has let go of it.
pub fn open_raw(data: &std::path::Path) -> redb::Database {
    wait_for(
        10,
        "the data file to be free",
        || match redb::Database::create(data) {
            Ok(db) => Some(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => None,
            Err(e) => panic!("cannot open {}: {e}", data.display()),
        },
    )
}

/// An in-process server; shut down in order when dropped.
pub struct TestServer {
    pub api: Api,
    pub admin: String,
    /// The API key of the customer `default`.
    pub key: String,
    /// The data file (on PostgreSQL, the path its database is named after).
    pub data: PathBuf,
    _dir: tempfile::TempDir,
    server: Option<Server>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("webhooks.redb");
        let mut args = serve_args(data.clone());
        tweak(&mut args);
        let server = Server::start(&args).expect("the server starts");
        let first = server.first_start.as_ref().expect("a fresh data file");
        Self {
            api: Api::new(&format!("http://{}", server.addr)),
            admin: first.admin_token.clone(),
            key: first.api_key.clone(),
            data,
            _dir: dir,
            server: Some(server),
        }
    }

    /// `n` events `transactions.fetched` for the customer `default`, in one batch.
    pub fn batch(&self, n: usize) {
        let cus = self.default_customer();
        let events: Vec<Value> = (0..n)
            .map(|i| json!({"customer_id": cus, "event": "transactions.fetched", "data": {"n": i}}))
            .collect();
        let (st, b) = self.api.post(
            "/api/v1/events/batch",
            &self.admin,
            &json!({ "events": events }),
        );
        assert_eq!(st, 202, "{b}");
    }

    /// The running server, for its store's test switches (faults, clock) and retention.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server runs")
    }

    pub fn default_customer(&self) -> String {
        self.customer_id("default")
    }

    pub fn customer_id(&self, name: &str) -> String {
        let (_, body) = self.api.get("/api/v1/customers", &self.admin);
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a customer; returns (id, api key).
    pub fn customer(&self, name: &str) -> (String, String) {
        let (status, body) =
            self.api
                .post("/api/v1/customers", &self.admin, &json!({ "name": name }));
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an endpoint for the key's customer; returns the endpoint object.
    pub fn endpoint(&self, key: &str, url: &str, events: &[&str]) -> Value {
        let (status, body) = self.api.post(
            "/api/v1/endpoints",
            key,
            &json!({ "url": url, "events": events }),
        );
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Posts an event as the operator; returns the 202 body.
    pub fn event(&self, customer: &str, event: &str, data: &str) -> Value {
        let body = format!(r#"{{"customer_id":"{customer}","event":"{event}","data":{data}}}"#);
        let (status, body) = self
            .api
            .send("POST", "/api/v1/events", &self.admin, Some(&body), &[]);
        assert_eq!(status, 202, "{body}");
        body
    }

    /// Waits until the delivery is finished (succeeded, failed or interrupted).
    pub fn finished_delivery(&self, key: &str, id: &str) -> Value {
        wait_for(20, "the delivery to finish", || {
            let (_, d) = self.api.get(&format!("/api/v1/deliveries/{id}"), key);
            matches!(
                d["status"].as_str(),
                Some("succeeded" | "failed" | "interrupted")
            )
            .then_some(d)
        })
    }

    /// The deliveries of an event, waiting until `n` exist and all are finished.
    pub fn finished_deliveries_of(&self, key: &str, event_id: &str, n: usize) -> Vec<Value> {
        wait_for(20, "the event's deliveries to finish", || {
            let (_, e) = self.api.get(&format!("/api/v1/events/{event_id}"), key);
            let ds = e["deliveries"].as_array()?.clone();
            let done = ds.len() == n
                && ds.iter().all(|d| {
                    matches!(
                        d["status"].as_str(),
                        Some("succeeded" | "failed" | "interrupted")
                    )
                });
            done.then_some(ds)
        })
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }

    /// Stops the server and starts it again on the same data (a new port).
    pub fn restart(&mut self) {
        self.stop();
        let server = restart_on(self.data.clone());
        self.api = Api::new(&format!("http://{}", server.addr));
        self.server = Some(server);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A small JSON client that never treats a status as an error.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            base: base.to_owned(),
            agent,
        }
    }

    /// Any request; `body` is sent as JSON text. Returns the status and the parsed answer
    /// (`Value::Null` for an empty or non-JSON one).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, text) = self.send_raw(method, path, token, body.map(str::as_bytes), headers);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let url = format!("{}{}", self.base, path);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_ct {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(b) => self.agent.run(req.body(b.to_vec()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = result.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    }

    /// A gauge or counter without labels from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let (_, m) = self.send_raw("GET", "/metrics", "", None, &[]);
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Deliveries this server (node) finished, all outcomes together.
    pub fn sent(&self) -> u64 {
        let (_, m) = self.send_raw("GET", "/metrics", "", None, &[]);
        m.lines()
            .filter(|l| l.starts_with("webhooks_deliveries_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until no delivery is pending or claimed (anywhere in a cluster).
    pub fn settled(&self, secs: u64) {
        wait_for(secs, "every delivery to settle", || {
            let quiet = self.metric("webhooks_queue_depth") == Some(0)
                && self.metric("webhooks_deliveries_claimed") == Some(0);
            quiet.then_some(())
        });
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send("GET", path, token, None, &[])
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, token, Some(&body.to_string()), &[])
    }

    pub fn patch(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.send("PATCH", path, token, Some(&body.to_string()), &[])
    }

    pub fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.send("DELETE", path, token, None, &[])
    }
}
