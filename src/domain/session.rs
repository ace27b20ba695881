//! Portal sessions: who signed in and the form token that goes with it. Stored under a hash
//! of the session's cookie token; never with a secret.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Who {
    Customer {
        customer_id: String,
        key_id: String,
    },
    /// Signed in through a one-time portal link the operator made (no API key involved).
    Linked {
        customer_id: String,
    },
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub who: Who,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}
