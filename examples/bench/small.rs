//! Phase 10: receivers as people really run them, where a sender that floods loses webhooks
//! for good: small receivers that block (a listen backlog of 5; 8 threads, and one, each
//! working 20 ms), Python's `http.server` receivers when `python3` is here, and a slow path
//! beside a fast one on one host. Each reports failures and time against its capacity bound.
//! Phase 11: receivers that restart: a steady stream while the receiver's port is closed
//! for 3 s; what the outage cost (failed) and whether everything else arrived, once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::measure::{batched, end_to_end, ingest_batches};
use crate::small_receiver::SmallReceiver;

/// Each request's work in the blocking receivers.
const WORK: Duration = Duration::from_millis(20);

/// Deliveries finished by outcome so far, from `/metrics`: (succeeded, failed).
fn outcomes(b: &Bench) -> (u64, u64) {
    let text = b.api.get("/metrics").unwrap_or_default();
    let mut out = (0, 0);
    for l in text
        .lines()
        .filter(|l| l.starts_with("webhooks_deliveries_total{"))
    {
        let n: u64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if l.contains("outcome=\"succeeded\"") {
            out.0 += n;
        } else if l.contains("outcome=\"failed\"") {
            out.1 += n;
        }
    }
    out
}

/// Waits (bounded) until no POST is under way and nothing is queued, so that the counts of a
/// phase are its own.
fn quiesce(b: &Bench) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && (b.api.metric("webhooks_deliveries_in_flight") > 0
            || b.api.metric("webhooks_queue_depth") > 0
            || b.api.metric("webhooks_deliveries_claimed") > 0)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A burst of `n` events to one new endpoint at `url`; waits until each delivery finished
/// (bounded); returns (time, succeeded, failed).
fn burst(
    b: &Bench,
    name: &str,
    url: &str,
    n: usize,
    bound: Duration,
) -> (Duration, u64, u64, String) {
    let (customer, key) = b.api.customer_with_endpoint(name, url);
    quiesce(b);
    let (ok0, failed0) = outcomes(b);
    let start = Instant::now();
    ingest_batches(&b.api, std::slice::from_ref(&customer), n, 1);
    let n = batched(n) as u64;
    let deadline = start + bound * 4 + Duration::from_secs(60);
    let (mut ok, mut failed) = (0, 0);
    while ok + failed < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let (o, f) = outcomes(b);
        (ok, failed) = (o - ok0, f - failed0);
    }
    let took = start.elapsed();
    let why = b.api.failures_by_error(&key);
    b.api.delete_endpoints(&key);
    (took, ok, failed, why)
}

fn row(
    b: &mut Bench,
    label: &str,
    n: usize,
    per_sec: f64,
    (took, ok, failed, why): (Duration, u64, u64, String),
) {
    let bound = n as f64 / per_sec;
    b.report.row(
        &format!("10 {label}, burst of {n}"),
        format!("{failed} failed"),
        format!(
            "{ok} succeeded in {:.1} s: {:.2}× its capacity bound ({bound:.1} s at {per_sec:.0}/s){}",
            took.as_secs_f64(),
            took.as_secs_f64() / bound,
            if why.is_empty() { String::new() } else { format!("; failed: {why}") }
        ),
    );
}

/// A Python `http.server` receiver (`threading`: one thread per connection) with its
/// default listen backlog of 5, working 20 ms per request; `None` without `python3`.
fn python(threading: bool) -> Option<(Child, u16)> {
    let script = format!(
        r#"
import http.server, socketserver, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('content-length', 0)))
        time.sleep({work})
        self.send_response(200); self.send_header('content-length', '0'); self.end_headers()
    def log_message(self, *a): pass
cls = http.server.ThreadingHTTPServer if {threading} else http.server.HTTPServer
s = cls(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#,
        work = WORK.as_secs_f64(),
        threading = if threading { "True" } else { "False" },
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take()?),
        &mut line,
    )
    .ok()?;
    Some((child, line.trim().parse().ok()?))
}

