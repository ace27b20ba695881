//! The admin token and API keys: hashes in the database, every node's key cache filled from
//! it and re-read when a node announces a change (`NOTIFY webhooks_keys`).

use std::collections::HashMap;

use super::{KEYS_CHANNEL, PgStore};
use crate::domain::secret::{hash_token, unhex32};
use crate::domain::time::now_ms;
use crate::domain::{ApiKey, ApiKeyRecord, IdKind};
use crate::store::key_cache::owner;
use crate::store::{KeyOwner, Keys, NewKey, Result, StoreError};

const KEY_COLS: &str = "id, customer_id, prefix, hash, created_at, last_used_at";

fn record(row: &postgres::Row) -> ApiKeyRecord {
    ApiKeyRecord {
        id: row.get(0),
        customer_id: row.get(1),
        prefix: row.get(2),
        hash: row.get(3),
        created_at: row.get(4),
        last_used_at: row.get(5),
    }
}

/// Fills the cache from the database.
pub(super) fn load(store: &PgStore) -> Result<()> {
    let (keys, admin) = store.read(|tx| {
        let mut keys = HashMap::new();
        for row in tx.query(&format!("SELECT {KEY_COLS} FROM api_keys"), &[])? {
            let rec = record(&row);
            if let Some(hash) = unhex32(&rec.hash) {
                keys.insert(hash, owner(&rec));
            }
        }
        let admin = tx
            .query_opt(
                "SELECT value FROM meta WHERE key = 'admin_token_sha256'",
                &[],
            )?
            .and_then(|r| r.get::<_, Vec<u8>>(0).try_into().ok());
        Ok((keys, admin))
    })?;
    store.keys.replace(keys, admin);
    Ok(())
}

/// Tells the other nodes to re-read their key caches (delivered at commit).
pub(super) fn announce(tx: &mut postgres::Transaction) -> Result<()> {
    tx.execute("SELECT pg_notify($1, '')", &[&KEYS_CHANNEL])?;
    Ok(())
}

pub(super) fn insert(tx: &mut postgres::Transaction, r: &ApiKeyRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO api_keys (id, customer_id, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&r.id, &r.customer_id, &r.prefix, &r.hash, &r.created_at],
    )?;
    announce(tx)
}

impl PgStore {
    pub(super) fn key_record(&self, customer_id: &str, key: &ApiKey) -> ApiKeyRecord {
        ApiKeyRecord::new(self.ids.next(IdKind::ApiKey), customer_id, key, now_ms())
    }
}

impl Keys for PgStore {
    fn admin_hash(&self) -> Option<[u8; 32]> {
        self.keys.admin_hash()
    }

    fn set_admin_token(&self, token: &str) -> Result<()> {
        let hash = hash_token(token);
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('admin_token_sha256', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&hash.as_slice()],
            )?;
            announce(tx)
        })?;
        self.keys.set_admin_hash(hash);
        Ok(())
    }

    fn init_admin_token(&self, token: &str) -> Result<bool> {
        let hash = hash_token(token);
        let set = self.write(|tx, _| {
            let n = tx.execute(
                "INSERT INTO meta (key, value) VALUES ('admin_token_sha256', $1)
                 ON CONFLICT (key) DO NOTHING",
                &[&hash.as_slice()],
            )?;
            announce(tx)?;
            Ok(n == 1)
        })?;
        load(self)?;
        Ok(set)
    }

    fn key_owner(&self, hash: &[u8; 32]) -> Option<KeyOwner> {
        self.keys.owner(hash)
    }

    fn lookup_key(&self, hash: &[u8; 32]) -> Result<Option<KeyOwner>> {
        if let Some(o) = self.keys.owner(hash) {
            return Ok(Some(o));
        }
        // A key just refused is not asked for again for a moment (a client retrying a wrong
        // key costs the database one query, not one per request).
        if self.keys.recently_missed(hash) {
            return Ok(None);
        }
        let row = self.read(|tx| {
            Ok(tx.query_opt(
                &format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = $1"),
                &[&crate::domain::secret::hex(hash)],
            )?)
        })?;
        match row {
            Some(row) => {
                let rec = record(&row);
                self.keys.remember(*hash, &rec);
                Ok(self.keys.owner(hash))
            }
            None => {
                self.keys.missed(*hash);
                Ok(None)
            }
        }
    }

    fn key_still_owned(&self, key_id: &str, customer_id: &str) -> bool {
        self.keys.still_owned(key_id, customer_id)
    }

    fn touch_api_key(&self, key_id: &str, at: i64) {
        self.batcher.touch(key_id.to_owned(), at);
    }

    fn create_api_key(&self, customer_id: &str) -> Result<NewKey> {
        let key = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        let record = self.key_record(customer_id, &key);
        self.write(|tx, _| {
            if tx
                .query_opt(
                    "SELECT 1 FROM customers WHERE id = $1",
                    &[&record.customer_id],
                )?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            insert(tx, &record)
        })?;
        self.keys.remember(key.hash(), &record);
        Ok(NewKey {
            record,
            plaintext: key.as_str().to_owned(),
        })
    }

    /// The customer's keys, newest first.
    fn list_api_keys(&self, customer_id: &str) -> Result<Vec<ApiKeyRecord>> {
        self.read(|tx| {
            Ok(tx
                .query(
                    &format!(
                        "SELECT {KEY_COLS} FROM api_keys WHERE customer_id = $1 ORDER BY id DESC"
                    ),
                    &[&customer_id],
                )?
                .iter()
                .map(record)
                .collect())
        })
    }

    fn delete_api_key(&self, customer_id: &str, key_id: &str) -> Result<()> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM api_keys WHERE id = $1 AND customer_id = $2",
                &[&key_id, &customer_id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            announce(tx)
        })?;
        self.keys.forget(|owner| owner.key_id == key_id);
        Ok(())
    }
}
