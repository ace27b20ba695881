//! The event-type catalog: seeded from the EnableNow catalog embedded at build time, extended by the operator.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::RedbStore;
use super::records::{EventType, decode, encode};
use super::tables::EVENT_TYPES;
use crate::domain::ValidationError;
use crate::domain::event::default_catalog;
use crate::store::{Catalog, Page, PageQuery, Result, StoreError};

pub(super) fn seed(tx: &WriteTransaction) -> Result<()> {
    let mut table = tx.open_table(EVENT_TYPES)?;
    for et in default_catalog() {
        table.insert(et.name.as_str(), encode(&et).as_slice())?;
    }
    Ok(())
}

pub(super) fn get(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<EventType>> {
    table.get(name)?.map(|v| decode(v.value())).transpose()
}

impl Catalog for RedbStore {
    /// A page of event types: the EnableNow ones first in catalog order, then the operator's
    /// by name. `before` is the name the previous page ended with. Only the page is decoded.
    fn list_event_types(&self, page: PageQuery) -> Result<Page<EventType>> {
        self.read(|tx: &ReadTransaction| {
            let table = tx.open_table(EVENT_TYPES)?;
            let builtin: Vec<String> = default_catalog().into_iter().map(|e| e.name).collect();
            let is_builtin = |n: &str| builtin.iter().any(|b| b == n);
            let mut data = Vec::with_capacity(page.limit);
            let mut more = false;
            let mut take = |name: &str| -> Result<bool> {
                if data.len() == page.limit {
                    more = true;
                    return Ok(false);
                }
                if let Some(et) = get(&table, name)? {
                    data.push(et);
                }
                Ok(true)
            };
            // Where the page starts: after `before` among the built-in ones, or among the rest.
            let (builtin_from, rest_after) = match page.before {
                None => (0, None),
                Some(b) => match builtin.iter().position(|n| n == b) {
                    Some(i) => (i + 1, None),
                    None => (builtin.len(), Some(b)),
                },
            };
            let mut open = true;
            for name in &builtin[builtin_from..] {
                if table.get(name.as_str())?.is_some() && !take(name)? {
                    open = false;
                    break;
                }
            }
            if open {
                let rows = match rest_after {
                    Some(after) => table.range::<&str>((
                        std::ops::Bound::Excluded(after),
                        std::ops::Bound::Unbounded,
                    ))?,
                    None => table.range::<&str>(..)?,
                };
                for row in rows {
                    let (k, _) = row?;
                    let name = k.value();
                    if is_builtin(name) {
                        continue;
                    }
                    if !take(name)? {
                        break;
                    }
                }
            }
            let next = more.then(|| data.last().map(|e| e.name.clone())).flatten();
            Ok(Page { data, next })
        })
    }

    fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        self.read(|tx| get(&tx.open_table(EVENT_TYPES)?, name))
    }

    fn create_event_type(&self, et: EventType) -> Result<EventType> {
        et.validate()?;
        self.write(move |ctx| {
            let mut table = ctx.tx.open_table(EVENT_TYPES)?;
            if table.get(et.name.as_str())?.is_some() {
                return Err(StoreError::Invalid(ValidationError::new(
                    "event_type_exists",
                    format!("event type {:?} already exists", et.name),
                )));
            }
            table.insert(et.name.as_str(), encode(&et).as_slice())?;
            Ok(et)
        })
    }
}
