//! What the HTTP side holds a client to: connections per address, the time to send a
//! request, failed bearer checks per address, and per-customer counts and send rates.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;

use super::client_addr::TrustedProxies;
use super::throttle::{FailureThrottle, RateBudget};
use crate::error::ApiError;

pub struct Limits {
    pub trusted: TrustedProxies,
    pub max_connections_per_ip: u32,
    /// How long a client may take to send a whole request body.
    pub read_timeout: Duration,
    pub max_endpoints_per_customer: u32,
    pub bearer_failures: FailureThrottle,
    /// Test sends and resends per customer (a recover's deliveries count).
    pub sends: RateBudget<String>,
    pub connections: Arc<Connections>,
}

impl Limits {
    pub fn new(
        trusted: TrustedProxies,
        max_connections_per_ip: u32,
        read_timeout: Duration,
        auth_failures_per_min: u32,
        max_endpoints_per_customer: u32,
        sends_per_min: u32,
    ) -> Self {
        Self {
            trusted,
            max_connections_per_ip,
            read_timeout,
            max_endpoints_per_customer,
            bearer_failures: FailureThrottle::new(auth_failures_per_min, Duration::from_secs(60)),
            sends: RateBudget::new(sends_per_min),
            connections: Arc::new(Connections::default()),
        }
    }

    /// Takes what the customer's send budget allows now for a recover, up to `most`; 429 when
    /// nothing is left.
    pub fn take_sends(&self, customer_id: &str, most: usize) -> Result<usize, ApiError> {
        let most = u32::try_from(most).unwrap_or(u32::MAX);
        self.sends
            .take_up_to(&customer_id.to_owned(), most)
            .map(|n| n as usize)
            .map_err(|wait| rate_limited(wait, "test sends and resends"))
    }

    /// The send budget: test sends and resends a customer may start a minute.
    pub fn sends_per_min(&self) -> u32 {
        self.sends.per_minute()
    }

    /// Gives back sends taken and not used.
    pub fn refund_sends(&self, customer_id: &str, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n > 0 {
            self.sends.refund(&customer_id.to_owned(), n);
        }
    }
}

/// 429 `rate_limited` with `retry-after` in whole seconds (at least 1).
pub fn rate_limited(wait: Duration, what: &str) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many {what}; try again in {secs} s"),
    )
    .retry_after(secs.max(1))
}

/// Open connections per client address.
#[derive(Default)]
pub struct Connections {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; uncounted when the connection (and so this) is dropped.
pub struct ConnectionTicket {
    ip: IpAddr,
    /// More connections from this address than allowed, this one included.
    pub over: bool,
    connections: Arc<Connections>,
}

impl Connections {
    pub fn open(self: &Arc<Self>, ip: IpAddr, max: u32) -> ConnectionTicket {
        let mut map = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        *n += 1;
        ConnectionTicket {
            ip,
            over: *n > max,
            connections: self.clone(),
        }
    }

    pub fn count(&self, ip: IpAddr) -> u32 {
        let map = self.open.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionTicket {
    fn drop(&mut self) {
        let mut map = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_until_dropped() {
        let c = Arc::new(Connections::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = c.open(ip, 2);
        let b = c.open(ip, 2);
        let third = c.open(ip, 2);
        assert!(!a.over && !b.over && third.over);
        drop(third);
        drop(a);
        assert_eq!(c.count(ip), 1);
        assert!(!c.open(ip, 2).over);
        drop(b);
        assert_eq!(c.count(ip), 0);
    }
}
