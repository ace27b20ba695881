//! The one thread that owns `begin_write`: it takes every change queued since the last commit,
//! applies them in one transaction, commits once (one fsync for many) and only then answers.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::index::Tally;
use crate::store::{CommitHook, Faults, Ready, Result, StoreError};

/// Rows written since start, for /metrics (counted as written, committed or not).
#[derive(Default)]
pub struct RowsWritten {
    pub deliveries: std::sync::atomic::AtomicU64,
    pub counters: std::sync::atomic::AtomicU64,
}

/// The most changes committed together.
const MAX_GROUP: usize = 2048;

/// What a change sees: the open transaction, a list of deliveries to announce after commit,
/// and the group's tally (queue depth, statistics), written once before the commit.
pub struct WriteCtx<'a> {
    pub tx: &'a WriteTransaction,
    pub ready: Vec<Ready>,
    pub tally: &'a RefCell<Tally>,
}

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A change: applied to the open transaction (or, `None`, refused because the store failed);
/// gives the reply to send after the commit and whether storage broke under it.
type Job = Box<dyn FnOnce(Option<&mut WriteCtx>) -> (Reply, bool) + Send>;

enum Msg {
    Job(Job),
    Stop,
}

pub struct Writer {
    pub rows: Arc<RowsWritten>,
    jobs: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    pub fn start(db: Arc<Database>, hook: Arc<OnceLock<CommitHook>>, faults: Arc<Faults>) -> Self {
        let (jobs, rx) = crossbeam_channel::unbounded();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let rows = Arc::new(RowsWritten::default());
        let counted = rows.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&db, &rx, &flag, &hook, &faults, &counted))
            .expect("spawn the store writer");
        Self {
            rows,
            jobs,
            thread: Mutex::new(Some(thread)),
            failed,
        }
    }

    /// Queues `f`; `then` gets its result once the group it went into is committed (or not).
    pub fn submit_then<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<T> + Send + 'static,
        then: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        if self.is_failed() {
            then(Err(failed_error()));
            return;
        }
        let job: Job = Box::new(move |ctx| {
            let outcome = match ctx {
                Some(ctx) => f(ctx),
                None => Err(failed_error()),
            };
            let broken = matches!(outcome, Err(StoreError::Storage(_)));
            let reply: Reply = Box::new(move |committed| then(committed.and(outcome)));
            (reply, broken)
        });
        if let Err(crossbeam_channel::SendError(Msg::Job(job))) = self.jobs.send(Msg::Job(job)) {
            let (reply, _) = job(None);
            reply(Err(StoreError::Unavailable(
                "the store is shutting down".into(),
            )));
        }
    }

    /// Queues `f`; the receiver gets its result once committed.
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<T> + Send + 'static,
    ) -> oneshot::Receiver<Result<T>> {
        let (tx, rx) = oneshot::channel();
        self.submit_then(f, move |r| {
            let _ = tx.send(r);
        });
        rx
    }

    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn stop(&self) {
        let _ = self.jobs.send(Msg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn run(
    db: &Database,
    rx: &Receiver<Msg>,
    failed: &AtomicBool,
    hook: &OnceLock<CommitHook>,
    faults: &Faults,
    rows: &RowsWritten,
) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else { return };
        let mut group = Vec::new();
        match first {
            Msg::Job(j) => group.push(j),
            Msg::Stop => stopping = true,
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => group.push(j),
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        if group.is_empty() {
            continue;
        }
        if failed.load(Ordering::Acquire) {
            refuse(group);
            continue;
        }
        commit_group(db, group, failed, hook, faults, rows);
    }
}

/// The answer when the writer is gone (shutting down).
pub fn stopped() -> StoreError {
    StoreError::Unavailable("the store writer stopped".into())
}

fn failed_error() -> StoreError {
    StoreError::Unavailable("an earlier write to the data file failed; restart webhooks".into())
}

/// Answers every job of a group that cannot be written.
fn refuse(group: Vec<Job>) {
    for job in group {
        let (reply, _) = job(None);
        reply(Err(failed_error()));
    }
}

fn commit_group(
    db: &Database,
    group: Vec<Job>,
    failed: &AtomicBool,
    hook: &OnceLock<CommitHook>,
    faults: &Faults,
    rows: &RowsWritten,
) {
    let tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a write transaction");
            failed.store(true, Ordering::Release);
            refuse(group);
            return;
        }
    };
    let tally = RefCell::new(Tally::default());
    let mut ctx = WriteCtx {
        tx: &tx,
        ready: Vec::new(),
        tally: &tally,
    };
    let mut replies = Vec::with_capacity(group.len());
    let mut broken = false;
    for job in group {
        let (reply, job_broken) = job(Some(&mut ctx));
        broken |= job_broken;
        replies.push(reply);
    }
    let ready = std::mem::take(&mut ctx.ready);
    let results = std::mem::take(&mut tally.borrow_mut().results);
    if !broken
        && !results.is_empty()
        && let Err(e) = write_results(&ctx, results)
    {
        tracing::error!(error = %e, "cannot write delivery results");
        broken = true;
    }
    if !broken && let Err(e) = flush_tally(&tx, &tally.into_inner(), rows) {
        tracing::error!(error = %e, "cannot write the queue counters and statistics");
        broken = true;
    }
    let result = if broken {
        let _ = tx.abort();
        Err(StoreError::Unavailable(
            "a write to the data file failed".into(),
        ))
    } else if Faults::on(&faults.commit) {
        let _ = tx.abort();
        tracing::error!(
            "commit to the data file failed (injected); refusing further writes until restart"
        );
        failed.store(true, Ordering::Release);
        Err(StoreError::Unavailable(
            "the data file could not be written".into(),
        ))
    } else {
        tx.commit().map_err(|e| {
            tracing::error!(error = %e, "commit to the data file failed; refusing further writes until restart");
            failed.store(true, Ordering::Release);
            StoreError::Unavailable("the data file could not be written".into())
        })
    };
    let committed = result.is_ok();
    for reply in replies {
        reply(result.clone());
    }
    if committed
        && !ready.is_empty()
        && let Some(hook) = hook.get()
    {
        hook(ready);
    }
}

