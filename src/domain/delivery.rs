//! Delivery states and the reasons a delivery failed without an HTTP status.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
        }
    }
}
