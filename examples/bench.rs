//! The benchmark: starts the real `webhooks` binary on a temporary data file, a fast local
//! receiver, and measures ingest, end-to-end delivery, fan-out, a large backlog, the store's
//! own ceiling and reopening after kill -9 — each against a baseline measured in the same run.
//!
//! ```sh
//! cargo run --release --example bench            # the full run (several minutes)
//! cargo run --release --example bench -- --quick # small counts: checks that it all runs
//! ```
//! Loopback only; every loop is bounded in count and time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use webhooks::delivery::{SenderConfig, WebhookSender};

/// Counts of one run.
struct Sizes {
    baseline: Duration,
    ingest: usize,
    batch: usize,
    e2e: usize,
    latency_for: Duration,
    fanout: usize,
    backlog: usize,
    during_backlog: usize,
}

const FULL: Sizes = Sizes {
    baseline: Duration::from_secs(5),
    ingest: 40_000,
    batch: 200_000,
    e2e: 100_000,
    latency_for: Duration::from_secs(5),
    fanout: 1000,
    backlog: 1_000_000,
    during_backlog: 20_000,
};

const QUICK: Sizes = Sizes {
    baseline: Duration::from_millis(500),
    ingest: 2_000,
    batch: 5_000,
    e2e: 2_000,
    latency_for: Duration::from_millis(500),
    fanout: 50,
    backlog: 5_000,
    during_backlog: 1_000,
};

