//! The one outbound HTTP client: per-phase timeouts plus a whole-request deadline, no
//! redirects, no proxy from the environment, statuses are not errors, at most 4 KiB of the
//! answer read, and the private-network filter applied to the address actually connected to.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::resolver::{Dns, DnsError};
use super::special_ranges::is_private;
use crate::domain::DeliveryError;
use crate::domain::hold::parse_retry_after;

/// Each connection's input and output buffer, and so the largest answer head accepted.
const BUFFER_BYTES: usize = 16 * 1024;
/// Idle connections kept for reuse: as many as the pool can have in flight, over all shards.
const MAX_IDLE_CONNECTIONS: usize = 4096;
/// Independent ureq agents (connection pools) the workers are spread over. ureq's pool is a
/// list scanned on every checkout and return (comparing each connection's host): one pool
/// of hundreds of connections cost a fifth of the CPU against quick receivers. A worker
/// always uses the same shard, so its connection comes back to it.
const SHARDS: usize = 16;

/// A connection idle longer than this is not used again: receivers close idle connections
/// (gunicorn after 2 s, Node, actix and Apache after 5 s), and a POST written into one just
/// as its server decides to close it is never read: a webhook lost for good. Below the
/// shortest common keep-alive, with room for a loaded server's late timer.
pub const REUSE_WITHIN: Duration = Duration::from_secs(1);

/// How much of a receiver's answer is read and kept.
pub const MAX_RESPONSE_BYTES: u64 = 4096;

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub block_private_networks: bool,
    /// Trust roots replacing the public ones (they include them), from `--ca-file`.
    pub roots: Option<Vec<ureq::tls::Certificate<'static>>>,
}

/// What one POST came to.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<DeliveryError>,
    pub detail: Option<String>,
    pub duration: Duration,
    /// The answer's `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// The receiver closes the connection after each answer (HTTP/1.0, `Connection: close`):
    /// each POST is a new connection through its listen backlog.
    pub closes: bool,
}

pub struct WebhookSender {
    shards: Vec<Agent>,
    /// For connection checks of a paused endpoint: the same resolver, rule and roots.
    dns: Arc<Dns>,
    block_private: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
}

/// The shard of the calling thread: fixed for the thread's life.
fn shard_index() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl WebhookSender {
    pub fn new(cfg: &SenderConfig) -> Self {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = &cfg.roots {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(
                roots.clone(),
            )));
        }
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("webhooks/", env!("CARGO_PKG_VERSION")))
            .accept("*/*")
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.request_timeout))
            // Every worker may keep its connection to a receiver for the next send, if it
            // comes soon.
            .max_idle_connections(MAX_IDLE_CONNECTIONS / SHARDS)
            .max_idle_age(REUSE_WITHIN)
            // Hundreds of connections: small buffers (ureq's default is 128 KiB each way).
            // The answer's head must fit; bodies stream through in pieces.
            .input_buffer_size(BUFFER_BYTES)
            .output_buffer_size(BUFFER_BYTES)
            .max_response_header_size(BUFFER_BYTES)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS / SHARDS)
            .tls_config(tls.build())
            .build();
        let dns = Arc::new(Dns::system());
        let tls_check = check_tls_config(cfg);
        let shards = (0..SHARDS)
            .map(|_| {
                let resolver = CheckedResolver {
                    block_private: cfg.block_private_networks,
                    dns: dns.clone(),
                    request_timeout: cfg.request_timeout,
                };
                Agent::with_parts(config.clone(), DefaultConnector::new(), resolver)
            })
            .collect();
        Self {
            shards,
            dns,
            block_private: cfg.block_private_networks,
            connect_timeout: cfg.connect_timeout,
            request_timeout: cfg.request_timeout,
            tls: tls_check,
        }
    }

    /// The longest one POST may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Checks that the receiver at `url` takes connections, sending nothing: resolves it
    /// under the same private-network rule as a delivery, connects, and for https completes
    /// the TLS handshake. A failure says no more than a delivery's would.
    pub fn check(&self, url: &str) -> Result<(), (DeliveryError, String)> {
        use std::net::TcpStream;
        let fail = |e: DeliveryError, d: &str| Err((e, d.to_owned()));
        let Ok(uri) = url.parse::<Uri>() else {
            return fail(DeliveryError::Connection, "the URL cannot be parsed");
        };
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return fail(DeliveryError::Connection, "the URL has no host");
        };
        let Some(host_port) = DefaultResolver::host_and_port(scheme, authority) else {
            return fail(DeliveryError::Connection, "the URL has no host");
        };
        let addrs = match self.dns.resolve(&host_port, self.connect_timeout) {
            Ok(a) => a,
            Err(DnsError::NotFound) => return fail(DeliveryError::Dns, "host not found"),
            Err(DnsError::TimedOut) => return fail(DeliveryError::Timeout, "timeout: resolve"),
        };
        let allowed: Vec<_> = addrs
            .into_iter()
            .filter(|a| !(self.block_private && is_private(a.ip())))
            .take(16)
            .collect();
        if allowed.is_empty() {
            return fail(DeliveryError::Blocked, &Blocked.to_string());
        }
        let mut last = (DeliveryError::Connection, String::new());
        let mut stream = None;
        for addr in allowed {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => {
                    let kind = match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => DeliveryError::ConnectionRefused,
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                            DeliveryError::Timeout
                        }
                        _ => DeliveryError::Connection,
                    };
                    // The address is not named: the customer sees this.
                    last = (kind, format!("io: {}", e.kind()));
                }
            }
        }
        let Some(mut tcp) = stream else {
            return Err(last);
        };
        if scheme.as_str() != "https" {
            return Ok(());
        }
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
        let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_owned()) else {
            return fail(DeliveryError::Tls, "tls: invalid server name");
        };
        let Ok(mut conn) = rustls::ClientConnection::new(self.tls.clone(), name) else {
            return fail(DeliveryError::Tls, "tls: cannot start a handshake");
        };
        let _ = tcp.set_read_timeout(Some(self.connect_timeout));
        let _ = tcp.set_write_timeout(Some(self.connect_timeout));
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut tcp) {
                return fail(DeliveryError::Tls, &format!("tls: {e}"));
            }
        }
        let _ = tcp.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    /// One POST; never retried.
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> SendResult {
        let started = Instant::now();
        let mut req = self.shards[shard_index()].post(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = req.send(body);
        let duration_so_far = || started.elapsed();
        match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let closes = resp.version() == ureq::http::Version::HTTP_10
                    || resp
                        .headers()
                        .get("connection")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let mut buf = Vec::new();
                // A body that stops, stalls or is endless still leaves us the status.
                let _ = resp
                    .into_body()
                    .into_reader()
                    .take(MAX_RESPONSE_BYTES)
                    .read_to_end(&mut buf);
                SendResult {
                    status: Some(status),
                    body: Some(String::from_utf8_lossy(&buf).into_owned()),
                    error: None,
                    detail: None,
                    duration: duration_so_far(),
                    retry_after,
                    closes,
                }
            }
            Err(e) => SendResult {
                status: None,
                body: None,
                error: Some(classify(&e)),
                detail: Some(e.to_string()),
                duration: duration_so_far(),
                retry_after: None,
                closes: false,
            },
        }
    }
}

