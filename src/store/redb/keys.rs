//! The admin token and the customers' API keys: stored as hashes, and held in memory (the
//! key cache) so that authenticating a request never blocks.

use std::collections::HashMap;

use redb::ReadableTable;

use super::RedbStore;
use super::records::{ApiKeyRecord, decode, encode};
use super::tables::*;
use crate::domain::secret::{hash_token, unhex32};
use crate::domain::time::now_ms;
use crate::domain::{ApiKey, IdKind};
use crate::store::key_cache::{KeyCache, owner};
use crate::store::{KeyOwner, Keys, NewKey, Result, StoreError};

/// Fills the cache from the file.
pub(super) fn load(cache: &KeyCache, store: &RedbStore) -> Result<()> {
    let (keys, admin) = store.read(|tx| {
        let mut keys = HashMap::new();
        for row in tx.open_table(API_KEYS)?.iter()? {
            let (_, v) = row?;
            let rec: ApiKeyRecord = decode(v.value())?;
            if let Some(hash) = unhex32(&rec.hash) {
                keys.insert(hash, owner(&rec));
            }
        }
        let admin = tx
            .open_table(META)?
            .get("admin_token_sha256")?
            .and_then(|v| v.value().try_into().ok());
        Ok((keys, admin))
    })?;
    cache.replace(keys, admin);
    Ok(())
}

impl RedbStore {
    /// A new key's record (its plaintext is never stored).
    pub(super) fn key_record(&self, customer_id: &str, key: &ApiKey) -> ApiKeyRecord {
        ApiKeyRecord::new(self.ids.next(IdKind::ApiKey), customer_id, key, now_ms())
    }
}

impl Keys for RedbStore {
    fn admin_hash(&self) -> Option<[u8; 32]> {
        self.keys.admin_hash()
    }

    fn set_admin_token(&self, token: &str) -> Result<()> {
        let hash = hash_token(token);
        self.write(move |ctx| {
            ctx.tx
                .open_table(META)?
                .insert("admin_token_sha256", hash.as_slice())?;
            Ok(())
        })?;
        self.keys.set_admin_hash(hash);
        Ok(())
    }

    fn init_admin_token(&self, token: &str) -> Result<bool> {
        let hash = hash_token(token);
        let set = self.write(move |ctx| {
            let mut meta = ctx.tx.open_table(META)?;
            if meta.get("admin_token_sha256")?.is_some() {
                return Ok(false);
            }
            meta.insert("admin_token_sha256", hash.as_slice())?;
            Ok(true)
        })?;
        if set {
            self.keys.set_admin_hash(hash);
        }
        Ok(set)
    }

    fn key_owner(&self, hash: &[u8; 32]) -> Option<KeyOwner> {
        self.keys.owner(hash)
    }

    fn key_still_owned(&self, key_id: &str, customer_id: &str) -> bool {
        self.keys.still_owned(key_id, customer_id)
    }

    fn touch_api_key(&self, key_id: &str, at: i64) {
        let kid = key_id.to_owned();
        self.write_detached(move |ctx| {
            let mut keys = ctx.tx.open_table(API_KEYS)?;
            let rec = keys
                .get(kid.as_str())?
                .map(|v| decode::<ApiKeyRecord>(v.value()))
                .transpose()?;
            if let Some(mut rec) = rec {
                rec.last_used_at = Some(at);
                keys.insert(kid.as_str(), encode(&rec).as_slice())?;
            }
            Ok(())
        });
    }

    fn create_api_key(&self, customer_id: &str) -> Result<NewKey> {
        let key = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        let record = self.key_record(customer_id, &key);
        let r = record.clone();
        let (cache, hash) = (self.keys.clone(), key.hash());
        self.write(move |ctx| {
            if ctx
                .tx
                .open_table(CUSTOMERS)?
                .get(r.customer_id.as_str())?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            ctx.tx
                .open_table(API_KEYS)?
                .insert(r.id.as_str(), encode(&r).as_slice())?;
            // On the writer, in commit order with the customer's deletion.
            cache.remember(hash, &r);
            Ok(())
        })?;
        Ok(NewKey {
            record,
            plaintext: key.as_str().to_owned(),
        })
    }

    /// The customer's keys, newest first.
    fn list_api_keys(&self, customer_id: &str) -> Result<Vec<ApiKeyRecord>> {
        self.read(|tx| {
            let mut v = Vec::new();
            for row in tx.open_table(API_KEYS)?.iter()?.rev() {
                let (_, val) = row?;
                let k: ApiKeyRecord = decode(val.value())?;
                if k.customer_id == customer_id {
                    v.push(k);
                }
            }
            Ok(v)
        })
    }

    fn delete_api_key(&self, customer_id: &str, key_id: &str) -> Result<()> {
        let (cid, kid) = (customer_id.to_owned(), key_id.to_owned());
        let cache = self.keys.clone();
        self.write(move |ctx| {
            let mut keys = ctx.tx.open_table(API_KEYS)?;
            let owned = match keys.get(kid.as_str())? {
                Some(v) => decode::<ApiKeyRecord>(v.value())?.customer_id == cid,
                None => false,
            };
            if !owned {
                return Err(StoreError::NotFound);
            }
            keys.remove(kid.as_str())?;
            cache.forget(|owner| owner.key_id == kid);
            Ok(())
        })
    }
}
