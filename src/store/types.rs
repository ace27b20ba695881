//! The values the store contract passes besides domain records: pages and whose records a
//! list reads, deliveries made ready by a commit, queue counts, a prune step, a test send,
//! key owners, idempotency keys, what an ingest came to, a file's identity, and the faults a
//! test can switch on.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::domain::{Accepted, ApiKeyRecord, Customer, Delivery, Endpoint};

/// One page of a list: the rows and the id (or name) to pass as `before` for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next: Option<String>,
}

/// Whose records a list reads: one customer's (an API key's, the portal's), or every
/// customer's (the operator's view, newest first across all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Customer(&'a str),
    Everyone,
}

impl<'a> Owner<'a> {
    /// A customer's scope, or everyone's when there is none (the admin token's).
    pub fn of(customer: Option<&'a str>) -> Self {
        customer.map_or(Owner::Everyone, Owner::Customer)
    }

    /// The customer, or `None` for everyone.
    pub fn customer(self) -> Option<&'a str> {
        match self {
            Owner::Customer(c) => Some(c),
            Owner::Everyone => None,
        }
    }
}

/// A key just made: its record, and its plaintext, which is never stored and shown once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub record: ApiKeyRecord,
    pub plaintext: String,
}

/// A customer just made, with its first key.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub customer: Customer,
    pub key: NewKey,
}

/// An endpoint with pending deliveries, and its rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub endpoint_id: String,
    pub rate_limit_per_sec: Option<u32>,
}

/// Deliveries in the queue: waiting, and claimed (possibly being sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: u64,
    pub claimed: u64,
}

/// What one step of pruning came to: the last event it read (to carry on after) and how many
/// events went; `last` is `None` once the old events are all read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub last: Option<String>,
    pub removed: usize,
}

/// What a recover resends: the failed and interrupted deliveries created from `since` to
/// `until` (ms since the epoch; open-ended with `None`), at most `max` (0: only counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverWindow {
    pub since: i64,
    pub until: Option<i64>,
    pub max: usize,
}

/// A test send: the test event and its one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSent {
    pub event_id: String,
    pub delivery_id: String,
}

#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    pub before: Option<&'a str>,
    pub limit: usize,
}

/// A delivery that a commit made ready to send.
#[derive(Debug, Clone)]
pub struct Ready {
    pub endpoint_id: String,
    pub delivery_id: String,
    pub rate_limit_per_sec: Option<u32>,
}

impl Ready {
    /// Not a delivery: the endpoint's pause ended (by hand, or a new URL), so the dispatcher
    /// looks again at once instead of at its next check.
    pub fn resumed(endpoint: &Endpoint) -> Self {
        Ready {
            endpoint_id: endpoint.id.clone(),
            delivery_id: String::new(),
            rate_limit_per_sec: endpoint.rate_limit_per_sec,
        }
    }

    pub fn is_resumed(&self) -> bool {
        self.delivery_id.is_empty()
    }

    pub fn of(d: &Delivery, endpoint: &Endpoint) -> Self {
        Ready {
            endpoint_id: d.endpoint_id.clone(),
            delivery_id: d.id.clone(),
            rate_limit_per_sec: endpoint.rate_limit_per_sec,
        }
    }
}

/// Called after every commit that made deliveries ready (the dispatcher's wake-up).
pub type CommitHook = Box<dyn Fn(Vec<Ready>) + Send + Sync>;

/// Called when other nodes made work: endpoints with pending deliveries, with their rate
/// limits, to be read from the store.
pub type BacklogHook = Box<dyn Fn(Vec<Backlog>) + Send + Sync>;

/// Which customer a bearer API key belongs to. Kept in memory so authentication never blocks.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key_id: String,
    pub customer_id: String,
    /// When `last_used_at` was last written (ms), so it is written at most once a minute.
    pub touched: Arc<AtomicI64>,
}

/// An Idempotency-Key with what it protects: scoped to the customer, remembered 24 hours.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub customer_id: String,
    pub key: String,
    /// Hex SHA-256 of the request body.
    pub request_hash: String,
}

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// What an ingest came to: new events, or the events a replayed Idempotency-Key made.
#[derive(Debug, Clone)]
pub enum Ingested {
    New(Vec<Accepted>),
    Replayed(Vec<Accepted>),
}

/// A file's place on its file system, the same whatever path or link names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
}

/// The identity of the file at `path` (following links).
pub fn file_identity(path: &Path) -> std::io::Result<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(FileIdentity {
        device: m.dev(),
        inode: m.ino(),
    })
}

/// Failures a test can switch on (feature `test-hooks`), to see that the callers above the
/// store cope: no mounts or full disks needed. Without the feature no switch can be turned on.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next commit fails as a full disk would.
    pub commit: AtomicBool,
    /// Loading a claimed delivery for its worker fails.
    pub load: AtomicBool,
}

impl Faults {
    #[cfg(feature = "test-hooks")]
    pub fn fail_commits(&self, on: bool) {
        self.commit.store(on, Ordering::Release);
    }

    #[cfg(feature = "test-hooks")]
    pub fn fail_loads(&self, on: bool) {
        self.load.store(on, Ordering::Release);
    }

    /// Whether a switch is on; always off without the tests' feature, so the checks cost
    /// nothing in a release.
    pub fn on(flag: &AtomicBool) -> bool {
        cfg!(feature = "test-hooks") && flag.load(Ordering::Acquire)
    }
}
