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
