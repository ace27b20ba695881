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
    /// Keys the store said it does not have, and when (kept `MISS_KEPT`, at most `MAX_MISSES`).
    misses: std::sync::Mutex<HashMap<[u8; 32], std::time::Instant>>,
}

/// How long a key the store does not have is not asked for again.
const MISS_KEPT: std::time::Duration = std::time::Duration::from_secs(2);
const MAX_MISSES: usize = 10_000;

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

    /// The store said it has no such key.
    pub fn missed(&self, hash: [u8; 32]) {
        let mut m = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_MISSES {
            m.retain(|_, at| at.elapsed() < MISS_KEPT);
            if m.len() >= MAX_MISSES {
                m.clear();
            }
        }
        m.insert(hash, std::time::Instant::now());
    }

    /// The store said so a moment ago.
    pub fn recently_missed(&self, hash: &[u8; 32]) -> bool {
        self.misses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .is_some_and(|at| at.elapsed() < MISS_KEPT)
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
