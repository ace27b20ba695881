//! Holding an endpoint's deliveries while its receiver is down, instead of burning them: what
//! pauses an endpoint, when its receiver is checked again, and what ends the pause. Pure
//! rules on a `Pause` that the engines store on the endpoint (so it survives a restart and,
//! on PostgreSQL, holds on every node).

use serde::{Deserialize, Serialize};

use super::delivery::{DeliveryError, Outcome};

/// The first wait before the receiver is checked again; it doubles after each failed check.
pub const FIRST_BACKOFF_MS: i64 = 1_000;
/// The longest wait between two connection checks.
pub const MAX_CHECK_BACKOFF_MS: i64 = 60_000;
/// The longest wait after a receiver said 429/502/503/504 (its `Retry-After`, or the backoff).
pub const MAX_ANSWER_WAIT_MS: i64 = 600_000;

/// Added to a probe's longest time before another node may take the next step.
pub const PROBE_MARGIN_MS: i64 = 5_000;

/// Why a delivery that waited too long behind a pause failed.
pub const EXPIRED_DETAIL: &str = "the receiver was unavailable for longer than this endpoint holds deliveries (max_hold_secs); this delivery was never sent";
/// Why the waiting deliveries of a paused endpoint failed when someone asked.
pub const FAILED_BY_HAND_DETAIL: &str = "the waiting deliveries were failed by hand while the endpoint was paused; this one was never sent";

/// Why an endpoint is paused, and when its receiver is checked next. Times in ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub since: i64,
    /// A delivery error code (`connection_refused`, `timeout`, …) or `http_503` and the like.
    pub reason: String,
    /// What the failing delivery said (shown to the customer; never an internal address).
    pub detail: String,
    pub next_check_at: i64,
    pub backoff_ms: i64,
    /// The receiver answered (429/502/503/504): after the wait one delivery goes, without a
    /// connection check (a check would pass: it accepts connections).
    pub answered: bool,
    /// After a 429: half the rate (deliveries per second) at which it was being sent when
    /// it answered 429. The endpoint reopens at that rate, and its page suggests it as a
    /// `rate_limit_per_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_rate_per_sec: Option<u32>,
}

/// What a finished POST says about its receiver: answered in a way that keeps it open, or down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Down {
        reason: String,
        detail: String,
        answered: bool,
        /// The answer's `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
}

/// Does this outcome pause the endpoint? A connection-level failure (refused, reset, connect
/// timeout, DNS, TLS handshake), a request timeout, or an answer 429/502/503/504.
pub fn verdict(outcome: &Outcome, retry_after: Option<u64>) -> Verdict {
    match (outcome.response_status, outcome.error) {
        (Some(s @ (429 | 502 | 503 | 504)), _) => Verdict::Down {
            reason: format!("http_{s}"),
            detail: format!("the receiver answered {s}"),
            answered: true,
            retry_after,
        },
        (
            None,
            Some(
                e @ (DeliveryError::ConnectionRefused
                | DeliveryError::Connection
                | DeliveryError::Timeout
                | DeliveryError::Dns
                | DeliveryError::Tls),
            ),
        ) => Verdict::Down {
            reason: e.as_str().to_owned(),
            detail: outcome.error_detail.clone().unwrap_or_default(),
            answered: false,
            retry_after: None,
        },
        _ => Verdict::Open,
    }
}

impl Pause {
    /// A new pause, `now`, for a receiver found down.
    pub fn start(verdict: &Verdict, now: i64) -> Option<Self> {
        let Verdict::Down {
            reason,
            detail,
            answered,
            retry_after,
        } = verdict
        else {
            return None;
        };
        let wait = first_wait(*answered, *retry_after);
        Some(Self {
            since: now,
            reason: reason.clone(),
            detail: detail.clone(),
            next_check_at: now + wait,
            backoff_ms: FIRST_BACKOFF_MS,
            answered: *answered,
            suggested_rate_per_sec: None,
        })
    }

    /// After a 429 drawn at `sent_per_sec`: remember half of it (the lowest seen) as the rate
    /// to reopen at. Any other reason leaves the pause as it is.
    pub fn drawn_at(mut self, sent_per_sec: f64) -> Self {
        if self.reason == "http_429" && sent_per_sec > 0.0 {
            let half = ((sent_per_sec / 2.0).floor() as u32).max(1);
            self.suggested_rate_per_sec =
                Some(self.suggested_rate_per_sec.map_or(half, |r| r.min(half)));
        }
        self
    }

