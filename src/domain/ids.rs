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
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generator: Generator,
    /// No id is made at or below this: set from the newest id in the store at start, so a
    /// clock set back between two runs cannot make an id that sorts before an older one.
    floor: Ulid,
}

impl IdGen {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids made from now on sort after `id` (of any kind), whatever the clock says.
    pub fn resume_after(&self, id: &str) {
        let Some(ulid) = id
            .split_once('_')
            .and_then(|(_, u)| Ulid::from_string(u).ok())
        else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.floor = inner.floor.max(ulid);
    }

    pub fn next(&self, kind: IdKind) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ulid = loop {
            // Overflow means 2^80 ids in one millisecond: wait for the next one.
            if let Ok(ulid) = inner.generator.generate() {
                break ulid;
            }
            std::thread::yield_now();
        };
        let ulid = if ulid <= inner.floor {
            inner.floor.increment().unwrap_or(ulid)
        } else {
            ulid
        };
        inner.floor = ulid;
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

    #[test]
    fn ids_sort_after_a_resumed_one_whatever_the_clock() {
        let ids = IdGen::new();
        let future = format!("dlv_{}", Ulid::from_parts(u64::MAX >> 17, 5));
        ids.resume_after(&future);
        let a = ids.next(IdKind::Delivery);
        let b = ids.next(IdKind::Delivery);
        assert!(future < a && a < b, "{future} {a} {b}");
    }
}
