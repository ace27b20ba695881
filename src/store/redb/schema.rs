//! The data file's schema version: creating every table of a new file, refusing a newer
//! file, and carrying an older one forward a step at a time.

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::catalog;
use super::records::{
    ClaimMark, Delivery, DeliveryRow, Event, EventRow, IdempotencyRecord, ResultRow, decode,
    encode, encode_bin,
};
use super::tables::*;
use crate::domain::time::parse_rfc3339;
use crate::domain::{Accepted, DeliveryStatus};
use crate::store::{Result, StoreError};

/// Bumped whenever a table's layout or a record's meaning changes; `migrate` carries older
/// files forward. 2: sessions are stored; idempotency records keep the accepted events, not
/// a rendered answer. 3: events and deliveries are compact binary, a delivery's result is a
/// row of its own, and the queue is each endpoint's index above a claim mark (no `pending`
/// and `sending` tables).
pub const SCHEMA_VERSION: u64 = 3;

pub enum PrepareError {
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
pub fn prepare(db: &Database) -> Result<(), PrepareError> {
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
    macro_rules! create {
        ($($t:ident),*) => {$( tx.open_table($t)?; )*};
    }
    for_each_table!(create);
    match found {
        None => catalog::seed(&tx)?,
        Some(found) => migrate(&tx, found)?,
    }
    tx.open_table(META)?
        .insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())?;
    tx.commit()?;
    Ok(())
}

/// Carries a file written at schema `from` forward to `SCHEMA_VERSION`, one step at a time,
/// in the transaction that opens it.
fn migrate(tx: &WriteTransaction, from: u64) -> Result<()> {
    for version in from..SCHEMA_VERSION {
        tracing::info!(from = version, to = version + 1, "migrating the data file");
        if version == 1 {
            idempotency_keeps_events(tx)?;
        }
        if version == 2 {
            compact_deliveries(tx)?;
        }
    }
    Ok(())
}

/// 1 → 2: an idempotency record held the HTTP answer as JSON text; now it holds the
/// accepted events, and the HTTP side renders them.
fn idempotency_keeps_events(tx: &WriteTransaction) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Old {
        request_hash: String,
        response: String,
        created_at: i64,
    }
    #[derive(serde::Deserialize)]
    struct OldAnswer {
        id: String,
        event: String,
        customer_id: String,
        created_at: String,
        deliveries: usize,
    }
    let mut table = tx.open_table(IDEMPOTENCY)?;
    let mut rewritten = Vec::new();
    let mut unreadable = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let (customer, key) = k.value();
        let Ok(old) = serde_json::from_slice::<Old>(v.value()) else {
            // A record no version can read only blocks pruning: it goes.
            unreadable.push((customer.to_owned(), key.to_owned()));
            continue;
        };
        let accepted = serde_json::from_str::<OldAnswer>(&old.response)
            .ok()
            .map(|a| Accepted {
                id: a.id,
                event: a.event,
                customer_id: a.customer_id,
                created_at: parse_rfc3339(&a.created_at).unwrap_or(old.created_at),
                deliveries: a.deliveries,
            });
        let record = IdempotencyRecord {
            request_hash: old.request_hash,
            accepted: accepted.into_iter().collect(),
            created_at: old.created_at,
        };
        rewritten.push((customer.to_owned(), key.to_owned(), encode(&record)));
    }
    for (customer, key, bytes) in rewritten {
        table.insert((customer.as_str(), key.as_str()), bytes.as_slice())?;
    }
    for (customer, key) in unreadable {
        table.remove((customer.as_str(), key.as_str()))?;
    }
    Ok(())
}

/// Schema 2's queue: (endpoint id, delivery id) of every pending delivery.
const OLD_PENDING: TableDefinition<(&str, &str), ()> = TableDefinition::new("pending");
/// Schema 2's claims: delivery id -> endpoint id of every delivery handed to a worker.
const OLD_SENDING: TableDefinition<&str, &str> = TableDefinition::new("sending");

/// Rows rewritten per step of a migration, so a large file is not held in memory at once.
const CHUNK: usize = 10_000;

