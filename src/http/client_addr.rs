//! Who a request comes from: the TCP peer, or, when the peer is a `--trusted-proxy`, the
//! rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer`. Entries a proxy cannot vouch for (left of the first one not
    /// added by a trusted proxy) are ignored: a client can write anything there.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let Some(list) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for entry in list.rsplit(',') {
            let Some(ip) = parse_entry(entry) else {
                // Garbage from an untrusted hop: the last good address is the client.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = e.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    e.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// The client address of a request, as the throttles see it. Every `X-Forwarded-For` line
/// counts, in order (a proxy may add a line rather than extend one); bytes that are not
/// text make an entry that does not parse, which ends the walk there.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let lines: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    if lines.is_empty() {
        return trusted.client(peer, None);
    }
    trusted.client(peer, Some(&lines.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // Not from a proxy: the header is the client's own word, ignored.
        assert_eq!(t.client(ip("1.2.3.4"), Some("9.9.9.9")), ip("1.2.3.4"));
        // From a proxy: the rightmost entry that is not a proxy.
        assert_eq!(
            t.client(ip("10.0.0.1"), Some("6.6.6.6, 5.5.5.5, 10.0.0.2")),
            ip("5.5.5.5")
        );
        assert_eq!(
            t.client(ip("10.0.0.1"), Some("5.5.5.5:4711")),
            ip("5.5.5.5")
        );
        assert_eq!(
            t.client(ip("10.0.0.1"), Some("[2001:db8::1]:80")),
            ip("2001:db8::1")
        );
        assert_eq!(t.client(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(
            t.client(ip("10.0.0.1"), Some("junk, 10.0.0.3")),
            ip("10.0.0.3")
        );
        assert_eq!(
            t.client(ip("::ffff:10.0.0.1"), Some("7.7.7.7")),
            ip("7.7.7.7")
        );
    }
}
