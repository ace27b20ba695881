//! The store contract: every operation the API, the portal and the dispatcher need, in the
//! domain's terms, grouped by job (one trait each); `Store` is all of them. An engine
//! implements the traits; callers hold an `Arc<dyn Store>` and never see the engine.
//!
//! Two engines implement them: `redb` (one file, one writer thread committing in groups; the
//! default) and `postgres` (several nodes on one database, claiming under leases;
//! `--database`). The rules every engine keeps are written on the traits.

mod error;
pub mod key_cache;
pub mod postgres;
pub mod redb;
mod types;

pub use error::{OpenError, Result, StoreError};
pub use types::{
    Backlog, BacklogHook, CommitHook, Faults, FileIdentity, IDEMPOTENCY_TTL_MS, IdempotencyKey,
    Ingested, KeyOwner, NewCustomer, NewKey, Owner, Page, PageQuery, Pruned, QueueCounts, Ready,
    RecoverWindow, TestSent, file_identity,
};

use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::domain::session::Session;
use crate::domain::stats::Counted;
use crate::domain::time::Clock;
use crate::domain::{
    ApiKeyRecord, Claim, Customer, Delivery, DeliveryFilter, Endpoint, EndpointPatch, Event,
    EventType, NewEndpoint, NewEvent, Outcome, Pause, SendJob,
};

/// The engine itself: its health, its clock, how it backs up, its lifecycle.
pub trait Engine {
    /// "redb" or "postgres".
    fn engine_name(&self) -> &'static str;
    /// Where the data lives, for the log (never a password).
    fn location(&self) -> String;
    /// Called after every commit with the deliveries it made ready; set once.
    fn on_commit(&self, hook: CommitHook);
    /// Called when another node made work (an engine with one process never calls it).
    fn on_backlog(&self, _hook: BacklogHook) {}
    /// Nodes sharing the queue, this one included: each enforces its part of an endpoint's
    /// share and rate limit.
    fn live_nodes(&self) -> usize {
        1
    }
    /// False while this node may not start a POST (its lease is not certain to outlast it).
    fn may_send(&self) -> bool {
        true
    }
    /// True once this node lost its place in the cluster: the server must stop.
    fn lost(&self) -> bool {
        false
    }
    /// True once writing failed for good: every later write answers `Unavailable`.
    fn is_failed(&self) -> bool;
    /// Rows written since start by the engine's single writer, if it has one: (for events,
    /// deliveries, claims and results; for queue counters and statistics).
    fn rows_written(&self) -> Option<(u64, u64)> {
        None
    }
    /// Finishes queued writes and stops.
    fn close(&self);
    /// Decides what is old (retention, idempotency expiry); tests move it forward.
    fn clock(&self) -> &Clock;
    /// Failures the integration tests switch on (feature `test-hooks`; never in a release).
    #[cfg(feature = "test-hooks")]
    fn faults(&self) -> &Faults;
    /// Writes a consistent copy of everything, as of one moment, to a new file at `dest`.
    fn backup_to(&self, dest: &Path) -> Result<()>;
    /// The live data file, which no backup may overwrite (`None` when there is no file).
    fn data_identity(&self) -> Option<FileIdentity>;
}

/// The admin token and the customers' API keys (stored as hashes only).
pub trait Keys {
    fn admin_hash(&self) -> Option<[u8; 32]>;
    /// Stores the admin token's hash, replacing any earlier one.
    fn set_admin_token(&self, token: &str) -> Result<()>;
    /// Stores the admin token's hash unless one is stored already (nodes starting together
    /// on a new database: one wins); true if this one was stored.
    fn init_admin_token(&self, token: &str) -> Result<bool>;
    /// The customer that owns this bearer key's hash; never blocks.
    fn key_owner(&self, hash: &[u8; 32]) -> Option<KeyOwner>;
    /// A key the cache does not know, looked up where every node's keys are (a key made on
    /// another node a moment ago), and remembered. Blocks. The data file's cache holds every
    /// key, so there it is the cache's answer.
    fn lookup_key(&self, hash: &[u8; 32]) -> Result<Option<KeyOwner>> {
        Ok(self.key_owner(hash))
    }
    /// True while this key still exists and belongs to this customer.
    fn key_still_owned(&self, key_id: &str, customer_id: &str) -> bool;
    /// Records a key's use, without waiting.
    fn touch_api_key(&self, key_id: &str, at: i64);
    /// A further key; the plaintext is returned only here.
    fn create_api_key(&self, customer_id: &str) -> Result<NewKey>;
    fn list_api_keys(&self, customer_id: &str) -> Result<Vec<ApiKeyRecord>>;
    fn delete_api_key(&self, customer_id: &str, key_id: &str) -> Result<()>;
}

