//! The records kept in the tables: the rarely written ones (customers, endpoints, keys,
//! sessions) as JSON, the ones written per event and per delivery as compact binary
//! (postcard), and the few records only this engine keeps.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use crate::domain::customer::{ApiKeyRecord, Customer};
pub use crate::domain::delivery::Delivery;
pub use crate::domain::endpoint::Endpoint;
pub use crate::domain::event::{Event, EventType};
use crate::domain::{DeliveryError, DeliveryStatus, Outcome};

use crate::store::StoreError;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Storage(format!("corrupt record: {e}")))
}

/// Compact binary: for the records written per event and per delivery.
pub fn encode_bin<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("records serialise")
}

pub fn decode_bin<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Storage(format!("corrupt record: {e}")))
}

/// An event as stored: its wire body once, as bytes (not a JSON string inside JSON).
#[derive(Serialize, Deserialize)]
pub struct EventRow {
    pub customer_id: String,
    pub event: String,
    pub test: bool,
    pub created_at: i64,
    pub body: String,
    pub data_start: u32,
}

impl EventRow {
    pub fn of(e: &Event) -> Self {
        EventRow {
            customer_id: e.customer_id.clone(),
            event: e.event.clone(),
            test: e.test,
            created_at: e.created_at,
            body: e.body.clone(),
            data_start: e.data_start as u32,
        }
    }

    pub fn into_event(self, id: &str) -> Event {
        Event {
            id: id.to_owned(),
            customer_id: self.customer_id,
            event: self.event,
            test: self.test,
            created_at: self.created_at,
            body: self.body,
            data_start: self.data_start as usize,
        }
    }
}

/// What a delivery is, written once when it is made.
#[derive(Serialize, Deserialize)]
pub struct DeliveryRow {
    pub event_id: String,
    pub endpoint_id: String,
    pub customer_id: String,
    pub event: String,
    pub url: String,
    pub created_at: i64,
    pub resend_of: Option<String>,
    pub test: bool,
}

impl DeliveryRow {
    pub fn of(d: &Delivery) -> Self {
        DeliveryRow {
            event_id: d.event_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            customer_id: d.customer_id.clone(),
            event: d.event.clone(),
            url: d.url.clone(),
            created_at: d.created_at,
            resend_of: d.resend_of.clone(),
            test: d.test,
        }
    }

    /// The delivery as it stands: with its result if it has one, else `status`.
    pub fn into_delivery(
        self,
        id: &str,
        result: Option<ResultRow>,
        status: DeliveryStatus,
    ) -> Delivery {
        let mut d = Delivery {
            id: id.to_owned(),
            event_id: self.event_id,
            endpoint_id: self.endpoint_id,
            customer_id: self.customer_id,
            event: self.event,
            url: self.url,
            status,
            response_status: None,
            response_body: None,
            error: None,
            error_detail: None,
            duration_ms: None,
            created_at: self.created_at,
            started_at: None,
            finished_at: None,
            resend_of: self.resend_of,
            test: self.test,
        };
        if let Some(r) = result {
            d.status = r.status;
            if let Some(url) = r.url {
                d.url = url;
            }
            d.response_status = r.response_status;
            d.response_body = r.response_body;
            d.error = r.error;
            d.error_detail = r.error_detail;
            d.duration_ms = r.duration_ms;
            d.started_at = r.started_at;
            d.finished_at = r.finished_at;
        }
        d
    }
}

/// A worker's result: (delivery, endpoint, how it ended, the headers it was sent with as
/// JSON, if it was sent).
pub type Finished = (String, String, ResultRow, Option<Vec<u8>>);

/// How a delivery ended: inserted once, never rewritten.
#[derive(Clone, Serialize, Deserialize)]
pub struct ResultRow {
    pub status: DeliveryStatus,
    /// The URL it went to, when that is not the one it was made for (the endpoint changed).
    pub url: Option<String>,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<DeliveryError>,
    pub error_detail: Option<String>,
    pub duration_ms: Option<u64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl ResultRow {
    pub fn of(outcome: Outcome) -> Self {
        ResultRow {
            status: outcome.status(),
            url: Some(outcome.url),
            response_status: outcome.response_status,
            response_body: outcome.response_body,
            error: outcome.error,
            error_detail: outcome.error_detail,
            duration_ms: Some(outcome.duration_ms),
            started_at: Some(outcome.started_at),
            finished_at: Some(outcome.finished_at),
        }
    }

    /// Ended without a POST (interrupted, disabled, not prepared).
    pub fn unsent(status: DeliveryStatus, error: DeliveryError, detail: &str, now: i64) -> Self {
        ResultRow {
            status,
            url: None,
            response_status: None,
            response_body: None,
            error: Some(error),
            error_detail: Some(detail.to_owned()),
            duration_ms: None,
            started_at: None,
            finished_at: Some(now),
        }
    }
}

/// An endpoint's claim mark (see `tables::CLAIMS`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClaimMark {
    /// The newest delivery claimed ("" before the first).
    pub through: String,
    /// Every delivery below this has a result or is in `LATE`: recovery reads from here.
    pub scan_from: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Hex SHA-256 of the request body.
    pub request_hash: String,
    /// The events the first request made: a replay answers with them.
    pub accepted: Vec<crate::domain::Accepted>,
    pub created_at: i64,
}
