//! One commit group's shared state: the open transaction every change of the group writes
//! in (`WriteCtx`), what the group adds to the queue counters and statistics (`Tally`), and
//! the writing of that tally once before the commit.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadableTable, WriteTransaction};

use super::records::{Finished, decode_bin, encode_bin};
use super::tables::{META, STATS};
use crate::domain::stats::{Counters, StatsDelta};
use crate::store::{Ready, Result};

/// What a change sees: the open transaction, a list of deliveries to announce after commit,
/// and the group's tally (queue depth, statistics), written once before the commit.
pub struct WriteCtx<'a> {
    pub tx: &'a WriteTransaction,
    pub ready: Vec<Ready>,
    pub tally: &'a RefCell<Tally>,
}

/// What a commit group changes besides its rows: queue depth and delivery statistics,
/// written once when the group commits (`flush_tally`).
#[derive(Default)]
pub struct Tally {
    pub pending: i64,
    pub sending: i64,
    pub stats: StatsDelta,
    /// Rows written for events, deliveries, claims and results (counted, for /metrics).
    pub rows: u64,
    /// Workers' results, written together after the group's other changes: the tables are
    /// opened once per group rather than once per result.
    pub results: Vec<Finished>,
}

/// Rows written since start, for /metrics (counted as written, committed or not).
#[derive(Default)]
pub struct RowsWritten {
    pub deliveries: AtomicU64,
    pub counters: AtomicU64,
}

/// Writes what the group's changes added to the queue counters and the per-minute
/// statistics: a few rows per group, however many deliveries it finished.
pub fn flush_tally(tx: &WriteTransaction, tally: &Tally, rows: &RowsWritten) -> Result<()> {
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
