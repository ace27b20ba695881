//! Prefixed, monotonic ULID ids (`cus_…`, `ep_…`, …) and the check that a path id has the right shape.

use std::sync::Mutex;

use ulid::{Generator, Ulid};

/// The kinds of object that carry an id; the prefix tells them apart on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Customer,
    ApiKey,
    Endpoint,
    Event,
    Delivery,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Customer => "cus_",
            IdKind::ApiKey => "key_",
            IdKind::Endpoint => "ep_",
            IdKind::Event => "evt_",
            IdKind::Delivery => "dlv_",
        }
    }

    /// True when `s` is this kind's prefix followed by a well-formed ULID.
    pub fn matches(self, s: &str) -> bool {
        s.strip_prefix(self.prefix())
            .is_some_and(|rest| rest.len() == 26 && Ulid::from_string(rest).is_ok())
    }

    /// The id, if it has this kind's shape: an id of another shape cannot exist, so the
    /// answer is "not found" without a look-up.
    pub fn check(self, id: String) -> Result<String, NoSuchId> {
        if self.matches(&id) {
            Ok(id)
        } else {
            Err(NoSuchId)
        }
    }
}

/// An id that cannot name anything of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchId;

/// One process-wide monotonic generator: ids sort in creation order, which the store's
/// indexes and paging rely on.
#[derive(Debug, Default)]
pub struct IdGen {
    inner: Mutex<Generator>,
}

impl IdGen {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next(&self, kind: IdKind) -> String {
        let mut generator = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ulid = loop {
            // Overflow means 2^80 ids in one millisecond: wait for the next one.
            if let Ok(ulid) = generator.generate() {
                break ulid;
            }
            std::thread::yield_now();
        };
        format!("{}{}", kind.prefix(), ulid)
    }
}

/// Milliseconds since the epoch encoded in an id, for retention.
pub fn timestamp_ms(id: &str) -> Option<u64> {
    let (_, ulid) = id.split_once('_')?;
    Ulid::from_string(ulid).ok().map(|u| u.timestamp_ms())
}

/// The smallest id of `kind` created at `ms`, as a range bound.
pub fn lower_bound_at(kind: IdKind, ms: u64) -> String {
    format!("{}{}", kind.prefix(), Ulid::from_parts(ms, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_monotonic_and_recognised() {
        let ids = IdGen::new();
        let a = ids.next(IdKind::Event);
        let b = ids.next(IdKind::Event);
        assert!(a < b);
        assert!(IdKind::Event.matches(&a));
        assert!(!IdKind::Endpoint.matches(&a));
        assert!(!IdKind::Event.matches("evt_nope"));
        assert_eq!(a.len(), 4 + 26);
        assert!(timestamp_ms(&a).is_some());
    }
}
