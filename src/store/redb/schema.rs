//! The data file's schema version: creating every table of a new file, refusing a newer
//! file, and carrying an older one forward a step at a time.

use redb::{Database, ReadableTable, WriteTransaction};

use super::catalog;
use super::records::{IdempotencyRecord, encode};
use super::tables::*;
use crate::domain::Accepted;
use crate::domain::time::parse_rfc3339;
use crate::store::{Result, StoreError};

/// Bumped whenever a table's layout or a record's meaning changes; `migrate` carries older
/// files forward. 2: sessions are stored; idempotency records keep the accepted events, not
/// a rendered answer.
pub const SCHEMA_VERSION: u64 = 2;

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
