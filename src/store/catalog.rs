//! The event-type catalog: seeded from the EnableNow catalog embedded at build time, extended by the operator.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::Deserialize;

use super::records::{EventType, decode, encode};
use super::tables::EVENT_TYPES;
use super::{Result, Store, StoreError};
use crate::domain::ValidationError;

const CATALOG_JSON: &str = include_str!("../../assets/event-types.json");

#[derive(Deserialize)]
struct CatalogFile {
    event_types: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    name: String,
    description: String,
    example: Box<serde_json::value::RawValue>,
}

/// The seven EnableNow event types, in catalog order.
pub fn default_catalog() -> Vec<EventType> {
    let file: CatalogFile =
        serde_json::from_str(CATALOG_JSON).expect("assets/event-types.json is valid");
    file.event_types
        .into_iter()
        .map(|e| EventType {
            name: e.name,
            description: e.description,
            example: e.example.get().to_owned(),
        })
        .collect()
}

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

impl Store {
    /// Every event type, the EnableNow ones first in catalog order, then the operator's by name.
    pub fn list_event_types(&self) -> Result<Vec<EventType>> {
        self.read(|tx: &ReadTransaction| {
            let mut all = Vec::new();
            for row in tx.open_table(EVENT_TYPES)?.iter()? {
                let (_, v) = row?;
                all.push(decode::<EventType>(v.value())?);
            }
            let order: Vec<String> = default_catalog().into_iter().map(|e| e.name).collect();
            all.sort_by_key(|e| {
                (
                    order
                        .iter()
                        .position(|n| *n == e.name)
                        .unwrap_or(usize::MAX),
                    e.name.clone(),
                )
            });
            Ok(all)
        })
    }

    pub fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        self.read(|tx| get(&tx.open_table(EVENT_TYPES)?, name))
    }

    pub fn create_event_type(&self, et: EventType) -> Result<EventType> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_catalog_has_the_seven_enablenow_types() {
        let c = super::default_catalog();
        assert_eq!(c.len(), 7);
        assert_eq!(c[0].name, "transactions.fetched");
        assert!(c.iter().all(|e| e.example.starts_with('{')));
    }
}
