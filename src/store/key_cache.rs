//! The key cache: every API key's owner by hash, and the admin token's hash, held in memory
//! so that authenticating a request never blocks. Each engine fills it and keeps it current.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

use super::KeyOwner;
use crate::domain::ApiKeyRecord;

#[derive(Default)]
pub struct KeyCache {
    keys: RwLock<HashMap<[u8; 32], KeyOwner>>,
    admin_hash: RwLock<Option<[u8; 32]>>,
}

impl KeyCache {
    /// Replaces everything with what the store holds now.
    pub fn replace(&self, keys: HashMap<[u8; 32], KeyOwner>, admin: Option<[u8; 32]>) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *self.admin_hash.write().unwrap_or_else(|e| e.into_inner()) = admin;
    }

    pub fn remember(&self, hash: [u8; 32], record: &ApiKeyRecord) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, owner(record));
    }

    pub fn forget(&self, pred: impl Fn(&KeyOwner) -> bool) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, owner| !pred(owner));
    }

    pub fn admin_hash(&self) -> Option<[u8; 32]> {
        *self.admin_hash.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_admin_hash(&self, hash: [u8; 32]) {
        *self.admin_hash.write().unwrap_or_else(|e| e.into_inner()) = Some(hash);
    }

    pub fn owner(&self, hash: &[u8; 32]) -> Option<KeyOwner> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    pub fn still_owned(&self, key_id: &str, customer_id: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|o| o.key_id == key_id && o.customer_id == customer_id)
    }
}

/// A key record as the cache holds it.
pub fn owner(rec: &ApiKeyRecord) -> KeyOwner {
    KeyOwner {
        key_id: rec.id.clone(),
        customer_id: rec.customer_id.clone(),
        touched: Arc::new(AtomicI64::new(rec.last_used_at.unwrap_or(0))),
    }
}
