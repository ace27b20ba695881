//! The PostgreSQL engine: any number of nodes on one database make one system.
//!
//! Design in a few lines. Every operation is one transaction on a pooled connection (r2d2);
//! PostgreSQL's own commit is the durable point. The hot path — claims and results — goes
//! through one batcher thread per node that commits many at once. A delivery is claimed with
//! `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)`, so exactly one node gets it, before any
//! POST. Each node holds a lease in `nodes`, renewed by a heartbeat and judged by the
//! database's `now()`; a node sends only while its last renewal is younger than
//! (lease − request timeout) by its monotonic clock, and every node turns the claims of a
//! node whose lease lapsed into `interrupted`. A session-level advisory lock per node id
//! tells a live holder from a dead one, so a restarted node takes its id back at once and
//! interrupts its own claims. Commits that make work send `NOTIFY webhooks_work` with the
//! endpoints; every node `LISTEN`s and polls as a backstop.

mod batcher;
mod catalog;
mod connect;
mod customers;
mod endpoints;
mod events;
mod group;
mod import;
mod keys;
mod log;
mod node;
mod queue;
mod retention;
mod rows;
mod schema;
mod sessions;
mod stats;

use connect::{Connector, explain, parse_url, warn_without_sync_standby};

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::Transaction;
use postgres::types::Type;
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::key_cache::KeyCache;
use super::{
    BacklogHook, CommitHook, Engine, Faults, FileIdentity, OpenError, Ready, Result, StoreError,
};
use crate::domain::IdGen;
use crate::domain::time::Clock;

pub use import::{ImportError, Imported, import};
pub use schema::SCHEMA_VERSION;

type Manager = PostgresConnectionManager<MakeRustlsConnect>;
type Conn = PooledConnection<Manager>;

/// The notification channel that announces new pending work: `node|endpoint[:rate],…`.
const WORK_CHANNEL: &str = "webhooks_work";
/// The notification channel that says API keys or the admin token changed.
const KEYS_CHANNEL: &str = "webhooks_keys";
/// Connections each node keeps for requests (the batcher, heartbeat and listener have their own).
const POOL_SIZE: u32 = 16;

/// What a node needs to know to open the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub node_id: String,
    /// How long a node's claims stay its own without a heartbeat.
    pub lease: Duration,
    /// The longest a POST may take: a node sends only while its lease has this much left.
    pub request_timeout: Duration,
}

pub struct PgStore {
    pool: Pool<Manager>,
    connect: Connector,
    ids: Arc<IdGen>,
    keys: Arc<KeyCache>,
    commit_hook: Arc<OnceLock<CommitHook>>,
    backlog_hook: Arc<OnceLock<BacklogHook>>,
    location: String,
    clock: Clock,
    faults: Arc<Faults>,
    failed: Arc<AtomicBool>,
    batcher: batcher::Batcher,
    node: Arc<node::Node>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    /// Itself, for work that outlives a call (an ingest on a blocking thread).
    me: OnceLock<Weak<PgStore>>,
}

