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
mod customers;
mod endpoints;
mod events;
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

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::types::Type;
use postgres::{Client, Transaction};
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

/// Opens connections of its own (outside the pool) for the long-lived threads.
#[derive(Clone)]
struct Connector {
    config: postgres::Config,
    tls: MakeRustlsConnect,
}

impl Connector {
    fn connect(&self) -> Result<Client> {
        self.config
            .connect(self.tls.clone())
            .map_err(|e| StoreError::Unavailable(explain(&e)))
    }
}

/// What PostgreSQL said, in a line an operator can act on: the server's own message and
/// SQLSTATE (the client library prints a bare "db error"), or the connection's cause, with
/// what to do for the usual setup mistakes.
pub fn explain(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let advice = match code {
            "28P01" => "; check the user and password in the URL",
            "28000" => "; create the role, or fix the user in the URL (README: PostgreSQL setup)",
            "3D000" => "; create the database first (README: PostgreSQL setup)",
            "42501" => {
                "; the role needs rights on the database and its schema public: on PostgreSQL 15+ run GRANT CREATE ON SCHEMA public TO the role, or make it the database's owner (README: PostgreSQL setup)"
            }
            "53300" => "; the server has no free connection slots: raise max_connections",
            _ => "",
        };
        let detail = db.detail().map_or(String::new(), |d| format!(" ({d})"));
        return format!("{}{detail} [SQLSTATE {code}]{advice}", db.message());
    }
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    if why.contains("refused") {
        why.push_str("; is PostgreSQL running, and listening on that host and port?");
    }
    format!("cannot reach the database: {why}")
}

/// A URL naming several hosts is there to follow a promoted standby. At most once then needs
/// every commit on the standby before the primary acknowledges it: a claim the standby did
/// not have is `pending` again after a failover, and is POSTed a second time. Said at start,
/// once, when the primary this node reached has no synchronous standby.
fn warn_without_sync_standby(client: &mut Client) {
    let row = client.query_one(
        "SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'),
                current_setting('synchronous_commit')",
        &[],
    );
    match row {
        Ok(r) => {
            let (in_recovery, names, commit): (bool, String, String) =
                (r.get(0), r.get(1), r.get(2));
            let synchronous =
                !names.trim().is_empty() && !matches!(commit.as_str(), "off" | "local");
            if !in_recovery && !synchronous {
                tracing::warn!(
                    synchronous_standby_names = %names,
                    synchronous_commit = %commit,
                    "the database URL names several hosts (to follow a promoted standby), but this primary has no synchronous standby: after a failover, deliveries claimed in the last moments before it are pending again and are sent a second time, and events accepted then are lost; set synchronous_standby_names and synchronous_commit = on (README: failover)"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %explain(&e), "cannot read the database's replication settings")
        }
    }
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

/// The URL as postgres::Config takes it, where it points (without the password), and the TLS
/// connector: webpki roots, plus the URL's `sslrootcert` file if it names one.
fn parse_url(url: &str) -> Result<(postgres::Config, String, MakeRustlsConnect), OpenError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut root_file = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(path) => {
                root_file = Some(path.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let cleaned = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let location = redact(base);
    let bad = |reason: String| OpenError::Database {
        location: location.clone(),
        reason,
    };
    let mut config = postgres::Config::from_str(&cleaned)
        .map_err(|e| bad(format!("not a PostgreSQL URL ({e})")))?;
    if config.get_application_name().is_none() {
        config.application_name("webhooks");
    }
    config.connect_timeout(Duration::from_secs(10));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    // As libpq: `verify-ca` and `verify-full` check the server's certificate (public roots
    // plus `sslrootcert`); `prefer` and `require` encrypt without checking it.
    let verify = kept.iter().any(|p| p.starts_with("sslmode=verify-"));
    let tls = if verify {
        let mut roots = rustls::RootCertStore::empty();
        for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let _ = roots.add(cert.clone());
        }
        if let Some(path) = root_file {
            let extra =
                crate::tls::trust_roots(Path::new(&path)).map_err(|e| bad(e.to_string()))?;
            for cert in extra {
                let _ = roots.add(rustls::pki_types::CertificateDer::from(cert.der().to_vec()));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok((config, location, MakeRustlsConnect::new(tls)))
}

/// `sslmode=prefer|require`: encryption without checking the server's certificate (libpq's
/// meaning); signatures are still checked, so the session key is the certificate holder's.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A URL without its password (for logs and errors).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a PostgreSQL URL)".into();
    };
    // Query parameters may carry a password (`?password=…`) or key files: never shown.
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    match auth {
        Some(auth) => {
            let user = auth.split_once(':').map_or(auth, |(u, _)| u);
            format!("{scheme}://{user}@{host}")
        }
        None => format!("{scheme}://{host}"),
    }
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

#[cfg(test)]
mod redact_tests {
    #[test]
    fn a_password_never_shows() {
        for (url, shown) in [
            ("postgres://u:s3cret@db:5432/w", "postgres://u@db:5432/w"),
            (
                "postgresql://u:p%40ss@db/w?sslmode=require",
                "postgresql://u@db/w",
            ),
            ("postgres://u@db/w?password=s3cret", "postgres://u@db/w"),
            ("postgres://db/w", "postgres://db/w"),
            ("not a url s3cret", "(a PostgreSQL URL)"),
        ] {
            let r = super::redact(url);
            assert_eq!(r, shown);
            assert!(!r.contains("s3cret") && !r.contains("p%40ss"), "{r}");
        }
    }
}
