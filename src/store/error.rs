//! What can go wrong in a store: a failed operation (`StoreError`: not found, conflict,
//! unavailable for now, storage broken) and a store that cannot be opened (`OpenError`,
//! each saying what to do in one line).

use crate::domain::ValidationError;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Storage(String),
    /// The engine does not do this (a file backup of a PostgreSQL deployment).
    #[error("{0}")]
    NotSupported(String),
}

/// Why a store could not be opened; each says what to do in one line.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the data file {0} is already in use by another webhooks process")]
    InUse(String),
    #[error(
        "the data file {path} was written by a newer webhooks (schema {found}); this binary reads schema {supported} or older: upgrade webhooks"
    )]
    TooNew {
        path: String,
        found: u64,
        supported: u64,
    },
    #[error("cannot open the data file {path}: {reason}")]
    Other { path: String, reason: String },
    #[error("cannot use the database {location}: {reason}")]
    Database { location: String, reason: String },
    #[error(
        "the database {location} was migrated by a newer webhooks (schema {found}); this binary knows schema {supported} or older: upgrade webhooks"
    )]
    DatabaseTooNew {
        location: String,
        found: u64,
        supported: u64,
    },
    #[error(
        "node id {0:?} is held by a live webhooks process; stop it, or give this one another --node-id"
    )]
    NodeIdTaken(String),
    #[error(
        "this machine's clock is {0} ms off the database's (at most 1000 allowed): synchronise it (NTP) and start again"
    )]
    ClockSkew(i64),
}