pub fn small_receivers(b: &mut Bench) {
    let n = if b.quick { 200 } else { 2000 };
    for threads in [8usize, 1] {
        let n = if threads == 1 { n / 4 } else { n };
        let r = SmallReceiver::start(threads, WORK);
        let per_sec = threads as f64 / WORK.as_secs_f64();
        let got = burst(
            b,
            &format!("small-{threads}"),
            &r.url("/"),
            n,
            Duration::from_secs_f64(n as f64 / per_sec),
        );
        row(
            b,
            &format!("blocking receiver, backlog 5, {threads} thread(s) × 20 ms"),
            n,
            per_sec,
            got,
        );
    }
    for (threading, label) in [
        (true, "Python ThreadingHTTPServer (backlog 5)"),
        (false, "Python HTTPServer, one thread (backlog 5)"),
    ] {
        let n = if threading { n } else { n / 4 };
        let Some((mut child, port)) = python(threading) else {
            b.report.row(
                &format!("10 {label}"),
                "not run".into(),
                "no python3 here".into(),
            );
            continue;
        };
        // Threaded, it serves as many at once as come; one thread serves 50/s.
        let per_sec = if threading {
            1000.0
        } else {
            1.0 / WORK.as_secs_f64()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let got = burst(
            b,
            &format!("py-{threading}"),
            &url,
            n,
            Duration::from_secs_f64(n as f64 / per_sec),
        );
        row(b, label, n, per_sec, got);
        let _ = child.kill();
        let _ = child.wait();
    }
    slow_beside_fast(b);
}

/// Phase 11: a steady stream of `rate` events/s for `for_` to a receiver of `threads`
/// threads (each working `work`) whose port is closed for 3 s in the middle (a deploy).
fn outage(b: &mut Bench, rate: f64, threads: usize, work: Duration, for_: Duration) {
    let r = SmallReceiver::start(threads, work);
    let port = r.port;
    let (customer, key) = b
        .api
        .customer_with_endpoint(&format!("outage-{rate}"), &r.url("/"));
    quiesce(b);
    let (ok0, failed0) = outcomes(b);
    let gap = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let (down_at, up_at) = (for_ / 3, for_ / 3 + Duration::from_secs(3));
    let mut receiver = Some(r);
    let mut sent = 0u64;
    let mut distinct = 0;
    let mut twice = 0;
    while start.elapsed() < for_ {
        let due = start + gap * sent as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = start.elapsed();
        if t >= down_at && t < up_at && receiver.is_some() {
            let r = receiver.take().unwrap();
            let (d, tw) = r.distinct_and_twice();
            (distinct, twice) = (distinct + d, twice + tw);
        }
        if t >= up_at && receiver.is_none() {
            receiver = SmallReceiver::start_on(port, threads, work).ok();
        }
        b.api.event(&customer);
        sent += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut ok, mut failed) = (0, 0);
    while ok + failed < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let (o, f) = outcomes(b);
        (ok, failed) = (o - ok0, f - failed0);
    }
    if let Some(r) = receiver.take() {
        let (d, tw) = r.distinct_and_twice();
        (distinct, twice) = (distinct + d, twice + tw);
    }
    let why = b.api.failures_by_error(&key);
    b.api.delete_endpoints(&key);
    b.report.row(
        &format!(
            "11 receiver closed 3 s in a stream of {rate:.0}/s ({threads} thread(s) × {} ms)",
            work.as_millis()
        ),
        format!("{failed} failed"),
        format!(
            "{sent} sent, {ok} succeeded, {distinct} received, {twice} received twice; {} unfinished; failed: {why}",
            sent.saturating_sub(ok + failed)
        ),
    );
}

pub fn receivers_that_restart(b: &mut Bench) {
    let for_ = if b.quick {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(10)
    };
    outage(b, 70.0, 4, Duration::from_millis(5), for_);
    outage(b, 500.0, 64, Duration::from_millis(50), for_);
    answering_503(b);
}

/// Phase 11 (last): a receiver that answers 503 (no `Retry-After`) all along, under a steady
/// 20 events/s: how many POSTs reach it, against what the pause schedule (`domain::hold`)
/// allows in the same time and in ten minutes.
fn answering_503(b: &mut Bench) {
    let for_ = if b.quick {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(70)
    };
    let r = crate::receiver::Receiver::start(crate::receiver::Reply::Status(503, "down"));
    let (customer, key) = b.api.customer_with_endpoint("answers-503", &r.url("/"));
    let gap = Duration::from_millis(50);
    let start = Instant::now();
    let mut sent = 0u32;
    while start.elapsed() < for_ {
        if let Some(wait) = (start + gap * sent).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        b.api.event(&customer);
        sent += 1;
    }
    let reached = r.total();
    b.api.delete_endpoints(&key);
    b.report.row(
        &format!(
            "11 receiver answering 503 for {} s, 20 events/s",
            for_.as_secs()
        ),
        format!("{reached} POSTs reached it"),
        format!(
            "{sent} events; the pause schedule allows {} in {} s and {} in 10 min",
            schedule_503(for_),
            for_.as_secs(),
            schedule_503(Duration::from_secs(600))
        ),
    );
}

/// POSTs the pause schedule sends to a receiver answering 503 (no `Retry-After`) in `span`:
/// the one that paused it, then one alone each time its doubling wait is over.
fn schedule_503(span: Duration) -> usize {
    use webhooks::domain::hold::{Pause, Verdict};
    let down = Verdict::Down {
        reason: "http_503".into(),
        detail: String::new(),
        answered: true,
        retry_after: None,
    };
    let end = span.as_millis() as i64;
    let Some(mut p) = Pause::start(&down, 0) else {
        return 1;
    };
    let mut n = 1;
    while p.next_check_at < end {
        n += 1;
        p = p.after_failed_probe(&down, p.next_check_at);
    }
    n
}

/// A fast path keeps its rate while a slow path on the same host (2 s answers) has a
/// backlog.
fn slow_beside_fast(b: &mut Bench) {
    let n = b.sizes.e2e / 4;
    let (fast, _) = b
        .api
        .customer_with_endpoint("host-fast", &b.receiver.url("/fast/host"));
    let alone = end_to_end(&b.api, &b.receiver, std::slice::from_ref(&fast), n);
    let (slow, slow_key) = b
        .api
        .customer_with_endpoint("host-slow", &b.receiver.url("/delay/2000/host"));
    ingest_batches(&b.api, std::slice::from_ref(&slow), n, 1);
    let beside = end_to_end(&b.api, &b.receiver, std::slice::from_ref(&fast), n);
    b.api.delete_endpoints(&slow_key);
    b.report.row(
        "10 fast path beside a slow one (2 s answers) on one host",
        format!("{beside:.0} deliveries/s"),
        format!(
            "{:.0}% of the fast path alone ({alone:.0}/s)",
            100.0 * beside / alone
        ),
    );
}