/// Server delivery workers (the default) and so the baseline's client threads.
const WORKERS: usize = 16;
const BODY: &str = r#"{"event":"transactions.fetched","data":{"userId":"usr_7f3a9c","externalUserId":"customer-42","consentId":"cns_51d0e2","addedTransactionsCount":"17"}}"#;
const DATA: &str = r#"{"userId":"usr_7f3a9c","externalUserId":"customer-42","consentId":"cns_51d0e2","addedTransactionsCount":"17"}"#;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick { QUICK } else { FULL };
    server_binary(); // built (or found up to date) before anything is timed
    let mut report = Report::default();
    let receiver = Receiver::start();
    println!(
        "webhooks benchmark ({}), {} cores",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. The sender's own ceiling: the same client code, threads and body, no server.
    let base_rate = baseline(&receiver, sizes.baseline);
    report.row(
        "1 baseline: sender → receiver, no server",
        format!("{base_rate:.0} req/s"),
        String::new(),
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("bench.redb");
    let mut server = Server::start(&data);
    let idle_rss = server.rss_kb();
    let admin = server.admin.clone();
    let api = Api::new(&server.base, &admin);

    // 2. Ingest: single events from 32 clients, then batches; one (hanging) endpoint each.
    let (hang_customer, _) = api.customer_with_endpoint("ingest", &receiver.url("/hang/ingest"));
    let (single_rate, p50, p99) = ingest_single(&api, &hang_customer, sizes.ingest, 32);
    report.row(
        "2 ingest, single events, 32 clients",
        format!("{single_rate:.0} events/s"),
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)),
    );
    let batch_rate = ingest_batches(&api, std::slice::from_ref(&hang_customer), sizes.batch, 4);
    report.row(
        "2 ingest, batches of 1000, 4 clients",
        format!("{batch_rate:.0} events/s"),
        String::new(),
    );

    // 3. End to end: deliveries received per second over many events (spread over 8 customers
    // with one endpoint each: one endpoint alone may use only a quarter of the workers), then
    // latency at half that load.
    let e2e_customers: Vec<String> = (0..8)
        .map(|i| {
            api.customer_with_endpoint(
                &format!("e2e-{i}"),
                &receiver.url(&format!("/fast/e2e/{i}")),
            )
            .0
        })
        .collect();
    let e2e_rate = end_to_end(&api, &receiver, &e2e_customers, sizes.e2e);
    report.row(
        "3 end to end, deliveries received",
        format!("{e2e_rate:.0} /s"),
        format!("{:.0}% of baseline (1)", 100.0 * e2e_rate / base_rate),
    );
    let (lp50, lp99, paced) = latency_at(
        &api,
        &receiver,
        &e2e_customers,
        e2e_rate / 2.0,
        sizes.latency_for,
    );
    report.row(
        "3 accepted → received, at half that rate",
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(lp50), ms(lp99)),
        format!("{paced:.0} events/s offered"),
    );

    // 4. Fan-out: one event to many endpoints of one customer.
    let fan_customer = api.customer("fanout");
    let fan_key = fan_customer.1.clone();
    for i in 0..sizes.fanout {
        api.endpoint(&fan_key, &receiver.url(&format!("/fast/fan/{i}")));
    }
    let fan_time = fan_out(&api, &receiver, &fan_customer.0, sizes.fanout);
    report.row(
        &format!(
            "4 fan-out to {} endpoints, last received after",
            sizes.fanout
        ),
        format!("{:.0} ms", ms(fan_time)),
        String::new(),
    );

    // 5. Backlog: a hanging receiver with many pending deliveries; a healthy one meanwhile,
    // compared with the same healthy endpoint before the backlog.
    let (healthy_customer, _) =
        api.customer_with_endpoint("healthy", &receiver.url("/fast/healthy"));
    let alone = end_to_end(
        &api,
        &receiver,
        std::slice::from_ref(&healthy_customer),
        sizes.during_backlog,
    );
    let (backlog_customer, _) =
        api.customer_with_endpoint("backlog", &receiver.url("/hang/backlog"));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = server.rss_sampler(peak.clone());
    let backlog_rate = ingest_batches(
        &api,
        std::slice::from_ref(&backlog_customer),
        sizes.backlog,
        4,
    );
    let pending = api.metric("webhooks_queue_depth");
    let during = end_to_end(
        &api,
        &receiver,
        std::slice::from_ref(&healthy_customer),
        sizes.during_backlog,
    );
    sampler.stop();
    report.row(
        "5 idle server RSS",
        format!("{:.1} MB", idle_rss as f64 / 1024.0),
        String::new(),
    );
    report.row(
        &format!("5 peak RSS with {pending} deliveries pending"),
        format!("{:.1} MB", peak.load(Ordering::Relaxed) as f64 / 1024.0),
        format!("backlog ingested at {backlog_rate:.0} events/s"),
    );
    report.row(
        "5 one healthy endpoint during the backlog",
        format!("{during:.0} deliveries/s"),
        format!(
            "{:.0}% of the same endpoint without it",
            100.0 * during / alone
        ),
    );

    // 7. Reopening the now large file: after a clean stop, and after kill -9.
    let size_mb = std::fs::metadata(&data).map_or(0, |m| m.len()) / (1024 * 1024);
    server.stop();
    let clean = Server::time_to_healthy(&data, &mut server);
    server.kill9();
    let killed = Server::time_to_healthy(&data, &mut server);
    server.stop();

    // 6. The store's ceiling: redb alone, rows committed 1000 per transaction.
    let ceiling = store_ceiling(dir.path(), if quick { 50_000 } else { 500_000 });
    let rows_per_event = 7.0; // event, its customer index, delivery and its 4 indexes
    report.row(
        "6 store ceiling, 1000 rows per commit",
        format!("{ceiling:.0} rows/s"),
        String::new(),
    );
    report.row(
        "6 batch ingest vs ceiling / rows per event",
        format!("{:.0}%", 100.0 * batch_rate * rows_per_event / ceiling),
        format!("{rows_per_event} rows per event at one endpoint"),
    );
    report.row(
        &format!("7 reopen a {size_mb} MB data file, after a clean stop"),
        format!("{:.0} ms", ms(clean)),
        String::new(),
    );
    report.row(
        "7 reopen it after kill -9 (repair)",
        format!("{:.0} ms", ms(killed)),
        format!(
            "{:.1}× the clean reopen",
            killed.as_secs_f64() / clean.as_secs_f64().max(1e-9)
        ),
    );
    report.print();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String)>,
}

impl Report {
    fn row(&mut self, what: &str, figure: String, note: String) {
        println!("  {what}: {figure} {note}");
        self.rows.push((what.to_owned(), figure, note));
    }

    fn print(&self) {
        println!("\n| measure | figure | relative / note |\n|---|---|---|");
        for (w, f, n) in &self.rows {
            println!("| {w} | {f} | {n} |");
        }
    }
}

/// A fast local receiver: `/fast/…` answers 204 at once, `/hang/…` never answers. It records
/// when each webhook-id first arrived and how often.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
    total: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<HashMap<String, (u32, Instant)>>> = Arc::default();
        let total = Arc::new(AtomicU64::new(0));
        let (s, t) = (seen.clone(), total.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new((s.clone(), t.clone())))
                        .default_service(web::to(receive))
                })
                .workers(2)
                .backlog(4096)
                .max_connections(100_000)
                .listen(listener)
                .unwrap()
                .run()
                .await
            })
        });
        Self { port, seen, total }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn count(&self, id: &str) -> u32 {
        self.seen.lock().unwrap().get(id).map_or(0, |(n, _)| *n)
    }

    fn first_seen(&self, id: &str) -> Option<Instant> {
        self.seen.lock().unwrap().get(id).map(|(_, t)| *t)
    }
}

type Seen = (Arc<Mutex<HashMap<String, (u32, Instant)>>>, Arc<AtomicU64>);

