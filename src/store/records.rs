//! The records kept in the tables, serialised as JSON: what the store knows of each object.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::domain::{DeliveryError, DeliveryStatus, Headers};

use super::StoreError;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Storage(format!("corrupt record: {e}")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub customer_id: String,
    pub prefix: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
    pub description: String,
    /// The example `data`, as JSON text.
    pub example: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OldSecret {
    pub secret: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub customer_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub secret: String,
    pub old_secret: Option<OldSecret>,
    pub rate_limit_per_sec: Option<u32>,
    pub headers: Headers,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Endpoint {
    /// The secrets a delivery is signed with at `now`: the current one, and the old one while kept.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut v = vec![self.secret.as_str()];
        if let Some(old) = &self.old_secret
            && old.expires_at > now
        {
            v.push(old.secret.as_str());
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub customer_id: String,
    pub event: String,
    pub test: bool,
    pub created_at: i64,
    /// The exact request body sent to receivers: `{"event":"…","data":…}`.
    pub body: String,
    /// Where `data` starts in `body` (it ends one byte before the body's end).
    pub data_start: usize,
}

impl Event {
    pub fn wire_body(event: &str, data: &str) -> (String, usize) {
        let name = serde_json::to_string(event).expect("a string serialises");
        let head = format!("{{\"event\":{name},\"data\":");
        let start = head.len();
        let mut body = head;
        body.push_str(data);
        body.push('}');
        (body, start)
    }

    pub fn data(&self) -> &str {
        &self.body[self.data_start..self.body.len() - 1]
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
    /// As last written: a `pending` record in the `sending` table is claimed (`sending`).
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Hex SHA-256 of the request body.
    pub request_hash: String,
    /// The answer given the first time, as JSON text.
    pub response: String,
    pub created_at: i64,
}

/// The result of one finished POST, recorded by a worker.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: String,
    pub url: String,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<DeliveryError>,
    pub error_detail: Option<String>,
    pub duration_ms: u64,
    pub started_at: i64,
    pub finished_at: i64,
}

impl Outcome {
    pub fn status(&self) -> DeliveryStatus {
        match self.response_status {
            Some(s) if (200..300).contains(&s) => DeliveryStatus::Succeeded,
            _ => DeliveryStatus::Failed,
        }
    }
}
