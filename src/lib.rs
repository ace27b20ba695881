//! `webhooks`: one binary that runs the EnableNow webhook system.
//!
//! The data's way through it:
//!
//! ```text
//! POST /api/v1/events ─► http::api (parse, validate) ─► store writer thread
//!        (one transaction per group of requests: event + pending deliveries, one fsync)
//!        ─► 202 ─► dispatcher (per-endpoint ready queues, fair share, rate limits)
//!        ─► bounded crossbeam channel ─► worker threads (claim, sign, one ureq POST)
//!        ─► outcome recorded through the same writer
//! ```
//!
//! The store, not memory, is the queue of record: `pending` deliveries live in redb and a
//! restart picks them up; anything handed to a worker when the process died is `interrupted`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod store;
pub mod tls;
