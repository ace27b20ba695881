//! The store over one redb file: opening and migrating it, the single writer thread that
//! group-commits every change, and read transactions for everything else.

mod backup;
mod catalog;
mod customers;
mod deliveries;
mod endpoints;
pub mod events;
pub mod records;
pub mod tables;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use crate::domain::time::Clock;
use crate::domain::{IdGen, ValidationError};
pub use catalog::default_catalog;
pub use deliveries::{DeliveryFilter, SendJob};
pub use endpoints::{EndpointPatch, NewEndpoint};
pub use events::{Accepted, NewEvent};
pub use writer::{Ready, WriteCtx};

use tables::*;

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
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}
storage_errors!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why the data file could not be opened; each says what to do in one line.
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
}

/// Which customer a bearer API key belongs to. Kept in memory so authentication never blocks.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key_id: String,
    pub customer_id: String,
    /// When `last_used_at` was last written (ms), so it is written at most once a minute.
    pub touched: Arc<AtomicI64>,
}

/// Failures a test can switch on, to see that the callers above the store cope: no mounts
/// or full disks needed. Every switch is off in normal operation.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next commit fails as a full disk would.
    pub commit: AtomicBool,
    /// Loading a claimed delivery for its worker fails.
    pub load: AtomicBool,
}

impl Faults {
    pub fn fail_commits(&self, on: bool) {
        self.commit.store(on, Ordering::Release);
    }

    pub fn fail_loads(&self, on: bool) {
        self.load.store(on, Ordering::Release);
    }

    fn on(flag: &AtomicBool) -> bool {
        flag.load(Ordering::Acquire)
    }
}

pub struct Store {
    db: Arc<Database>,
    writer: writer::Writer,
    pub ids: Arc<IdGen>,
    keys: RwLock<HashMap<[u8; 32], KeyOwner>>,
    admin_hash: RwLock<Option<[u8; 32]>>,
    commit_hook: Arc<OnceLock<writer::CommitHook>>,
    path: String,
    /// Decides what is old enough to prune or forget.
    pub clock: Clock,
    pub faults: Arc<Faults>,
    /// The data file's (device, inode): a backup states it so that no client writes a copy
    /// over the live file, whatever name it is given.
    pub identity: FileIdentity,
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

/// Creates the data file readable by its owner only (it holds endpoint secrets), unless it
/// exists already (an existing file keeps the mode its operator gave it).
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Store {
    /// Opens (or creates) the data file, refuses a newer schema, migrates an older one and
    /// seeds the event catalog on first use. `cache_bytes` bounds redb's page cache.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Arc<Store>, OpenError> {
        let shown = path.display().to_string();
        let other = |reason: String| OpenError::Other {
            path: shown.clone(),
            reason,
        };
        create_private(path).map_err(|e| other(e.to_string()))?;
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(shown.clone()),
                e => other(e.to_string()),
            })?;
        prepare(&db).map_err(|e| match e {
            PrepareError::TooNew(found) => OpenError::TooNew {
                path: shown.clone(),
                found,
                supported: SCHEMA_VERSION,
            },
            PrepareError::Store(e) => other(e.to_string()),
            PrepareError::BadVersion => other("its schema version is unreadable".into()),
        })?;
        let identity = file_identity(path).map_err(|e| other(e.to_string()))?;
        let db = Arc::new(db);
        let commit_hook = Arc::new(OnceLock::new());
        let faults = Arc::new(Faults::default());
        let writer = writer::Writer::start(db.clone(), commit_hook.clone(), faults.clone());
        let store = Store {
            db,
            writer,
            ids: Arc::new(IdGen::new()),
            keys: RwLock::new(HashMap::new()),
            admin_hash: RwLock::new(None),
            commit_hook,
            path: shown.clone(),
            clock: Clock::default(),
            faults,
            identity,
        };
        store.load_auth().map_err(|e| other(e.to_string()))?;
        Ok(Arc::new(store))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Called after every commit with the deliveries it made ready; set once by the dispatcher.
    pub fn on_commit(&self, hook: impl Fn(Vec<Ready>) + Send + Sync + 'static) {
        let _ = self.commit_hook.set(Box::new(hook));
    }

    /// Runs `f` in a write transaction on the writer thread, grouped with whatever else is
    /// waiting, and returns once it is durably committed. Blocks: never call on an actix thread.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.writer
            .submit(f)?
            .blocking_recv()
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the store writer stopped".into())))
    }

    /// As `write`, for async handlers: awaits the commit without blocking the thread.
    pub async fn write_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.writer
            .submit(f)?
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the store writer stopped".into())))
    }

    /// As `write`, handing the outcome to `then` after the commit instead of waiting for it.
    pub fn write_then<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<T> + Send + 'static,
        then: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        self.writer.submit_then(f, then);
    }

    /// As `write`, without waiting for the outcome (a worker recording a result).
    pub fn write_detached(&self, f: impl FnOnce(&mut WriteCtx) -> Result<()> + Send + 'static) {
        if let Err(e) = self.writer.submit(f) {
            tracing::error!(error = %e, "a change could not be queued for the store");
        }
    }

    /// Runs `f` in a read transaction: a snapshot that never waits for the writer.
    pub fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_read()?;
        f(&tx)
    }

    /// True once a commit failed: every later write answers `Unavailable`.
    pub fn is_failed(&self) -> bool {
        self.writer.is_failed()
    }

    /// Finishes the queued writes and stops the writer thread.
    pub fn close(&self) {
        self.writer.stop();
    }

    /// The database itself, for read-only tools such as metrics.
    pub fn raw_db(&self) -> &Database {
        &self.db
    }

    fn load_auth(&self) -> Result<()> {
        let (keys, admin) = self.read(|tx| {
            let mut keys = HashMap::new();
            for row in tx.open_table(API_KEYS)?.iter()? {
                let (_, v) = row?;
                let rec: records::ApiKeyRecord = records::decode(v.value())?;
                if let Some(hash) = unhex32(&rec.hash) {
                    keys.insert(
                        hash,
                        KeyOwner {
                            key_id: rec.id,
                            customer_id: rec.customer_id,
                            touched: Arc::new(AtomicI64::new(rec.last_used_at.unwrap_or(0))),
                        },
                    );
                }
            }
            let admin = tx
                .open_table(META)?
                .get("admin_token_sha256")?
                .and_then(|v| v.value().try_into().ok());
            Ok((keys, admin))
        })?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *self.admin_hash.write().unwrap_or_else(|e| e.into_inner()) = admin;
        Ok(())
    }

    /// The customer that owns this bearer key, if any.
    pub fn key_owner(&self, hash: &[u8; 32]) -> Option<KeyOwner> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// True while this key still exists and belongs to this customer (portal sessions check it).
    pub fn key_still_owned(&self, key_id: &str, customer_id: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|o| o.key_id == key_id && o.customer_id == customer_id)
    }

    pub fn admin_hash(&self) -> Option<[u8; 32]> {
        *self.admin_hash.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the admin token's hash, replacing any earlier one.
    pub fn set_admin_token(&self, token: &str) -> Result<()> {
        let hash = crate::domain::secret::hash_token(token);
        self.write(move |ctx| {
            ctx.tx
                .open_table(META)?
                .insert("admin_token_sha256", hash.as_slice())?;
            Ok(())
        })?;
        *self.admin_hash.write().unwrap_or_else(|e| e.into_inner()) = Some(hash);
        Ok(())
    }

    fn remember_key(&self, hash: [u8; 32], owner: KeyOwner) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, owner);
    }

    fn forget_keys(&self, pred: impl Fn(&KeyOwner) -> bool) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, owner| !pred(owner));
    }
}

pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

enum PrepareError {
    TooNew(u64),
    BadVersion,
    Store(StoreError),
}

impl<E: Into<StoreError>> From<E> for PrepareError {
    fn from(e: E) -> Self {
        PrepareError::Store(e.into())
    }
}

/// Creates every table, checks the schema version, migrates, and seeds a brand-new file.
fn prepare(db: &Database) -> Result<(), PrepareError> {
    let tx = db.begin_write()?;
    let found = {
        let meta = tx.open_table(META)?;
        let raw = meta.get("schema_version")?.map(|v| v.value().to_vec());
        match raw {
            None => None,
            Some(bytes) => {
                let b: [u8; 8] = bytes.try_into().map_err(|_| PrepareError::BadVersion)?;
                Some(u64::from_le_bytes(b))
            }
        }
    };
    if let Some(found) = found
        && found > SCHEMA_VERSION
    {
        return Err(PrepareError::TooNew(found));
    }
    tx.open_table(CUSTOMERS)?;
    tx.open_table(CUSTOMER_NAMES)?;
    tx.open_table(API_KEYS)?;
    tx.open_table(EVENT_TYPES)?;
    tx.open_table(ENDPOINTS)?;
    tx.open_table(CUSTOMER_ENDPOINTS)?;
    tx.open_table(EVENTS)?;
    tx.open_table(CUSTOMER_EVENTS)?;
    tx.open_table(DELIVERIES)?;
    tx.open_table(CUSTOMER_DELIVERIES)?;
    tx.open_table(ENDPOINT_DELIVERIES)?;
    tx.open_table(EVENT_DELIVERIES)?;
    tx.open_table(PENDING)?;
    tx.open_table(SENDING)?;
    tx.open_table(IDEMPOTENCY)?;
    match found {
        None => catalog::seed(&tx)?,
        Some(found) => migrate(&tx, found)?,
    }
    tx.open_table(META)?
        .insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())?;
    tx.commit()?;
    Ok(())
}

/// Carries a file written at schema `from` forward to `SCHEMA_VERSION`, one step at a time.
/// Schema 1 is the first; each later version adds its step here.
fn migrate(_tx: &redb::WriteTransaction, from: u64) -> Result<()> {
    for version in from..SCHEMA_VERSION {
        tracing::info!(from = version, to = version + 1, "migrating the data file");
    }
    Ok(())
}

/// A page of ids, newest first, from the index range of `owner`.
pub(crate) fn page_ids(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    owner: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool)> {
    let upper = before.unwrap_or(ID_MAX);
    let mut ids = Vec::with_capacity(limit);
    let mut more = false;
    for row in table.range((owner, "")..(owner, upper))?.rev() {
        let (k, _) = row?;
        if ids.len() == limit {
            more = true;
            break;
        }
        ids.push(k.value().1.to_owned());
    }
    Ok((ids, more))
}

/// One page of a list: the rows and the id to pass as `before` for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    pub before: Option<&'a str>,
    pub limit: usize,
}