/// The tenants. Deleting one removes everything it owns.
pub trait Customers {
    /// A new customer and its first API key (the plaintext is returned only here). Names
    /// are unique (422 `name_taken`).
    fn create_customer(&self, name: String) -> Result<NewCustomer>;
    fn get_customer(&self, id: &str) -> Result<Option<Customer>>;
    /// A customer by id, or else by name.
    fn find_customer(&self, name_or_id: &str) -> Result<Option<Customer>>;
    fn list_customers(&self, page: PageQuery) -> Result<Page<Customer>>;
    /// The customer that owns an endpoint, event or delivery (by its id), for the operator
    /// acting on a customer's object.
    fn owner_of(&self, id: &str) -> Result<Option<String>>;
    fn delete_customer(&self, id: &str) -> Result<()>;
    /// Takes up to `most` sends from the customer's budget of `per_minute` where every node
    /// takes from it: `Some(Ok(taken))`, or `Some(Err(wait))` with none left. `None` where one
    /// process serves (the data file): the HTTP side keeps the budget in memory.
    fn take_sends(
        &self,
        _customer_id: &str,
        _per_minute: u32,
        _most: u32,
    ) -> Result<Option<std::result::Result<u32, std::time::Duration>>> {
        Ok(None)
    }
    /// Gives back sends taken and not used (where `take_sends` is shared).
    fn refund_sends(&self, _customer_id: &str, _per_minute: u32, _n: u32) -> Result<()> {
        Ok(())
    }
}

/// The event-type catalog.
pub trait Catalog {
    /// A page of types: EnableNow's first in catalog order, then the operator's by name.
    fn list_event_types(&self, page: PageQuery) -> Result<Page<EventType>>;
    fn get_event_type(&self, name: &str) -> Result<Option<EventType>>;
    fn create_event_type(&self, et: EventType) -> Result<EventType>;

    /// Every event type, in the catalog's order (the portal's forms list them all).
    fn all_event_types(&self) -> Result<Vec<EventType>> {
        let mut all = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let page = self.list_event_types(PageQuery {
                before: before.as_deref(),
                limit: 250,
            })?;
            all.extend(page.data);
            match page.next {
                Some(n) => before = Some(n),
                None => return Ok(all),
            }
        }
    }
}

/// A customer's endpoints and the deliveries they ask for by hand.
pub trait Endpoints {
    /// Creates an endpoint unless the customer already has `max` (422 `limit_reached`),
    /// counted atomically with the creation.
    fn create_endpoint(&self, customer_id: &str, new: NewEndpoint, max: u32) -> Result<Endpoint>;
    /// The owner's endpoints, newest first.
    fn list_endpoints(&self, owner: Owner, page: PageQuery) -> Result<Page<Endpoint>>;
    fn get_endpoint(&self, customer_id: &str, id: &str) -> Result<Option<Endpoint>>;
    /// Disabling fails the endpoint's pending (non-test) deliveries with `endpoint_disabled`.
    fn update_endpoint(
        &self,
        customer_id: &str,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<Endpoint>;
    /// Deletes it with its deliveries; pending ones are never sent.
    fn delete_endpoint(&self, customer_id: &str, id: &str) -> Result<()>;
    /// A new secret; the old one keeps signing for `keep_old_for_secs`.
    fn rotate_secret(
        &self,
        customer_id: &str,
        id: &str,
        keep_old_for_secs: u64,
    ) -> Result<Endpoint>;
    /// A test event of `event_type` (default: the first subscribed) to this endpoint only.
    fn send_test(
        &self,
        customer_id: &str,
        id: &str,
        event_type: Option<String>,
    ) -> Result<TestSent>;
    /// Resends, once per event, oldest event first and at most the window's `max`, the
    /// latest failed or interrupted delivery in the window that did not succeed since and is
    /// not on its way; returns how many it resent and how many more it could.
    fn recover(&self, customer_id: &str, id: &str, window: RecoverWindow) -> Result<Recovery>;
}

/// What a recover did: deliveries resent, and how many more it would resend (beyond its
/// `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub made: usize,
    pub left: usize,
}

