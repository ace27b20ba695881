//! Customers (the tenants) and the API keys they authenticate with.

use serde::{Deserialize, Serialize};

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

impl ApiKeyRecord {
    /// The record of a new key (its plaintext is never stored).
    pub fn new(id: String, customer_id: &str, key: &super::ApiKey, now: i64) -> Self {
        ApiKeyRecord {
            id,
            customer_id: customer_id.to_owned(),
            prefix: key.display_prefix(),
            hash: super::secret::hex(&key.hash()),
            created_at: now,
            last_used_at: None,
        }
    }
}
