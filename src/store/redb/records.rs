//! The records kept in the tables, serialised as JSON: the domain's objects, and the few
//! records only this engine keeps.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use crate::domain::customer::{ApiKeyRecord, Customer};
pub use crate::domain::delivery::Delivery;
pub use crate::domain::endpoint::Endpoint;
pub use crate::domain::event::{Event, EventType};

use crate::store::StoreError;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Storage(format!("corrupt record: {e}")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Hex SHA-256 of the request body.
    pub request_hash: String,
    /// The events the first request made: a replay answers with them.
    pub accepted: Vec<crate::domain::Accepted>,
    pub created_at: i64,
}
