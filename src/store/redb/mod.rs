//! The embedded engine: everything in one redb file. One writer thread owns `begin_write`
//! and commits the changes queued meanwhile in one transaction (one fsync for many); reads
//! are snapshots that never wait for it. Each file below implements one job of the contract.

mod backup;
mod catalog;
mod customers;
mod deliveries;
mod endpoints;
mod events;
mod group;
mod keys;
mod log;
mod paging;
mod queue;
mod records;
mod retention;
mod schema;
mod sessions;
mod stats;
pub mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase};

use super::key_cache::KeyCache;
use super::{
    CommitHook, Engine, Faults, FileIdentity, OpenError, Result, StoreError, file_identity,
};
use crate::domain::IdGen;
use crate::domain::time::Clock;
pub use group::WriteCtx;
use schema::SCHEMA_VERSION;

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

/// The open data file. The writer swaps in a fresh handle when it reopens the file after a
/// failed write (redb wants a file reopened after an I/O error); meanwhile reads answer 503.
pub struct DbSlot {
    db: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    cache_bytes: usize,
}

impl DbSlot {
    fn get(&self) -> Result<Arc<Database>> {
        self.db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::Unavailable(
                    "the data file is being reopened after a failed write".into(),
                )
            })
    }
}

pub struct RedbStore {
    db: Arc<DbSlot>,
    writer: writer::Writer,
    ids: Arc<IdGen>,
    /// Shared with the writer's changes, which update it in commit order.
    keys: Arc<KeyCache>,
    commit_hook: Arc<OnceLock<CommitHook>>,
    path: String,
    clock: Clock,
    faults: Arc<Faults>,
    identity: FileIdentity,
}

impl RedbStore {
    /// Opens (or creates, owner-only) the data file, refuses a newer schema, migrates an
    /// older one and seeds the event catalog on first use. `cache_bytes` bounds redb's page
    /// cache.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Arc<RedbStore>, OpenError> {
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
        schema::prepare(&db).map_err(|e| match e {
            schema::PrepareError::TooNew(found) => OpenError::TooNew {
                path: shown.clone(),
                found,
                supported: SCHEMA_VERSION,
            },
            schema::PrepareError::Store(e) => other(e.to_string()),
            schema::PrepareError::BadVersion => other("its schema version is unreadable".into()),
        })?;
        let identity = file_identity(path).map_err(|e| other(e.to_string()))?;
        let db = Arc::new(DbSlot {
            db: RwLock::new(Some(Arc::new(db))),
            path: path.to_owned(),
            cache_bytes,
        });
        let commit_hook = Arc::new(OnceLock::new());
        let faults = Arc::new(Faults::default());
        let writer = writer::Writer::start(db.clone(), commit_hook.clone(), faults.clone());
        let store = RedbStore {
            db,
            writer,
            ids: Arc::new(IdGen::new()),
            keys: Arc::new(KeyCache::default()),
            commit_hook,
            path: shown.clone(),
            clock: Clock::default(),
            faults,
            identity,
        };
        keys::load(&store.keys, &store).map_err(|e| other(e.to_string()))?;
        store.resume_ids().map_err(|e| other(e.to_string()))?;
        Ok(Arc::new(store))
    }

    /// New ids sort after every delivery and event in the file and every claim mark (whose
    /// delivery may be pruned since), even if the clock went back since they were made: the
    /// queue relies on a new delivery's id lying above its endpoint's mark.
    fn resume_ids(&self) -> Result<()> {
        use redb::ReadableTable;
        self.read(|tx| {
            for table in [tables::DELIVERIES, tables::EVENTS] {
                if let Some((k, _)) = tx.open_table(table)?.last()? {
                    self.ids.resume_after(k.value());
                }
            }
            for row in tx.open_table(tables::CLAIMS)?.iter()? {
                let mark: records::ClaimMark = records::decode_bin(row?.1.value())?;
                self.ids.resume_after(&mark.through);
            }
            Ok(())
        })
    }

    /// Runs `f` in a write transaction on the writer thread, grouped with whatever else is
    /// waiting, and returns once it is durably committed. Blocks: never call on an actix thread.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.writer
            .submit(f)
            .blocking_recv()
            .unwrap_or_else(|_| Err(writer::stopped()))
    }

    /// As `write`, without waiting for the outcome (a worker recording a result).
    fn write_detached(&self, f: impl FnOnce(&mut WriteCtx) -> Result<()> + Send + 'static) {
        self.writer.submit_then(f, |r| {
            if let Err(e) = r {
                tracing::error!(error = %e, "a change could not be written to the store");
            }
        });
    }

    /// Runs `f` in a read transaction: a snapshot that never waits for the writer.
    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let tx = self.db.get()?.begin_read()?;
        f(&tx)
    }
}

impl Engine for RedbStore {
    fn engine_name(&self) -> &'static str {
        "redb"
    }

    fn location(&self) -> String {
        self.path.clone()
    }

    fn on_commit(&self, hook: CommitHook) {
        let _ = self.commit_hook.set(hook);
    }

    fn is_failed(&self) -> bool {
        self.writer.is_failed()
    }

    fn rows_written(&self) -> Option<(u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let r = &self.writer.rows;
        Some((r.deliveries.load(Relaxed), r.counters.load(Relaxed)))
    }

    fn close(&self) {
        self.writer.stop();
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    #[cfg(feature = "test-hooks")]
    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn backup_to(&self, dest: &Path) -> Result<()> {
        backup::copy_all(self.db.get()?.as_ref(), dest)
    }

    fn data_identity(&self) -> Option<FileIdentity> {
        Some(self.identity)
    }
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
