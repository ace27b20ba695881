//! Deliveries: one POST of one event to one endpoint, its states, its outcome, and the
//! reasons a delivery failed without an HTTP status.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::endpoint::Endpoint;
use super::event::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting in the store for a worker.
    Pending,
    /// Handed to a worker; it may have been sent.
    Sending,
    Succeeded,
    Failed,
    /// The process stopped while it might have been sent; never sent again by itself.
    Interrupted,
}

impl DeliveryStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Why a delivery got no HTTP status. `null` on the wire whenever a status came back.
/// Why a pending delivery of a disabled endpoint failed.
pub const DISABLED_DETAIL: &str = "the endpoint was disabled before this delivery was sent";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryError {
    Timeout,
    ConnectionRefused,
    Dns,
    Tls,
    Connection,
    Blocked,
    EndpointDisabled,
    Interrupted,
    /// The server could not prepare the request (its records could not be read); not sent.
    Internal,
    /// Waited behind a pause (its receiver down) longer than the endpoint's `max_hold_secs`,
    /// or the waiting ones were failed by hand; never sent.
    ReceiverUnavailable,
}

impl DeliveryError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ConnectionRefused => "connection_refused",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Connection => "connection",
            Self::Blocked => "blocked",
            Self::EndpointDisabled => "endpoint_disabled",
            Self::Interrupted => "interrupted",
            Self::Internal => "internal",
            Self::ReceiverUnavailable => "receiver_unavailable",
        }
    }
}

impl Delivery {
    /// A new pending delivery of `event` to `endpoint` (its current URL).
    pub fn pending(
        ids: &super::IdGen,
        event: &Event,
        endpoint: &Endpoint,
        resend_of: Option<String>,
        now: i64,
    ) -> Self {
        Delivery {
            id: ids.next(super::IdKind::Delivery),
            event_id: event.id.clone(),
            endpoint_id: endpoint.id.clone(),
            customer_id: event.customer_id.clone(),
            event: event.event.clone(),
            url: endpoint.url.clone(),
            status: DeliveryStatus::Pending,
            response_status: None,
            response_body: None,
            error: None,
            error_detail: None,
            duration_ms: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            resend_of,
            test: event.test,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub customer_id: String,
    pub event: String,
    pub url: String,
    /// Where it stands: `pending` (waiting), `sending` (claimed: it may be under way), or how
    /// it ended.
    pub status: DeliveryStatus,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<DeliveryError>,
    pub error_detail: Option<String>,
    pub duration_ms: Option<u64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub resend_of: Option<String>,
    /// Deliveries of test events go out even to a disabled endpoint.
    pub test: bool,
}

/// The result of one finished POST, recorded by a worker.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: String,
    /// The endpoint it went to: results are counted per endpoint.
    pub endpoint_id: String,
    pub url: String,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<DeliveryError>,
    pub error_detail: Option<String>,
    pub duration_ms: u64,
    pub started_at: i64,
    pub finished_at: i64,
    /// The answer's `Retry-After` in seconds (decides a pause; not stored).
    pub retry_after: Option<u64>,
    /// The request's headers as sent, custom header values masked, as the stores keep them
    /// (`SentHeaders` writes and reads it); `None` when nothing was sent.
    pub request_headers: Option<String>,
    /// The receiver closed the connection after its answer (pacing; not stored).
    pub closes: bool,
}

/// What a custom header's value shows as on a delivery page: it may hold a credential.
pub const MASKED: &str = "••••••";

/// The headers one POST was sent with, as a delivery keeps them: a line a header, `name: value`
/// for the standard ones and the name alone for a custom header, whose value may hold a
/// credential and is not kept (it shows as `MASKED`). Cheaper to write on every delivery than
/// JSON; header names hold no `:` and values no line break, so the lines cannot be confused.
pub struct SentHeaders;

impl SentHeaders {
    /// The kept form of `headers`, of which the first `standard` are ours (content type,
    /// signature) and the rest the endpoint's custom ones.
    pub fn encode(headers: &[(&str, &str)], standard: usize) -> String {
        let len: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 3).sum();
        let mut out = String::with_capacity(len);
        for (i, (name, value)) in headers.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(name);
            if i < standard {
                out.push_str(": ");
                out.push_str(value);
            }
        }
        out
    }

    /// The headers read back from what `encode` wrote (or from the JSON list of pairs that
    /// rows written before it hold).
    pub fn decode(kept: &[u8]) -> Option<Vec<(String, String)>> {
        if kept.first() == Some(&b'[') {
            return serde_json::from_slice(kept).ok();
        }
        let text = std::str::from_utf8(kept).ok()?;
        Some(
            text.lines()
                .map(|line| match line.split_once(": ") {
                    Some((name, value)) => (name.to_owned(), value.to_owned()),
                    None => (line.to_owned(), MASKED.to_owned()),
                })
                .collect(),
        )
    }
}

impl Outcome {
    pub fn status(&self) -> DeliveryStatus {
        match self.response_status {
            Some(s) if (200..300).contains(&s) => DeliveryStatus::Succeeded,
            _ => DeliveryStatus::Failed,
        }
    }
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// The event type (`transactions.fetched`).
    pub event: Option<String>,
    /// Made at or after this time (ms).
    pub since: Option<i64>,
    /// Made before this time (ms).
    pub until: Option<i64>,
    /// Made after this delivery (its id): the page is oldest first, and its `next` is the
    /// `after` of the following one (what `deliveries --follow` reads).
    pub after: Option<String>,
}

impl DeliveryFilter {
    /// The filters a stored delivery is checked against one by one (owner and index aside).
    pub fn keeps(&self, d: &Delivery) -> bool {
        self.event_id.as_ref().is_none_or(|e| *e == d.event_id)
            && self.status.is_none_or(|s| s == d.status)
            && self.event.as_ref().is_none_or(|e| *e == d.event)
            && self.since.is_none_or(|t| d.created_at >= t)
            && self.until.is_none_or(|t| d.created_at < t)
    }
}

/// One pending delivery of one endpoint, as the dispatcher asks the queue to claim it, and
/// as the queue answers, hands back or the dispatcher hands out what was claimed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    pub endpoint_id: String,
    pub delivery_id: String,
}

impl Claim {
    pub fn new(endpoint_id: impl Into<String>, delivery_id: impl Into<String>) -> Self {
        Self {
            endpoint_id: endpoint_id.into(),
            delivery_id: delivery_id.into(),
        }
    }
}

/// What a worker needs to send one delivery.
#[derive(Debug, Clone)]
pub struct SendJob {
    pub delivery: Delivery,
    pub endpoint: Endpoint,
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_headers_read_back_as_written_with_custom_values_masked() {
        let headers = [
            ("content-type", "application/json"),
            ("webhook-id", "msg_1"),
            ("webhook-signature", "v1,abc= v1,def="),
            ("x-api-key", "secret: with a colon"),
        ];
        let kept = SentHeaders::encode(&headers, 3);
        assert!(!kept.contains("secret"));
        let read = SentHeaders::decode(kept.as_bytes()).unwrap();
        let want: Vec<(String, String)> = [
            ("content-type", "application/json"),
            ("webhook-id", "msg_1"),
            ("webhook-signature", "v1,abc= v1,def="),
            ("x-api-key", MASKED),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(read, want);
    }

    #[test]
    fn rows_kept_as_json_before_still_read() {
        let old = br#"[["content-type","application/json"],["x-api-key","\u2022"]]"#;
        let read = SentHeaders::decode(old).unwrap();
        assert_eq!(read[1].0, "x-api-key");
    }
}
