//! Throttles in memory: failed sign-ins and bearer checks per client address, and the
//! per-customer budget of test sends and resends.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The unit a throttle counts: an IPv4 address, or an IPv6 /64 (what one client gets).
pub fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// At most `max` failures per address in a window; past that, refused until it ends.
pub struct FailureThrottle {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// The map's size at which expired entries are swept next.
    prune_at: std::sync::atomic::AtomicUsize,
}

/// Entries kept before the first sweep of expired ones.
const PRUNE_FROM: usize = 10_000;

impl FailureThrottle {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
            prune_at: std::sync::atomic::AtomicUsize::new(PRUNE_FROM),
        }
    }

    fn prune_at_next(&self, live: usize) {
        self.prune_at.store(
            (live * 2).max(PRUNE_FROM),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// `Some(wait)` while this address has failed too often lately.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.blocked_among(ip, 1)
    }

    /// As `blocked`, for one of `nodes` nodes behind a balancer: each allows its part of the
    /// limit (at least one), so together they allow it about once.
    pub fn blocked_among(&self, ip: IpAddr, nodes: usize) -> Option<Duration> {
        let max = (self.max / u32::try_from(nodes.max(1)).unwrap_or(u32::MAX)).max(1);
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, since) = map.get(&throttle_key(ip))?;
        let left = self.window.checked_sub(since.elapsed())?;
        (*n >= max).then_some(left)
    }

    pub fn fail(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.prune_at.load(std::sync::atomic::Ordering::Relaxed) {
            map.retain(|_, (_, since)| since.elapsed() < self.window);
            // Many live addresses: scan again only once the map has doubled.
            self.prune_at_next(map.len());
        }
        let entry = map.entry(throttle_key(ip)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

/// A token bucket per key: `per_minute` tokens, refilled evenly. A recover takes what the
/// bucket holds (`take_up_to`) and gives back what it did not use.
pub struct RateBudget<K> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> RateBudget<K> {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, tokens: f64, since: Instant) -> f64 {
        (tokens + since.elapsed().as_secs_f64() * self.per_minute / 60.0).min(self.per_minute)
    }

    /// Takes `n` tokens, or says how long until one is there.
    pub fn charge(&self, key: &K, n: u32) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let full = self.per_minute;
            map.retain(|_, (t, since)| self.refill(*t, *since) < full);
        }
        let (tokens, since) = map
            .get(key)
            .copied()
            .unwrap_or((self.per_minute, Instant::now()));
        let now_tokens = self.refill(tokens, since);
        if now_tokens < 1.0 {
            let wait = (1.0 - now_tokens) * 60.0 / self.per_minute;
            return Err(Duration::from_secs_f64(wait));
        }
        map.insert(key.clone(), (now_tokens - f64::from(n), Instant::now()));
        Ok(())
    }

    /// Takes as many whole tokens as there are, up to `most`; or, with none, says how long
    /// until one is there.
    pub fn take_up_to(&self, key: &K, most: u32) -> Result<u32, Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, since) = map
            .get(key)
            .copied()
            .unwrap_or((self.per_minute, Instant::now()));
        let now_tokens = self.refill(tokens, since);
        if now_tokens < 1.0 {
            let wait = (1.0 - now_tokens) * 60.0 / self.per_minute;
            return Err(Duration::from_secs_f64(wait));
        }
        let taken = (now_tokens.floor() as u32).min(most);
        map.insert(key.clone(), (now_tokens - f64::from(taken), Instant::now()));
        Ok(taken)
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute as u32
    }

    /// Gives back tokens taken and not used.
    pub fn refund(&self, key: &K, n: u32) {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((tokens, since)) = map.get(key).copied() {
            let now_tokens = self.refill(tokens, since);
            map.insert(
                key.clone(),
                (
                    (now_tokens + f64::from(n)).min(self.per_minute),
                    Instant::now(),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_are_blocked_for_the_window() {
        let t = FailureThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(t.blocked(ip).is_none());
            t.fail(ip);
        }
        let wait = t.blocked(ip).unwrap();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(t.blocked("127.0.0.2".parse().unwrap()).is_none());
        // An IPv6 client is its /64: rotating within it does not help.
        let t = FailureThrottle::new(2, Duration::from_secs(60));
        t.fail("2001:db8:1:2::1".parse().unwrap());
        t.fail("2001:db8:1:2::ffff".parse().unwrap());
        assert!(t.blocked("2001:db8:1:2:aaaa::7".parse().unwrap()).is_some());
        assert!(t.blocked("2001:db8:1:3::1".parse().unwrap()).is_none());
    }

    #[test]
    fn a_budget_allows_its_rate_and_overdraws_only_from_a_token() {
        let b = RateBudget::new(60);
        for _ in 0..60 {
            assert!(b.charge(&"c", 1).is_ok());
        }
        let wait = b.charge(&"c", 1).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(b.charge(&"other", 1).is_ok(), "per key");
    }

    #[test]
    fn a_budget_grants_what_it_has_and_takes_back_what_was_not_used() {
        let b = RateBudget::new(5);
        assert_eq!(b.take_up_to(&"c", 65), Ok(5));
        assert!(b.take_up_to(&"c", 65).is_err(), "nothing left");
        b.refund(&"c", 2);
        assert_eq!(b.take_up_to(&"c", 1), Ok(1));
        assert_eq!(b.take_up_to(&"c", 9), Ok(1));
    }
}