async fn receive(req: HttpRequest, _body: web::Bytes, st: web::Data<Seen>) -> HttpResponse {
    if req.path().starts_with("/hang") {
        futures_util::future::pending::<()>().await;
    }
    let now = Instant::now();
    st.1.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
    {
        let mut seen = st.0.lock().unwrap();
        let e = seen.entry(id.to_owned()).or_insert((0, now));
        e.0 += 1;
    }
    HttpResponse::NoContent().finish()
}

fn baseline(receiver: &Receiver, for_: Duration) -> f64 {
    let sender = Arc::new(WebhookSender::new(&SenderConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        block_private_networks: false,
        roots: None,
    }));
    let url = receiver.url("/fast/baseline");
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            let (sender, url, done) = (sender.clone(), url.clone(), &done);
            s.spawn(move || {
                let headers = [
                    ("content-type", "application/json"),
                    ("webhook-id", "evt_baseline"),
                ];
                while start.elapsed() < for_ {
                    let r = sender.post(&url, &headers, BODY.as_bytes());
                    assert_eq!(r.status, Some(204), "{:?}", r.detail);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The server under test, as a child process.
struct Server {
    child: Option<Child>,
    base: String,
    admin: String,
}

fn server_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(build_server).clone()
}

fn build_server() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let release = profile_dir.ends_with("release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // With the example in the same build, features resolve as for `cargo run --example bench`:
    // nothing is rebuilt.
    build.args([
        "build",
        "--quiet",
        "--bin",
        "webhooks",
        "--example",
        "bench",
    ]);
    if release {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "cannot build the server");
    profile_dir.join("webhooks")
}

impl Server {
    fn start(data: &Path) -> Self {
        Self::spawn(data, None).0
    }

    fn spawn(data: &Path, admin: Option<&str>) -> (Self, Instant) {
        let started = Instant::now();
        let mut child = Command::new(server_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .trim_start_matches("portal: http://")
            .trim_end_matches('/')
            .to_owned();
        let admin = match admin {
            Some(a) => a.to_owned(),
            None => {
                let mut l = String::new();
                out.read_line(&mut l).unwrap();
                l.trim().trim_start_matches("admin token: ").to_owned()
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        let s = Self {
            child: Some(child),
            base: format!("http://{addr}"),
            admin,
        };
        (s, started)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn rss_kb(&self) -> u64 {
        status_kb(self.pid(), "VmRSS:")
    }

    /// Samples the peak resident memory (VmHWM) every 100 ms until stopped.
    fn rss_sampler(&self, peak: Arc<AtomicU64>) -> Sampler {
        let pid = self.pid();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                peak.fetch_max(status_kb(pid, "VmHWM:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler {
            stop,
            thread: Some(t),
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts on the same file; how long until /healthz answers.
    fn time_to_healthy(data: &Path, old: &mut Server) -> Duration {
        let (s, started) = Server::spawn(data, Some(&old.admin));
        let api = Api::new(&s.base, &s.admin);
        let deadline = Instant::now() + Duration::from_secs(600);
        while api.get("/healthz").is_none() {
            assert!(Instant::now() < deadline, "the server did not come back");
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = started.elapsed();
        *old = s;
        took
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A small admin client.
#[derive(Clone)]
struct Api {
    base: String,
    admin: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(base: &str, admin: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(64)
            .build()
            .new_agent();
        Self {
            base: base.to_owned(),
            admin: admin.to_owned(),
            agent,
        }
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut r = self.agent.get(format!("{}{path}", self.base)).call().ok()?;
        r.body_mut().read_to_string().ok()
    }

    fn post(&self, path: &str, token: &str, body: &str) -> Value {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .send(body)
            .expect("the server answers");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        assert!((200..300).contains(&status), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// (customer id, api key)
    fn customer(&self, name: &str) -> (String, String) {
        let c = self.post(
            "/api/v1/customers",
            &self.admin,
            &json!({ "name": name }).to_string(),
        );
        (
            c["id"].as_str().unwrap().to_owned(),
            c["api_key"].as_str().unwrap().to_owned(),
        )
    }

    fn endpoint(&self, key: &str, url: &str) {
        self.post(
            "/api/v1/endpoints",
            key,
            &json!({ "url": url, "events": ["*"] }).to_string(),
        );
    }

    fn customer_with_endpoint(&self, name: &str, url: &str) -> (String, String) {
        let c = self.customer(name);
        self.endpoint(&c.1, url);
        c
    }

    fn event(&self, customer: &str) -> Value {
        let body = format!(
            r#"{{"customer_id":"{customer}","event":"transactions.fetched","data":{DATA}}}"#
        );
        self.post("/api/v1/events", &self.admin, &body)
    }

    /// A batch of `n` events spread round-robin over `customers`.
    fn batch(&self, customers: &[String], n: usize) -> Value {
        let events: Vec<String> = (0..n)
            .map(|i| {
                let c = &customers[i % customers.len()];
                format!(r#"{{"customer_id":"{c}","event":"transactions.fetched","data":{DATA}}}"#)
            })
            .collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        self.post("/api/v1/events/batch", &self.admin, &body)
    }

    fn metric(&self, name: &str) -> u64 {
        let text = self.get("/metrics").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or(0)
    }
}

fn ingest_single(api: &Api, customer: &str, n: usize, clients: usize) -> (f64, Duration, Duration) {
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let api = api.clone();
                s.spawn(move || {
                    (0..n / clients)
                        .map(|_| {
                            let t = Instant::now();
                            api.event(customer);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let rate = latencies.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    (
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

/// Events sent when `n` are asked for in batches of up to 1000.
fn batched(n: usize) -> usize {
    let per_batch = 1000.min(n);
    n / per_batch * per_batch
}

fn ingest_batches(api: &Api, customers: &[String], n: usize, clients: usize) -> f64 {
    let per_batch = 1000.min(n);
    let batches = n / per_batch;
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            let (api, next) = (api.clone(), &next);
            s.spawn(move || {
                while (next.fetch_add(1, Ordering::Relaxed) as usize) < batches {
                    api.batch(customers, per_batch);
                }
            });
        }
    });
    (batches * per_batch) as f64 / start.elapsed().as_secs_f64()
}

/// Posts `n` events (in batches) and waits until the receiver has them all; deliveries/s from
/// the first post to the last receipt.
fn end_to_end(api: &Api, receiver: &Receiver, customers: &[String], n: usize) -> f64 {
    let before = receiver.total.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| ingest_batches(api, customers, n, 2));
        let deadline = start + Duration::from_secs(900);
        while receiver.total.load(Ordering::Relaxed) - before < batched(n) as u64 {
            assert!(Instant::now() < deadline, "deliveries stalled");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (receiver.total.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64()
}

/// Single events offered at `rate` per second for `for_`: accepted (202) → received.
fn latency_at(
    api: &Api,
    receiver: &Receiver,
    customers: &[String],
    rate: f64,
    for_: Duration,
) -> (Duration, Duration, f64) {
    let gap = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let accepted: Mutex<Vec<(String, Instant)>> = Mutex::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        // Several producers share the pace, so one slow answer does not stall the schedule.
        let producers = 8;
        for p in 0..producers {
            let (api, accepted) = (api.clone(), &accepted);
            s.spawn(move || {
                let mut k = p as u32;
                loop {
                    let due = start + gap * k;
                    if due.duration_since(start) >= for_ {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let e = api.event(&customers[k as usize % customers.len()]);
                    accepted
                        .lock()
                        .unwrap()
                        .push((e["id"].as_str().unwrap().to_owned(), Instant::now()));
                    k += producers as u32;
                }
            });
        }
    });
    let accepted = accepted.into_inner().unwrap();
    let offered = accepted.len() as f64 / start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted.iter().any(|(id, _)| receiver.count(id) == 0) {
        assert!(Instant::now() < deadline, "latency events never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lat: Vec<Duration> = accepted
        .iter()
        .map(|(id, at)| {
            receiver
                .first_seen(id)
                .unwrap()
                .saturating_duration_since(*at)
        })
        .collect();
    lat.sort();
    (percentile(&lat, 0.5), percentile(&lat, 0.99), offered)
}

fn fan_out(api: &Api, receiver: &Receiver, customer: &str, endpoints: usize) -> Duration {
    let start = Instant::now();
    let e = api.event(customer);
    let id = e["id"].as_str().unwrap();
    assert_eq!(e["deliveries"].as_u64(), Some(endpoints as u64));
    let deadline = start + Duration::from_secs(120);
    while (receiver.count(id) as usize) < endpoints {
        assert!(Instant::now() < deadline, "fan-out stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// redb alone: rows shaped like a delivery record, 1000 per commit, default durability.
fn store_ceiling(dir: &Path, rows: usize) -> f64 {
    const T: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("rows");
    let db = redb::Database::builder()
        .set_cache_size(64 * 1024 * 1024)
        .create(dir.join("ceiling.redb"))
        .unwrap();
    let value = vec![b'x'; 420];
    let start = Instant::now();
    for chunk in 0..rows / 1000 {
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(T).unwrap();
            for i in 0..1000 {
                t.insert(format!("dlv_{chunk:08}{i:06}").as_str(), value.as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}
