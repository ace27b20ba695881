//! `webhooks`: one binary that runs the EnableNow webhook system.
//!
//! The data's way through it:
//!
//! ```text
//! POST /api/v1/events ─► http::api (parse, validate into domain types) ─► store (the contract)
//!        redb engine: its writer thread commits the event and its pending deliveries with
//!        the other changes queued meanwhile (one fsync), then answers (postgres engine: one
//!        transaction, with a NOTIFY that wakes the other nodes)
//!        ─► 202 ─► delivery::dispatcher (per-endpoint ready queues, fair share, rate limits;
//!        claims committed ahead) ─► bounded crossbeam channel ─► worker threads
//!        (deliver_one: sign, one ureq POST through delivery::sender) ─► result recorded
//! ```
//!
//! The map:
//! - `domain/`: customers, endpoints, events, deliveries, sessions, ids, validated input,
//!   signing. No storage, no HTTP.
//! - `store/`: the contract (`store/mod.rs`, a trait per job), the key cache both engines
//!   fill, and one folder per engine: `store/redb/` (tables and schema, records, the writer,
//!   one file per job) and `store/postgres/` (migrations, the node's lease and listener, the
//!   batcher of claims and results, one file per job, `import` from a data file).
//! - `delivery/`: the pool (`Pool`), the dispatcher's fair lanes, the worker step, the one
//!   outbound HTTP client (`WebhookSender`) with its resolver and address filter.
//! - `http/`: the server, the guard (connections, read deadline), limits and throttles,
//!   bearer auth, `api/` (one file per resource: its handlers, its `configure` and its part
//!   of the OpenAPI document, `Doc`; `api::RESOURCES` lists them), `portal/` (one file per
//!   page family), embedded assets. Handlers reach the store through `AppState::run` alone.
//!
//! Adding a store operation: the rule in `domain/` (pure, unit-tested), the operation on
//! the trait of its job in `store/mod.rs`, one read or write of it in each engine. Adding a
//! route: the handler, its `#[utoipa::path]`, one line in its file's `configure` and `Doc`.
//! - `serve.rs` (start, bootstrap, retention, orderly stop), `cli.rs` and `client/` (the
//!   client commands), `config.rs` (serve flags), `metrics.rs`, `tls.rs`.
//!
//! The store, not memory, is the queue of record: `pending` deliveries live in the store and
//! a restart picks them up; anything claimed when the process died is `interrupted`.
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