/// Events: durable ingest with fan-out, and the customer's event log.
pub trait Events {
    /// Commits the events and their pending deliveries durably (all or nothing) before it
    /// resolves. An Idempotency-Key seen within a day with the same body replays the first
    /// answer; with another body it is `IdempotencyConflict`.
    fn ingest(
        &self,
        batch: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> BoxFuture<'static, Result<Ingested>>;
    /// The owner's events, newest first.
    fn list_events(&self, owner: Owner, page: PageQuery) -> Result<Page<Event>>;
    /// One of the customer's events with all its deliveries, newest first.
    fn get_event(&self, customer_id: &str, id: &str) -> Result<Option<(Event, Vec<Delivery>)>>;
    /// The customer an event belongs to (for the operator's view).
    fn event_customer(&self, id: &str) -> Result<Option<String>>;
}

/// The delivery log.
pub trait DeliveryLog {
    /// The owner's deliveries, newest first. A customer's filter on another customer's
    /// endpoint or event finds nothing; a sparse filter may give a short page whose `next`
    /// carries on.
    fn list_deliveries(
        &self,
        owner: Owner,
        filter: &DeliveryFilter,
        page: PageQuery,
    ) -> Result<Page<Delivery>>;
    fn get_delivery(&self, customer_id: &str, id: &str) -> Result<Option<Delivery>>;
    /// The headers a delivery's POST was sent with (custom header values masked); `None`
    /// before it was sent, when it never was, or when it was sent before they were kept.
    fn delivery_request(&self, id: &str) -> Result<Option<Vec<(String, String)>>>;
    /// A new delivery of the same event to the endpoint's current URL and secret.
    fn resend_delivery(&self, customer_id: &str, id: &str) -> Result<Delivery>;
}

/// A claim's answer: the deliveries that were still pending and are now durably claimed.
pub type ClaimReply = Box<dyn FnOnce(Result<Vec<Claim>>) + Send>;

/// The queue of record, as the dispatcher and the workers use it. At most once: a delivery
/// is claimed (durably marked as possibly sent) before any POST, and a claim that was not
/// handed back is `interrupted` after a crash, never sent again by itself.
pub trait Queue {
    /// Claims these pending deliveries in one commit; `then` gets the ones that were still
    /// pending once that is durable.
    fn claim_then(&self, ids: Vec<Claim>, then: ClaimReply);
    /// Hands claims that no worker started back to `pending`.
    fn unclaim(&self, ids: Vec<Claim>) -> Result<()>;
    /// Up to `limit` pending delivery ids of one endpoint after `after`, oldest first.
    fn pending_of(&self, endpoint_id: &str, after: &str, limit: usize) -> Result<Vec<String>>;
    /// Every endpoint with pending deliveries, with its rate limit.
    fn endpoints_with_pending(&self) -> Result<Vec<Backlog>>;
    /// What a worker needs for a claimed delivery; `None` if it was deleted meanwhile.
    fn load_send_job(&self, delivery_id: &str) -> Result<Option<SendJob>>;
    /// Records a worker's result, without waiting.
    fn finish(&self, outcome: Outcome);
    /// A claimed delivery that could not be prepared: `failed`, error `internal`, not sent.
    fn fail_unsent(&self, endpoint_id: String, delivery_id: String, detail: String);
    /// At start: what the last process had claimed becomes `interrupted`. Returns how many.
    fn interrupt_in_flight(&self) -> Result<usize>;
    /// What waits and what is claimed, for /metrics, the status and the dashboard.
    fn queue_counts(&self) -> Result<QueueCounts>;
}

/// A change of an endpoint's pause, given the stored one (engines may call it again when a
/// transaction is retried).
pub type PauseChange = Box<dyn Fn(Option<&Pause>) -> Option<Pause> + Send + Sync>;

/// Pauses (`domain::hold`): stored on the endpoint, so a restart and every node see them.
pub trait Holds: Queue {
    /// Changes an endpoint's pause under the engine's write lock; the endpoint as stored
    /// after, or `None` if it is gone.
    fn change_pause(&self, endpoint_id: &str, change: PauseChange) -> Result<Option<Endpoint>>;
    /// Fails, oldest first, in one small transaction, up to `max` pending non-test
    /// deliveries of the endpoint created before `created_before` (any age with `None`) as
    /// `receiver_unavailable` with `detail`: never sent. Returns how many.
    fn fail_waiting(
        &self,
        endpoint_id: &str,
        created_before: Option<i64>,
        detail: &'static str,
        max: usize,
    ) -> Result<usize>;

