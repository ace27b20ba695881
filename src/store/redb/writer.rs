//! The one thread that owns `begin_write`: it takes every change queued since the last commit,
//! applies them in one transaction, commits once (one fsync for many) and only then answers.
//!
//! A write that fails (a full disk, an I/O error) refuses every change after it (503), and
//! the writer tries again by itself every `RECOVER_EVERY`: a small write on the file as it is
//! open, else the file reopened (redb wants that after an I/O error). Once one commits, it
//! writes again: no restart needed, so a supervisor never restarts it in a loop while the
//! disk is still full. Workers' results wait in memory meanwhile and are written then.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use redb::Database;
use tokio::sync::oneshot;

use super::DbSlot;
use super::group::{RowsWritten, Tally, WriteCtx, flush_tally};
use super::records::ResultRow;
use crate::store::{CommitHook, Faults, Result, StoreError};

/// The most changes committed together.
const MAX_GROUP: usize = 2048;
/// How often a writer whose last write failed tries to write again.
const RECOVER_EVERY: Duration = Duration::from_secs(2);

pub use super::records::Finished;

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A change: applied to the open transaction (or, `None`, refused because the store failed);
/// gives the reply to send after the commit and whether storage broke under it.
type Job = Box<dyn FnOnce(Option<&mut WriteCtx>) -> (Reply, bool) + Send>;

enum Msg {
    Job(Job),
    Result(Finished),
    Stop,
}

pub struct Writer {
    pub rows: Arc<RowsWritten>,
    jobs: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    pub fn start(db: Arc<DbSlot>, hook: Arc<OnceLock<CommitHook>>, faults: Arc<Faults>) -> Self {
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

    /// A worker's result: written with the next group, or kept until the file can be written.
    pub fn result(
        &self,
        delivery_id: String,
        endpoint_id: String,
        row: ResultRow,
        sent: Option<Vec<u8>>,
    ) {
        if self
            .jobs
            .send(Msg::Result((delivery_id, endpoint_id, row, sent)))
            .is_err()
        {
            tracing::error!(
                "a delivery's result came after the store closed; it will show as interrupted"
            );
        }
    }

    pub fn stop(&self) {
        let _ = self.jobs.send(Msg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn run(
    slot: &DbSlot,
    rx: &Receiver<Msg>,
    failed: &AtomicBool,
    hook: &OnceLock<CommitHook>,
    faults: &Faults,
    rows: &RowsWritten,
) {
    let mut stopping = false;
    // Results not yet committed: the next group writes them.
    let mut results: Vec<Finished> = Vec::new();
    let mut last_try = Instant::now();
    while !stopping {
        let first = if failed.load(Ordering::Acquire) {
            match rx.recv_timeout(RECOVER_EVERY) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        let mut group = Vec::new();
        let take = |m: Msg,
                    group: &mut Vec<Job>,
                    results: &mut Vec<Finished>,
                    stopping: &mut bool| match m {
            Msg::Job(j) => group.push(j),
            Msg::Result(r) => results.push(r),
            Msg::Stop => *stopping = true,
        };
        if let Some(m) = first {
            take(m, &mut group, &mut results, &mut stopping);
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => take(m, &mut group, &mut results, &mut stopping),
                Err(_) => break,
            }
        }
        if failed.load(Ordering::Acquire) && last_try.elapsed() >= RECOVER_EVERY {
            last_try = Instant::now();
            if recover(slot, faults) {
                failed.store(false, Ordering::Release);
                tracing::warn!(
                    kept_results = results.len(),
                    "the data file can be written again: writes resume"
                );
            }
        }
        if failed.load(Ordering::Acquire) {
            refuse(group);
            continue;
        }
        if group.is_empty() && results.is_empty() {
            continue;
        }
        let db = match slot.get() {
            Ok(db) => db,
            Err(_) => {
                failed.store(true, Ordering::Release);
                refuse(group);
                continue;
            }
        };
        let written = std::mem::take(&mut results);
        if let Some(kept) = commit_group(&db, group, written, failed, hook, faults, rows) {
            results = kept;
        }
    }
    if !results.is_empty() {
        tracing::error!(
            count = results.len(),
            "delivery results could not be written before the store closed; they will show as interrupted"
        );
    }
}

/// Whether the data file takes a write again: a small one on the file as it is open, else on
/// the file opened again. A fault injected by a test holds until the test lifts it.
fn recover(slot: &DbSlot, faults: &Faults) -> bool {
    if Faults::on(&faults.commit) {
        return false;
    }
    if let Ok(db) = slot.get() {
        match probe(&db) {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "the data file still cannot be written; reopening it")
            }
        }
    }
    // Let go of the file (readers finish their snapshots first), then open it again.
    let old = slot.db.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(old) = old {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(old);
    }
    for _ in 0..20 {
        match Database::builder()
            .set_cache_size(slot.cache_bytes)
            .create(&slot.path)
        {
            Ok(db) => {
                let ok = probe(&db);
                *slot.db.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(db));
                return match ok {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "the data file still cannot be written; trying again");
                        false
                    }
                };
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reopen the data file yet; trying again");
                return false;
            }
        }
    }
    false
}

/// A write that proves the file takes writes: the time, in the meta table.
fn probe(db: &Database) -> Result<()> {
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(super::tables::META)?;
        let now = crate::domain::time::now_ms();
        meta.insert("writable_at", now.to_le_bytes().as_slice())?;
    }
    tx.commit()?;
    Ok(())
}

/// The answer when the writer is gone (shutting down).
pub fn stopped() -> StoreError {
    StoreError::Unavailable("the store writer stopped".into())
}

fn failed_error() -> StoreError {
    StoreError::Unavailable(
        "a write to the data file failed (is the disk full?); writes resume by themselves once it takes one again".into(),
    )
}

/// Answers every job of a group that cannot be written.
fn refuse(group: Vec<Job>) {
    for job in group {
        let (reply, _) = job(None);
        reply(Err(failed_error()));
    }
}

/// Commits the group's changes and `results`; returns the results to keep for a later group
/// when nothing could be committed.
fn commit_group(
    db: &Database,
    group: Vec<Job>,
    results: Vec<Finished>,
    failed: &AtomicBool,
    hook: &OnceLock<CommitHook>,
    faults: &Faults,
    rows: &RowsWritten,
) -> Option<Vec<Finished>> {
    let tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a write transaction");
            failed.store(true, Ordering::Release);
            refuse(group);
            return Some(results);
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
    let mut results_now = std::mem::take(&mut tally.borrow_mut().results);
    results_now.extend(results);
    if !broken
        && !results_now.is_empty()
        && let Err(e) = write_results(&ctx, &results_now)
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
        Err(failed_error())
    } else if Faults::on(&faults.commit) {
        let _ = tx.abort();
        tracing::error!(
            "commit to the data file failed (injected); refusing writes until it works"
        );
        failed.store(true, Ordering::Release);
        Err(failed_error())
    } else {
        tx.commit().map_err(|e| {
            tracing::error!(error = %e, "commit to the data file failed; refusing writes until it takes one again");
            failed.store(true, Ordering::Release);
            failed_error()
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
    (!committed).then_some(results_now)
}

/// The workers' results of the group: one blind insert each, the tables opened once.
fn write_results(ctx: &WriteCtx, results: &[Finished]) -> Result<()> {
    let mut dt = super::deliveries::DeliveryTables::open(ctx)?;
    for (id, ep, r, sent) in results {
        dt.finish_sent(id, ep, r, sent.as_deref())?;
    }
    Ok(())
}
