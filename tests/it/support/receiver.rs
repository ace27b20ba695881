//! A real local webhook receiver on actix-web, shared by the tests and the benchmark
//! (`examples/bench` includes this file). It answers as told, holds an answer without
//! holding a thread, and reports what it got: every request through a channel (tests), or
//! only counts per `webhook-id` (the benchmark, which sends millions).
//!
//! Besides the configured `Reply`, the path decides for the benchmark's endpoints:
//! `/hang/…` never answers, `/delay/{ms}/…` answers 204 after `ms` milliseconds,
//! `/jitter/{ms}/…` after `ms` ± 10% (spread evenly).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use crossbeam_channel::{Receiver as ChannelReceiver, Sender, unbounded};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn header_map(&self) -> ureq::http::HeaderMap {
        let mut map = ureq::http::HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(
                ureq::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16, &'static str),
    /// A status with a body of this many bytes.
    Big(u16, usize),
    /// 302 to this location.
    Redirect(&'static str),
    /// Read the request, then never answer (until the receiver is dropped).
    Hang,
    /// This status with `Retry-After: secs`.
    RetryAfter(u16, u64),
}

/// What the receiver got, shared with its handlers.
struct Inner {
    reply: Mutex<Reply>,
    /// `None` for a counting receiver.
    got: Option<Sender<Received>>,
    total: AtomicU64,
    /// webhook-id → (times received, first arrival).
    seen: Mutex<HashMap<String, (u32, Instant)>>,
}

pub struct Receiver {
    pub port: u16,
    got: ChannelReceiver<Received>,
    inner: Arc<Inner>,
    handle: ServerHandle,
}

impl Receiver {
    /// A receiver that reports every request.
    pub fn start(reply: Reply) -> Self {
        Self::start_with(reply, None, true)
    }

    /// An HTTPS receiver with this server configuration.
    pub fn start_tls(reply: Reply, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(reply, Some(tls), true)
    }

    /// A receiver that answers 204 (or as its path says) and only counts: for load.
    pub fn counting() -> Self {
        Self::start_with(Reply::Status(204, ""), None, false)
    }

    /// As `counting`, over HTTPS.
    pub fn counting_tls(tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(Reply::Status(204, ""), Some(tls), false)
    }

    fn start_with(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>, record: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, got) = unbounded();
        let inner = Arc::new(Inner {
            reply: Mutex::new(reply),
            got: record.then_some(tx),
            total: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        });
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let shared = inner.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::from(shared.clone()))
                        .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                        .default_service(web::to(receive))
                })
                .workers(2)
                .backlog(4096)
                .max_connections(100_000)
                .disable_signals()
                .shutdown_timeout(0);
                let server = match tls {
                    Some(cfg) => server.listen_rustls_0_23(listener, (*cfg).clone()),
                    None => server.listen(listener),
                }
                .unwrap()
                .run();
                let _ = handle_tx.send(server.handle());
                let _ = server.await;
            })
        });
        let handle = handle_rx.recv().expect("the receiver starts");
        Self {
            port,
            got,
            inner,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The HTTPS address, by the name its certificate carries.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.port, path)
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.inner.reply.lock().unwrap() = reply;
    }

    /// The next request, or a failed test after `secs`.
    pub fn next(&self, secs: u64) -> Received {
        self.got
            .recv_timeout(Duration::from_secs(secs))
            .expect("the receiver got a request in time")
    }

    /// Every request received so far.
    pub fn drain(&self) -> Vec<Received> {
        self.got.try_iter().collect()
    }

    /// Requests received, all paths together.
    pub fn total(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// How often this webhook-id arrived.
    pub fn count(&self, id: &str) -> u32 {
        self.inner
            .seen
            .lock()
            .unwrap()
            .get(id)
            .map_or(0, |(n, _)| *n)
    }

    /// When this webhook-id first arrived.
    pub fn first_seen(&self, id: &str) -> Option<Instant> {
        self.inner.seen.lock().unwrap().get(id).map(|(_, t)| *t)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        })
        .join();
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, st: web::Data<Inner>) -> HttpResponse {
    let now = Instant::now();
    st.total.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
    {
        let mut seen = st.seen.lock().unwrap();
        seen.entry(id.to_owned()).or_insert((0, now)).0 += 1;
    }
    if let Some(got) = &st.got {
        let _ = got.send(Received {
            path: req.uri().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
    }
    let path = req.path();
    if path.starts_with("/hang") {
        futures_util::future::pending::<()>().await;
    }
    if let Some(ms) = path
        .strip_prefix("/delay/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
        return HttpResponse::NoContent().finish();
    }
    if let Some(ms) = path
        .strip_prefix("/jitter/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        // A cheap spread from the request count: uniform enough for ±10%.
        let k = st
            .total
            .load(Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> 44;
        let factor = 0.9 + 0.2 * (k % 1001) as f64 / 1000.0;
        actix_web::rt::time::sleep(Duration::from_secs_f64(ms as f64 * factor / 1000.0)).await;
        return HttpResponse::NoContent().finish();
    }
    let reply = st.reply.lock().unwrap().clone();
    let status = |code: u16| {
        actix_web::http::StatusCode::from_u16(code).unwrap_or(actix_web::http::StatusCode::OK)
    };
    match reply {
        Reply::Status(code, text) => HttpResponse::build(status(code))
            .content_type("text/plain")
            .body(text),
        Reply::Big(code, n) => HttpResponse::build(status(code))
            .content_type("text/plain")
            .body("x".repeat(n)),
        Reply::Redirect(to) => HttpResponse::Found()
            .insert_header(("location", to))
            .finish(),
        Reply::Hang => {
            futures_util::future::pending::<()>().await;
            HttpResponse::NoContent().finish()
        }
        Reply::RetryAfter(code, secs) => HttpResponse::build(status(code))
            .insert_header(("retry-after", secs.to_string()))
            .finish(),
    }
}