impl PgStore {
    /// Connects, checks the clock, migrates under an advisory lock, takes this node's
    /// identity and lease, and starts the node's threads.
    pub fn open(url: &str, options: PgOptions) -> Result<Arc<PgStore>, OpenError> {
        let (config, location, tls) = parse_url(url)?;
        let shown = location.clone();
        let db = |reason: String| OpenError::Database {
            location: shown.clone(),
            reason,
        };
        let connect = Connector { config, tls };
        let mut admin = connect.connect().map_err(|e| db(e.to_string()))?;
        if connect.config.get_hosts().len() > 1 {
            warn_without_sync_standby(&mut admin);
        }
        node::check_clock(&mut admin).map_err(|e| match e {
            node::ClockError::Skew(ms) => OpenError::ClockSkew(ms),
            node::ClockError::Store(e) => db(e.to_string()),
        })?;
        schema::prepare(&mut admin).map_err(|e| match e {
            schema::PrepareError::TooNew(found) => OpenError::DatabaseTooNew {
                location: shown.clone(),
                found,
                supported: SCHEMA_VERSION,
            },
            schema::PrepareError::Other(reason) => db(reason),
        })?;
        let node = node::Node::take(admin, &options).map_err(|e| match e {
            node::TakeError::Held(id) => OpenError::NodeIdTaken(id),
            node::TakeError::Store(e) => db(e.to_string()),
        })?;
        let manager = PostgresConnectionManager::new(connect.config.clone(), connect.tls.clone());
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(2))
            // A broken connection shows as an error once and is replaced: no round trip
            // per checkout to test it.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| db(e.to_string()))?;
        let failed = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Faults::default());
        let commit_hook = Arc::new(OnceLock::new());
        let node = Arc::new(node);
        let batcher = batcher::Batcher::start(
            connect.clone(),
            node.clone(),
            faults.clone(),
            failed.clone(),
            commit_hook.clone(),
        );
        let store = PgStore {
            pool,
            connect,
            ids: Arc::new(IdGen::new()),
            keys: Arc::new(KeyCache::default()),
            commit_hook,
            backlog_hook: Arc::new(OnceLock::new()),
            location,
            clock: Clock::default(),
            faults,
            failed,
            batcher,
            node,
            threads: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
            me: OnceLock::new(),
        };
        keys::load(&store).map_err(|e| db(e.to_string()))?;
        let store = Arc::new(store);
        let _ = store.me.set(Arc::downgrade(&store));
        store.start_threads();
        Ok(store)
    }

    fn start_threads(self: &Arc<Self>) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let heartbeat = {
            let (node, connect, stop) =
                (self.node.clone(), self.connect.clone(), self.stop.clone());
            std::thread::Builder::new()
                .name("pg-heartbeat".into())
                .spawn(move || node::heartbeat(&node, &connect, &stop))
                .expect("spawn the heartbeat")
        };
        threads.push(heartbeat);
        let weak = Arc::downgrade(self);
        let listener = std::thread::Builder::new()
            .name("pg-listener".into())
            .spawn(move || node::listen(&weak))
            .expect("spawn the listener");
        threads.push(listener);
    }

    fn me(&self) -> Option<Arc<PgStore>> {
        self.me.get().and_then(Weak::upgrade)
    }

    fn conn(&self) -> Result<Conn> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(format!("cannot reach the database: {e}")))
    }

    /// Runs `f` in a read-only snapshot.
    fn read<T>(&self, f: impl FnOnce(&mut Transaction) -> Result<T>) -> Result<T> {
        let mut c = self.conn()?;
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()?;
        let t = f(&mut tx)?;
        tx.commit()?;
        Ok(t)
    }

    /// Runs `f` in a transaction and commits it; the deliveries it made ready are announced to
    /// this node's dispatcher after the commit (and to other nodes by the commit's NOTIFY).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Transaction, &mut Vec<Ready>) -> Result<T>,
    ) -> Result<T> {
        if self.failed.load(Ordering::Acquire) {
            // Only an injected fault marks the store failed here (an unreachable database is
            // an outage, answered 503 until it is back): lifted, writes resume.
            if Faults::on(&self.faults.commit) {
                return Err(failed_error());
            }
            self.failed.store(false, Ordering::Release);
            tracing::warn!("the database can be written again: writes resume");
        }
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        let mut ready = Vec::new();
        let t = f(&mut tx, &mut ready)?;
        if !ready.is_empty() {
            notify_work(&mut tx, &self.node.id, &ready)?;
        }
        if Faults::on(&self.faults.commit) {
            let _ = tx.rollback();
            tracing::error!(
                "commit to the database failed (injected); refusing writes until it works"
            );
            self.failed.store(true, Ordering::Release);
            return Err(failed_error());
        }
        tx.commit()?;
        if !ready.is_empty()
            && let Some(hook) = self.commit_hook.get()
        {
            hook(ready);
        }
        Ok(t)
    }
}

fn failed_error() -> StoreError {
    StoreError::Unavailable(
        "a write to the database failed; writes resume by themselves once it takes one again"
            .into(),
    )
}

/// Tells every node which endpoints got work (delivered at commit).
fn notify_work(tx: &mut Transaction, node_id: &str, ready: &[Ready]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut payload = format!("{node_id}|");
    for r in ready {
        if !seen.insert(r.endpoint_id.as_str()) {
            continue;
        }
        if payload.len() > 7000 {
            // Too many to name: every node looks at the whole queue.
            payload = format!("{node_id}|*");
            break;
        }
        if !payload.ends_with('|') {
            payload.push(',');
        }
        payload.push_str(&r.endpoint_id);
        if let Some(rate) = r.rate_limit_per_sec {
            payload.push_str(&format!(":{rate}"));
        }
    }
    tx.query_typed(
        "SELECT pg_notify($1, $2)",
        &[(&WORK_CHANNEL, Type::TEXT), (&payload, Type::TEXT)],
    )?;
    Ok(())
}

/// Whether PostgreSQL's answer means "not now" rather than "never": a lost or refused
/// connection, the server shutting down or starting, no free slots. Those are 503 with
/// `Retry-After` to a client, never 500.
fn is_transient(e: &postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        return true;
    };
    let code = db.code().code();
    code.starts_with("08") // connection exception
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || code == "53300" // too many connections
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if e.is_closed() || is_transient(&e) {
            StoreError::Unavailable(format!("the database connection failed: {}", explain(&e)))
        } else {
            StoreError::Storage(format!("database error: {}", explain(&e)))
        }
    }
}

impl Engine for PgStore {
    fn engine_name(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn on_commit(&self, hook: CommitHook) {
        let _ = self.commit_hook.set(hook);
    }

    fn on_backlog(&self, hook: BacklogHook) {
        let _ = self.backlog_hook.set(hook);
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.batcher.stop();
        self.stop.store(true, Ordering::Release);
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
        // POSTs that outlived the grace period: they may have been sent.
        if let Err(e) = queue::interrupt_own(self) {
            tracing::error!(error = %e, "cannot mark this node's unfinished deliveries interrupted");
        }
        node::release(&self.node, &self.connect);
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    #[cfg(feature = "test-hooks")]
    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn backup_to(&self, _dest: &Path) -> Result<()> {
        Err(StoreError::NotSupported(
            "backups of a PostgreSQL deployment are the database's own: use pg_dump".into(),
        ))
    }

    fn data_identity(&self) -> Option<FileIdentity> {
        None
    }

    fn live_nodes(&self) -> usize {
        self.node.live_nodes()
    }

    fn may_send(&self) -> bool {
        self.node.may_send()
    }

    fn lost(&self) -> bool {
        self.node.lost()
    }
}
