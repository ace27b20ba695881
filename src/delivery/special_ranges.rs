//! Addresses a webhook must not reach when private networks are blocked: one table of the
//! special-purpose ranges of IANA's IPv4 and IPv6 registries that are not globally
//! reachable, plus the IPv6 forms that carry an IPv4 address (judged by that address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges that are not globally reachable (IANA IPv4 Special-Purpose Address Registry),
/// with multicast and the old class E.
const V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared address space (CGNAT)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (TEST-NET-1)",
    ),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (TEST-NET-2)",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (TEST-NET-3)",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved, and the limited broadcast address",
    ),
];

/// IPv6 ranges that are not globally reachable (IANA IPv6 Special-Purpose Address Registry),
/// with multicast and the deprecated site-local range. The forms that embed an IPv4
/// address are handled before this table.
const V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use IPv4/IPv6 translation",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing (SRv6) SIDs",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique-local",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The IPv4 address an IPv6 address stands for, in the forms that carry one: IPv4-mapped
/// (::ffff:0:0/96), SIIT's IPv4-translated (::ffff:0:0:0/96), IPv4-compatible (::/96),
/// NAT64 (64:ff9b::/96), 6to4 (2002::/16) and
/// Teredo (2001::/32, whose client address is stored inverted). A Teredo address yields its
/// client; its server is checked separately.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from(bits as u32);
    let seg = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(low32);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] && bits > 1 {
        return Some(low32);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low32);
    }
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some(Ipv4Addr::from(!(bits as u32)));
    }
    None
}

/// Why `ip` is not a public address, or `None` when it is one.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => V4
            .iter()
            .find(|(net, len, _)| in_v4(v4, *net, *len))
            .map(|(_, _, why)| *why),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                let teredo_server = (v6.segments()[0] == 0x2001 && v6.segments()[1] == 0)
                    .then(|| Ipv4Addr::from((u128::from(v6) >> 64) as u32));
                return special_purpose(IpAddr::V4(v4))
                    .or_else(|| teredo_server.and_then(|s| special_purpose(IpAddr::V4(s))));
            }
            V6.iter()
                .find(|(net, len, _)| in_v6(v6, *net, *len))
                .map(|(_, _, why)| *why)
        }
    }
}

/// True for every address `--block-private-networks` refuses.
pub fn is_private(ip: IpAddr) -> bool {
    special_purpose(ip).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        is_private(s.parse().unwrap())
    }

    #[test]
    fn every_ipv4_range_of_the_table_is_blocked_at_both_ends() {
        for (net, len, why) in V4 {
            let first = u32::from(*net);
            let last = first | (u32::MAX.checked_shr(u32::from(*len)).unwrap_or(0));
            for ip in [first, last] {
                assert!(
                    is_private(IpAddr::V4(ip.into())),
                    "{} ({why})",
                    Ipv4Addr::from(ip)
                );
            }
        }
    }

    #[test]
    fn every_ipv6_range_of_the_table_is_blocked_at_both_ends() {
        for (net, len, why) in V6 {
            let first = u128::from(*net);
            let last = first | (u128::MAX.checked_shr(u32::from(*len)).unwrap_or(0));
            for ip in [first, last] {
                let ip = Ipv6Addr::from(ip);
                // Inside 2001::/23, Teredo (2001::/32) is judged by the addresses it carries.
                if ip.segments()[0] == 0x2001 && ip.segments()[1] == 0 {
                    continue;
                }
                assert!(is_private(IpAddr::V6(ip)), "{ip} ({why})");
            }
        }
    }

    #[test]
    fn the_ranges_found_missing_are_blocked() {
        for a in [
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "64:ff9b:1::a00:1",
            "fec0::1",
            "feff::1",
        ] {
            assert!(blocked(a), "{a}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_an_ipv4_address_are_judged_by_it() {
        // 6to4 of 10.0.0.1 and of 127.0.0.1; of a public address it passes.
        assert!(blocked("2002:a00:1::1"));
        assert!(blocked("2002:7f00:1::"));
        assert!(!blocked("2002:808:808::1"));
        // Teredo: server 65.54.227.120 (public), client 192.168.1.1 stored inverted.
        assert!(blocked("2001:0:4136:e378:8000:63bf:3f57:fefe"));
        // The same with a public client 8.8.8.8 (inverted f7f7:f7f7).
        assert!(!blocked("2001:0:4136:e378:8000:63bf:f7f7:f7f7"));
        // A Teredo server on a private network.
        assert!(blocked("2001:0:a00:1:8000:63bf:f7f7:f7f7"));
        for a in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::192.168.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
        ] {
            assert!(blocked(a), "{a}");
        }
        assert!(!blocked("::ffff:8.8.8.8"));
        assert!(!blocked("::ffff:0:8.8.8.8"));
        assert!(!blocked("64:ff9b::8.8.8.8"));
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2001:4860:4860::8888",
        ] {
            assert!(!blocked(a), "{a}");
        }
    }
}