    /// The connection check failed: wait twice as long (at most a minute).
    pub fn after_failed_check(&self, now: i64) -> Self {
        let backoff_ms = (self.backoff_ms * 2).min(MAX_CHECK_BACKOFF_MS);
        Self {
            next_check_at: now + backoff_ms,
            backoff_ms,
            ..self.clone()
        }
    }

    /// The one delivery sent alone failed: the pause goes on, its wait grows (the reason is
    /// the latest failure's).
    pub fn after_failed_probe(&self, verdict: &Verdict, now: i64) -> Self {
        let (reason, detail, answered, retry_after) = match verdict {
            Verdict::Down {
                reason,
                detail,
                answered,
                retry_after,
            } => (reason.clone(), detail.clone(), *answered, *retry_after),
            // Answered, but not 2xx: the receiver is up and unwell; wait like after a 503.
            Verdict::Open => (self.reason.clone(), self.detail.clone(), true, None),
        };
        let max = if answered {
            MAX_ANSWER_WAIT_MS
        } else {
            MAX_CHECK_BACKOFF_MS
        };
        let backoff_ms = (self.backoff_ms * 2).min(max);
        let wait = retry_after.map_or(backoff_ms, |s| {
            (s as i64 * 1000).clamp(FIRST_BACKOFF_MS, MAX_ANSWER_WAIT_MS)
        });
        Self {
            since: self.since,
            reason,
            detail,
            next_check_at: now + wait,
            backoff_ms,
            answered,
            suggested_rate_per_sec: self.suggested_rate_per_sec,
        }
    }

    /// This node sends the one delivery that tests the receiver: no other node's check is due
    /// until the probe may have finished (`probe_ms`, the longest a POST takes, plus a
    /// margin); its outcome then sets the next step. A node that dies mid-probe leaves the
    /// pause due again after that.
    pub fn probe_taken(&self, now: i64, probe_ms: i64) -> Self {
        Self {
            next_check_at: now + probe_ms + PROBE_MARGIN_MS,
            ..self.clone()
        }
    }

    /// Due for its check (or, after an answer, for the one delivery) at `now`.
    pub fn due(&self, now: i64) -> bool {
        now >= self.next_check_at
    }
}

fn first_wait(answered: bool, retry_after: Option<u64>) -> i64 {
    match (answered, retry_after) {
        (true, Some(s)) => (s as i64 * 1000).clamp(FIRST_BACKOFF_MS, MAX_ANSWER_WAIT_MS),
        _ => FIRST_BACKOFF_MS,
    }
}

/// Held deliveries created before this, at `now`, have waited behind a pause longer than
/// `max_hold_secs` (0: never held): what a paused endpoint's check fails unsent.
pub fn expiry_cutoff(max_hold_secs: u64, now: i64) -> i64 {
    now - max_hold_secs as i64 * 1000
}

/// Whether a delivery created at `created_at` has waited behind a pause longer than
/// `max_hold_secs` at `now` (0: never held).
pub fn expired(created_at: i64, max_hold_secs: u64, now: i64) -> bool {
    created_at < expiry_cutoff(max_hold_secs, now)
}

