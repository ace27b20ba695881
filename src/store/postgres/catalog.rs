//! The event-type catalog: EnableNow's types (seeded at start, in catalog order), then the
//! operator's by name.

use super::PgStore;
use crate::domain::{EventType, ValidationError};
use crate::store::{Catalog, Page, PageQuery, Result, StoreError};

fn event_type(row: &postgres::Row) -> EventType {
    EventType {
        name: row.get(0),
        description: row.get(1),
        example: row.get(2),
    }
}

pub(super) fn get(tx: &mut postgres::Transaction, name: &str) -> Result<Option<EventType>> {
    Ok(tx
        .query_opt(
            "SELECT name, description, example FROM event_types WHERE name = $1",
            &[&name],
        )?
        .as_ref()
        .map(event_type))
}

impl Catalog for PgStore {
    fn list_event_types(&self, page: PageQuery) -> Result<Page<EventType>> {
        self.read(|tx| {
            // Where `before` sits: its rank among EnableNow's, or among the operator's by name.
            let rank: Option<Option<i32>> = match page.before {
                None => None,
                Some(b) => Some(
                    tx.query_opt(
                        "SELECT builtin_rank FROM event_types WHERE name = $1",
                        &[&b],
                    )?
                    .and_then(|r| r.get::<_, Option<i32>>(0)),
                ),
            };
            let limit = page.limit as i64 + 1;
            let rows = match rank {
                None => tx.query(
                    "SELECT name, description, example FROM event_types
                     ORDER BY builtin_rank NULLS LAST, name LIMIT $1",
                    &[&limit],
                )?,
                Some(Some(r)) => tx.query(
                    "SELECT name, description, example FROM event_types
                     WHERE builtin_rank > $1 OR builtin_rank IS NULL
                     ORDER BY builtin_rank NULLS LAST, name LIMIT $2",
                    &[&r, &limit],
                )?,
                Some(None) => tx.query(
                    "SELECT name, description, example FROM event_types
                     WHERE builtin_rank IS NULL AND name > $1 ORDER BY name LIMIT $2",
                    &[&page.before, &limit],
                )?,
            };
            let mut data: Vec<EventType> = rows.iter().map(event_type).collect();
            Ok(super::customers::page_of(&mut data, page.limit, |e| {
                e.name.clone()
            }))
        })
    }

    fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        self.read(|tx| get(tx, name))
    }

    fn create_event_type(&self, et: EventType) -> Result<EventType> {
        et.validate()?;
        self.write(|tx, _| {
            let n = tx.execute(
                "INSERT INTO event_types (name, description, example) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&et.name, &et.description, &et.example],
            )?;
            if n == 0 {
                return Err(StoreError::Invalid(ValidationError::new(
                    "event_type_exists",
                    format!("event type {:?} already exists", et.name),
                )));
            }
            Ok(())
        })?;
        Ok(et)
    }
}