    /// Fails everything waiting behind the endpoint's pause (by hand), in small
    /// transactions; how many.
    fn fail_all_waiting(&self, endpoint_id: &str) -> Result<usize> {
        const STEP: usize = 500;
        let mut n = 0;
        loop {
            let step = self.fail_waiting(
                endpoint_id,
                None,
                crate::domain::hold::FAILED_BY_HAND_DETAIL,
                STEP,
            )?;
            n += step;
            if step < STEP {
                return Ok(n);
            }
        }
    }

    /// Pending deliveries of the endpoint, counted up to `cap`.
    fn waiting(&self, endpoint_id: &str, cap: usize) -> Result<usize> {
        let mut n = 0;
        let mut after = String::new();
        while n < cap {
            let page = self.pending_of(endpoint_id, &after, (cap - n).min(1000))?;
            let Some(last) = page.last() else { break };
            after.clone_from(last);
            n += page.len();
        }
        Ok(n)
    }
}

/// Minutes (ms since the epoch) with their counters, oldest first.
pub type Minutes = Vec<(i64, crate::domain::stats::Counters)>;

/// Delivery statistics: per-minute counters (outcomes, duration histogram) that each commit
/// group adds to, never a scan of the deliveries.
pub trait Stats {
    /// The minutes of `scope` with counts, from `since` (inclusive) to `until` (exclusive),
    /// oldest first.
    fn minute_counters(&self, scope: Counted<'_>, since: i64, until: i64) -> Result<Minutes>;
}

/// Forgetting what is old, in small steps.
pub trait Retention {
    /// Deletes, in one small transaction, events created before `cutoff_ms` after `after`
    /// with their deliveries, reading at most `max`; an event with a delivery pending or in
    /// flight is kept.
    fn prune_before(&self, cutoff_ms: i64, after: &str, max: usize) -> Result<Pruned>;
    /// Forgets what has expired: Idempotency-Keys older than a day, portal sessions and
    /// sign-in links past their time, statistics older than they are kept; at most `max` of
    /// each per call. Returns the most of one kind it removed (`max`: call again).
    fn prune_expired(&self, max: usize) -> Result<usize>;
}

/// Portal sessions, stored (as hashes of their tokens) so that a restart signs no one out.
pub trait Sessions {
    fn put_session(&self, token_hash: [u8; 32], session: Session) -> Result<()>;
    /// The session, if it exists and has not expired.
    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>>;
    fn end_session(&self, token_hash: &[u8; 32]) -> Result<()>;
    /// Ends every portal session of this customer (the operator's "sign them out").
    fn end_customer_sessions(&self, customer_id: &str) -> Result<()>;
    /// Ends every operator session (the admin token changed, or the operator asked); how
    /// many.
    fn end_operator_sessions(&self) -> Result<usize>;
    /// The server's key for the tokens its sign-in forms carry: made on first use, stored,
    /// so the same after a restart and on every node.
    fn form_key(&self) -> Result<[u8; 32]>;
    /// Stores a one-time portal sign-in link (the hash of its token) for a customer.
    fn put_portal_link(
        &self,
        token_hash: [u8; 32],
        customer_id: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// Spends a portal link: the customer it signs in, if it exists, has not expired and its
    /// customer still exists; it cannot be used again either way.
    fn take_portal_link(&self, token_hash: &[u8; 32], now: i64) -> Result<Option<String>>;
    /// The customer a portal link would sign in, without spending it.
    fn peek_portal_link(&self, token_hash: &[u8; 32], now: i64) -> Result<Option<String>>;
    /// Counts a failed portal sign-in from `client` in the minute `minute` where every node
    /// sees it (an engine with one process keeps the count in memory instead: no-op).
    fn sign_in_failed(&self, _client: &str, _minute: i64) -> Result<()> {
        Ok(())
    }
    /// Failed sign-ins from `client` counted by every node since the minute `since`.
    fn sign_in_failures(&self, _client: &str, _since: i64) -> Result<u32> {
        Ok(0)
    }
}

/// Everything a store does.
pub trait Store:
    Engine
    + Keys
    + Customers
    + Catalog
    + Endpoints
    + Events
    + DeliveryLog
    + Queue
    + Holds
    + Stats
    + Retention
    + Sessions
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: Engine
        + Keys
        + Customers
        + Catalog
        + Endpoints
        + Events
        + DeliveryLog
        + Queue
        + Holds
        + Stats
        + Retention
        + Sessions
        + Send
        + Sync
{
}

/// The store as its callers hold it.
pub type SharedStore = Arc<dyn Store>;

/// The traits, for calling the store's operations: `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        Catalog, Customers, DeliveryLog, Endpoints, Engine, Events, Holds, Keys, Queue, Retention,
        Sessions, Stats, Store,
    };
}