/// The workers' results of the group: one blind insert each, the tables opened once.
fn write_results(
    ctx: &WriteCtx,
    results: Vec<(String, String, super::records::ResultRow)>,
) -> Result<()> {
    let mut dt = super::index::DeliveryTables::open(ctx)?;
    for (id, ep, r) in results {
        dt.finish(&id, &ep, r)?;
    }
    Ok(())
}

/// Writes what the group's changes added to the queue counters and the per-minute
/// statistics: a few rows per group, however many deliveries it finished.
pub fn flush_tally(tx: &WriteTransaction, tally: &Tally, rows: &RowsWritten) -> Result<()> {
    use super::records::{decode_bin, encode_bin};
    use super::tables::{META, STATS};
    use crate::domain::stats::Counters;
    use redb::ReadableTable;
    if tally.pending != 0 || tally.sending != 0 {
        let mut meta = tx.open_table(META)?;
        for (key, delta) in [
            ("queue_pending", tally.pending),
            ("queue_sending", tally.sending),
        ] {
            if delta == 0 {
                continue;
            }
            let was = meta
                .get(key)?
                .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                .map_or(0, i64::from_le_bytes);
            meta.insert(key, (was + delta).max(0).to_le_bytes().as_slice())?;
            rows.counters.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !tally.stats.is_empty() {
        let mut stats = tx.open_table(STATS)?;
        for ((scope, minute), add) in &tally.stats.rows {
            let mut c: Counters = match stats.get((scope.as_str(), *minute))? {
                Some(v) => decode_bin(v.value())?,
                None => Counters::default(),
            };
            c.merge(add);
            stats.insert((scope.as_str(), *minute), encode_bin(&c).as_slice())?;
        }
        rows.counters
            .fetch_add(tally.stats.rows.len() as u64, Ordering::Relaxed);
    }
    rows.deliveries.fetch_add(tally.rows, Ordering::Relaxed);
    Ok(())
}