/// Rewrites every value of a table keyed by id, a chunk at a time: `f` gives each row's new
/// bytes (or `None` to leave it).
fn rewrite_all(
    tx: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    mut f: impl FnMut(&str, &[u8]) -> Result<Option<Vec<u8>>>,
) -> Result<()> {
    let mut t = tx.open_table(table)?;
    let mut after: Option<String> = None;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        let rows = match &after {
            None => t.range::<&str>(..)?,
            Some(a) => t.range::<&str>((
                std::ops::Bound::Excluded(a.as_str()),
                std::ops::Bound::Unbounded,
            ))?,
        };
        for row in rows {
            let (k, v) = row?;
            chunk.push((k.value().to_owned(), f(k.value(), v.value())?));
            if chunk.len() == CHUNK {
                break;
            }
        }
        let Some((last, _)) = chunk.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (k, v) in &chunk {
            if let Some(v) = v {
                t.insert(k.as_str(), v.as_slice())?;
            }
        }
    }
}

/// 2 → 3: events and deliveries become compact binary rows; a finished delivery's outcome
/// moves to `results`; the `pending` and `sending` tables become each endpoint's claim mark
/// (pending deliveries below a mark wait in `late`; claimed ones stay claimed, so the start
/// that follows turns them `interrupted` as before); the queue counters are set.
fn compact_deliveries(tx: &WriteTransaction) -> Result<()> {
    rewrite_all(tx, EVENTS, |_, v| {
        let e: Event = decode(v)?;
        Ok(Some(encode_bin(&EventRow::of(&e))))
    })?;
    {
        let mut results = tx.open_table(RESULTS)?;
        rewrite_all(tx, DELIVERIES, |id, v| {
            let d: Delivery = decode(v)?;
            if !matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Sending) {
                let r = ResultRow {
                    status: d.status,
                    url: None,
                    response_status: d.response_status,
                    response_body: d.response_body.clone(),
                    error: d.error,
                    error_detail: d.error_detail.clone(),
                    duration_ms: d.duration_ms,
                    started_at: d.started_at,
                    finished_at: d.finished_at,
                };
                results.insert(id, encode_bin(&r).as_slice())?;
            }
            Ok(Some(encode_bin(&DeliveryRow::of(&d))))
        })?;
    }
    let pending_count;
    let sending_count;
    {
        let pending = tx.open_table(OLD_PENDING)?;
        let sending = tx.open_table(OLD_SENDING)?;
        pending_count = pending.len()?;
        sending_count = sending.len()?;
        // The oldest claimed delivery of each endpoint: where recovery starts reading.
        let mut first_sending: std::collections::HashMap<String, String> = Default::default();
        for row in sending.iter()? {
            let (k, v) = row?;
            let slot = first_sending.entry(v.value().to_owned()).or_default();
            if slot.is_empty() || k.value() < slot.as_str() {
                *slot = k.value().to_owned();
            }
        }
        let index = tx.open_table(ENDPOINT_DELIVERIES)?;
        let mut claims = tx.open_table(CLAIMS)?;
        let mut late = tx.open_table(LATE)?;
        let mut current = String::new();
        let mut through = String::new();
        let mut waiting: Vec<String> = Vec::new();
        let mut finish_endpoint =
            |ep: &str, through: &str, waiting: &mut Vec<String>| -> Result<()> {
                if !through.is_empty() {
                    for id in waiting.iter().filter(|id| id.as_str() < through) {
                        late.insert((ep, id.as_str()), ())?;
                    }
                    let mark = ClaimMark {
                        through: through.to_owned(),
                        scan_from: first_sending
                            .get(ep)
                            .cloned()
                            .unwrap_or_else(|| through.to_owned()),
                    };
                    claims.insert(ep, encode_bin(&mark).as_slice())?;
                }
                waiting.clear();
                Ok(())
            };
        for row in index.iter()? {
            let (k, _) = row?;
            let (ep, id) = k.value();
            if ep != current {
                finish_endpoint(&current, &through, &mut waiting)?;
                current = ep.to_owned();
                through.clear();
            }
            if pending.get((ep, id))?.is_some() {
                waiting.push(id.to_owned());
            } else {
                through = id.to_owned();
            }
        }
        finish_endpoint(&current, &through, &mut waiting)?;
    }
    let mut meta = tx.open_table(META)?;
    meta.insert(
        "queue_pending",
        (pending_count as i64).to_le_bytes().as_slice(),
    )?;
    meta.insert(
        "queue_sending",
        (sending_count as i64).to_le_bytes().as_slice(),
    )?;
    drop(meta);
    tx.delete_table(OLD_PENDING)?;
    tx.delete_table(OLD_SENDING)?;
    Ok(())
}