/// The TLS client of connection checks: the roots deliveries trust (`--ca-file`'s, which
/// include the public ones, or the public ones).
fn check_tls_config(cfg: &SenderConfig) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.roots {
        Some(given) => {
            for c in given {
                let _ = roots.add(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
            }
        }
        None => {
            for c in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                let _ = roots.add(c.clone());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn classify(e: &ureq::Error) -> DeliveryError {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(_) => DeliveryError::Timeout,
        ureq::Error::HostNotFound => DeliveryError::Dns,
        // rustls reports a failed handshake as an io::Error that carries its own error.
        ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            DeliveryError::Tls
        }
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => DeliveryError::ConnectionRefused,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => DeliveryError::Timeout,
            _ => DeliveryError::Connection,
        },
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => DeliveryError::Tls,
        ureq::Error::Other(inner) if inner.downcast_ref::<Blocked>().is_some() => {
            DeliveryError::Blocked
        }
        _ => DeliveryError::Connection,
    }
}

/// A delivery refused because its address is on a private network. The address itself is
/// not named: the message is shown to the customer, who must not learn internal addresses.
#[derive(Debug, thiserror::Error)]
#[error("blocked: the host resolves only to private, loopback or link-local addresses")]
pub struct Blocked;

/// Resolves through the shared pool under the request's deadline (no thread per request,
/// unlike ureq's resolver under a deadline) and drops private addresses when asked to, so
/// the check applies to what is connected to.
struct CheckedResolver {
    block_private: bool,
    dns: Arc<Dns>,
    /// The whole request's deadline, when ureq gives none for this step.
    request_timeout: Duration,
}

impl std::fmt::Debug for CheckedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedResolver")
            .field("block_private", &self.block_private)
            .finish_non_exhaustive()
    }
}

impl Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(ureq::Error::BadUri(uri.to_string()));
        };
        let host_port = DefaultResolver::host_and_port(scheme, authority)
            .ok_or_else(|| ureq::Error::BadUri(uri.to_string()))?;
        let within = match timeout.after {
            ureq::unversioned::transport::time::Duration::Exact(d) => d.min(self.request_timeout),
            _ => self.request_timeout,
        };
        let addrs = self.dns.resolve(&host_port, within).map_err(|e| match e {
            DnsError::NotFound => ureq::Error::HostNotFound,
            DnsError::TimedOut => ureq::Error::Timeout(ureq::Timeout::Resolve),
        })?;
        let mut out = self.empty();
        let mut blocked = false;
        for addr in addrs {
            if self.block_private && is_private(addr.ip()) {
                blocked = true;
                continue;
            }
            if out.len() < 16 {
                out.push(addr);
            }
        }
        if out.is_empty() {
            return Err(if blocked {
                ureq::Error::Other(Box::new(Blocked))
            } else {
                ureq::Error::HostNotFound
            });
        }
        Ok(out)
    }
}
