//! What the server log says of deliveries: one line per finished delivery at debug level,
//! one per failure at info (at most one every 10 s per endpoint, with a count of the ones
//! left out), so that `journalctl -f` shows what fails. Never a URL, a body or a secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::{Outcome, SendJob};

/// Failure lines per endpoint at most this often.
const EVERY: Duration = Duration::from_secs(10);
/// Endpoints remembered at most; the map is cleared past it.
const MAX_ENDPOINTS: usize = 10_000;

/// The server log's lines about deliveries (not the delivery log the store keeps).
#[derive(Default)]
pub struct DeliveryLines {
    /// Endpoint → when its last failure line was written, and failures left out since.
    failures: Mutex<HashMap<String, (Instant, u64)>>,
}

impl DeliveryLines {
    pub fn finished(&self, job: &SendJob, outcome: &Outcome) {
        let status = outcome.status().as_str();
        let error = outcome.error.map(|e| e.as_str());
        tracing::debug!(
            customer = %job.delivery.customer_id,
            endpoint = %job.endpoint.id,
            event = %job.event.event,
            delivery = %job.delivery.id,
            status,
            http_status = outcome.response_status,
            error,
            duration_ms = outcome.duration_ms,
            "delivery finished"
        );
        if status != "failed" {
            return;
        }
        let Some(left_out) = self.may_log(&job.endpoint.id) else {
            return;
        };
        tracing::info!(
            customer = %job.delivery.customer_id,
            endpoint = %job.endpoint.id,
            event = %job.event.event,
            delivery = %job.delivery.id,
            http_status = outcome.response_status,
            error,
            duration_ms = outcome.duration_ms,
            failures_not_logged = left_out,
            "delivery failed"
        );
    }

    /// `Some(failures left out since the last line)` when this endpoint may have a line now.
    fn may_log(&self, endpoint: &str) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENDPOINTS {
            map.clear();
        }
        let now = Instant::now();
        match map.get_mut(endpoint) {
            Some((last, left_out)) if now.duration_since(*last) < EVERY => {
                *left_out += 1;
                None
            }
            Some((last, left_out)) => {
                let n = *left_out;
                *last = now;
                *left_out = 0;
                Some(n)
            }
            None => {
                map.insert(endpoint.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_are_limited_per_endpoint() {
        let log = DeliveryLines::default();
        assert_eq!(log.may_log("ep_a"), Some(0));
        assert_eq!(log.may_log("ep_a"), None);
        assert_eq!(log.may_log("ep_a"), None);
        assert_eq!(log.may_log("ep_b"), Some(0), "per endpoint");
        {
            let mut map = log.failures.lock().unwrap();
            map.get_mut("ep_a").unwrap().0 -= EVERY;
        }
        assert_eq!(log.may_log("ep_a"), Some(2), "with the count left out");
    }
}