/// Parses a `Retry-After` value: seconds (a date is taken as no value).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<u16>, error: Option<DeliveryError>) -> Outcome {
        Outcome {
            delivery_id: "dlv_1".into(),
            endpoint_id: "ep_1".into(),
            url: "http://example.test/".into(),
            response_status: status,
            response_body: None,
            error,
            error_detail: error.map(|_| "io: refused".into()),
            duration_ms: 1,
            started_at: 0,
            finished_at: 1,
            retry_after: None,
            request_headers: None,
            closes: false,
        }
    }

    #[test]
    fn what_pauses_and_what_does_not() {
        for e in [
            DeliveryError::ConnectionRefused,
            DeliveryError::Connection,
            DeliveryError::Timeout,
            DeliveryError::Dns,
            DeliveryError::Tls,
        ] {
            assert!(matches!(
                verdict(&outcome(None, Some(e)), None),
                Verdict::Down { .. }
            ));
        }
        for s in [429, 502, 503, 504] {
            let v = verdict(&outcome(Some(s), None), Some(7));
            assert_eq!(
                v,
                Verdict::Down {
                    reason: format!("http_{s}"),
                    detail: format!("the receiver answered {s}"),
                    answered: true,
                    retry_after: Some(7)
                }
            );
        }
        for s in [200, 204, 400, 404, 410, 500, 501] {
            assert_eq!(verdict(&outcome(Some(s), None), None), Verdict::Open, "{s}");
        }
        assert_eq!(
            verdict(&outcome(None, Some(DeliveryError::Blocked)), None),
            Verdict::Open,
            "a policy refusal says nothing of the receiver"
        );
    }

    #[test]
    fn checks_back_off_from_a_second_to_a_minute() {
        let v = verdict(&outcome(None, Some(DeliveryError::ConnectionRefused)), None);
        let mut p = Pause::start(&v, 0).unwrap();
        assert_eq!((p.next_check_at, p.answered), (1_000, false));
        let mut waits = Vec::new();
        for _ in 0..8 {
            p = p.after_failed_check(p.next_check_at);
            waits.push(p.backoff_ms);
        }
        assert_eq!(
            waits,
            [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(p.since, 0, "paused since the first failure");
    }

    #[test]
    fn an_answer_is_waited_out_by_its_retry_after_at_most_ten_minutes() {
        let v = verdict(&outcome(Some(429), None), Some(30));
        let p = Pause::start(&v, 0).unwrap();
        assert_eq!((p.next_check_at, p.answered), (30_000, true));
        let v = verdict(&outcome(Some(503), None), Some(86_400));
        assert_eq!(
            Pause::start(&v, 0).unwrap().next_check_at,
            MAX_ANSWER_WAIT_MS
        );
        // Without one, the backoff grows past a minute, up to ten.
        let v = verdict(&outcome(Some(503), None), None);
        let mut p = Pause::start(&v, 0).unwrap();
        for _ in 0..12 {
            p = p.after_failed_probe(&v, p.next_check_at);
        }
        assert_eq!(p.backoff_ms, MAX_ANSWER_WAIT_MS);
    }

    #[test]
    fn a_receiver_answering_503_for_ten_minutes_is_sent_at_most_ten_deliveries() {
        // Its first 503 pauses it; then one delivery goes alone each time its wait is over,
        // each taking `took`, and each failure doubles the wait.
        let took = 50;
        let v = verdict(&outcome(Some(503), None), None);
        let mut p = Pause::start(&v, 0).unwrap();
        let mut sent = vec![0];
        while p.next_check_at < 600_000 {
            let at = p.next_check_at;
            sent.push(at);
            p = p.after_failed_probe(&v, at + took);
        }
        assert!(sent.len() <= 10, "{} in ten minutes: {sent:?}", sent.len());
        assert!(sent.len() >= 8, "it keeps trying: {sent:?}");
    }

    #[test]
    fn a_failed_probe_keeps_the_pause_with_a_longer_wait() {
        let refused = verdict(&outcome(None, Some(DeliveryError::ConnectionRefused)), None);
        let p = Pause::start(&refused, 0).unwrap();
        let later = p.after_failed_probe(&Verdict::Open, 5_000);
        assert!(later.answered, "up, but not well: no connection checks");
        assert_eq!(later.next_check_at, 7_000);
        assert_eq!(later.since, 0);
    }

    #[test]
    fn a_taken_probe_holds_other_nodes_until_it_may_have_finished() {
        let p = Pause::start(
            &verdict(&outcome(None, Some(DeliveryError::ConnectionRefused)), None),
            0,
        )
        .unwrap();
        let taken = p.probe_taken(1_000, 30_000);
        assert!(!taken.due(30_000));
        assert!(taken.due(1_000 + 30_000 + PROBE_MARGIN_MS));
        assert_eq!(taken.backoff_ms, p.backoff_ms);
    }

    #[test]
    fn a_429_remembers_half_the_rate_that_drew_it() {
        let v = verdict(&outcome(Some(429), None), None);
        let p = Pause::start(&v, 0).unwrap().drawn_at(81.0);
        assert_eq!(p.suggested_rate_per_sec, Some(40));
        assert_eq!(p.clone().drawn_at(200.0).suggested_rate_per_sec, Some(40));
        assert_eq!(p.drawn_at(1.5).suggested_rate_per_sec, Some(1));
        let p = Pause::start(&verdict(&outcome(Some(503), None), None), 0).unwrap();
        assert_eq!(p.drawn_at(80.0).suggested_rate_per_sec, None);
        let later = Pause::start(&v, 0)
            .unwrap()
            .drawn_at(10.0)
            .after_failed_probe(&v, 5);
        assert_eq!(later.suggested_rate_per_sec, Some(5));
    }

    #[test]
    fn expiry_counts_from_creation() {
        assert!(!expired(0, 60, 60_000));
        assert!(expired(0, 60, 60_001));
        assert!(expired(0, 0, 1), "0: never held");
        assert_eq!(parse_retry_after(" 12 "), Some(12));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
