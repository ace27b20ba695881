//! The one outbound HTTP client: per-phase timeouts plus a whole-request deadline, no
//! redirects, no proxy from the environment, statuses are not errors, at most 4 KiB of the
//! answer read, and the private-network filter applied to the address actually connected to.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::domain::DeliveryError;

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
}

pub struct Sender {
    agent: Agent,
}

impl Sender {
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
            .max_idle_connections_per_host(8)
            .tls_config(tls.build())
            .build();
        let resolver = CheckedResolver {
            block_private: cfg.block_private_networks,
        };
        Self {
            agent: Agent::with_parts(config, DefaultConnector::new(), resolver),
        }
    }

    /// One POST; never retried.
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> SendResult {
        let started = Instant::now();
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = req.send(body);
        let duration_so_far = || started.elapsed();
        match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
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
                }
            }
            Err(e) => SendResult {
                status: None,
                body: None,
                error: Some(classify(&e)),
                detail: Some(e.to_string()),
                duration: duration_so_far(),
            },
        }
    }
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

/// Resolves synchronously (no thread per request, unlike ureq's resolver under a deadline)
/// and drops private addresses when asked to, so the check applies to what is connected to.
#[derive(Debug)]
struct CheckedResolver {
    block_private: bool,
}

impl Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(ureq::Error::BadUri(uri.to_string()));
        };
        let host_port = DefaultResolver::host_and_port(scheme, authority)
            .ok_or_else(|| ureq::Error::BadUri(uri.to_string()))?;
        let addrs: Vec<SocketAddr> = host_port
            .to_socket_addrs()
            .map_err(|_| ureq::Error::HostNotFound)?
            .collect();
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

/// Loopback, private, link-local, unique-local, unspecified, shared (CGNAT), broadcast and
/// multicast addresses, including IPv4 addresses inside IPv6 (mapped and compatible forms).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            let o = v6.octets();
            let embedded = IpAddr::V4([o[12], o[13], o[14], o[15]].into());
            if seg[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_private(embedded); // IPv4-compatible ::a.b.c.d
            }
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_private(embedded); // NAT64 64:ff9b::a.b.c.d
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }
}
