//! Events: ingest (with idempotency and fan-out to subscribed endpoints) in one transaction,
//! and the event log.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use postgres::Transaction;
use postgres::types::Type;

use super::PgStore;
use super::rows::{
    DELIVERY_COLS, EVENT_COLS, decode, delivery, encode, event, insert_deliveries, insert_events,
};
use crate::domain::ingest;
use crate::domain::time::now_ms;
use crate::domain::{Accepted, Delivery, Endpoint, Event, NewEvent};
use crate::store::{
    Events, IDEMPOTENCY_TTL_MS, IdempotencyKey, Ingested, Owner, Page, PageQuery, Ready, Result,
    StoreError,
};

/// The advisory-lock class that serialises requests with one Idempotency-Key.
const IDEMPOTENCY_CLASS: i32 = 0x5768_6b75;

#[derive(serde::Serialize, serde::Deserialize)]
struct IdempotencyRecord {
    request_hash: String,
    accepted: Vec<Accepted>,
}

fn ingest_in(
    store: &PgStore,
    tx: &mut Transaction,
    ready: &mut Vec<Ready>,
    batch: Vec<NewEvent>,
) -> Result<Vec<Accepted>> {
    let customers: Vec<&str> = batch.iter().map(|e| e.customer_id.as_str()).collect();
    let names: Vec<&str> = batch.iter().map(|e| e.event.as_str()).collect();
    let known_customers: Vec<String> = tx
        .query_typed(
            "SELECT id FROM customers WHERE id = ANY($1)",
            &[(&customers, Type::TEXT_ARRAY)],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known_types: Vec<String> = tx
        .query_typed(
            "SELECT name FROM event_types WHERE name = ANY($1)",
            &[(&names, Type::TEXT_ARRAY)],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ingest::check_batch(
        &batch,
        |c| Ok::<_, StoreError>(known_customers.iter().any(|k| k == c)),
        |t| Ok(known_types.iter().any(|k| k == t)),
    )??;
    let mut subscribers: HashMap<String, Vec<Endpoint>> = HashMap::new();
    for row in tx.query_typed(
        "SELECT record FROM endpoints WHERE customer_id = ANY($1) AND enabled",
        &[(&customers, Type::TEXT_ARRAY)],
    )? {
        let e: Endpoint = decode(row.get::<_, &str>(0))?;
        subscribers
            .entry(e.customer_id.clone())
            .or_default()
            .push(e);
    }
    let now = now_ms();
    let mut accepted = Vec::with_capacity(batch.len());
    let mut events = Vec::with_capacity(batch.len());
    let mut deliveries: Vec<Delivery> = Vec::new();
    let none = Vec::new();
    for new in batch {
        let endpoints = subscribers.get(&new.customer_id).unwrap_or(&none);
        let planned = ingest::plan_event(new, &store.ids, endpoints, now);
        for (d, ep) in planned.deliveries {
            ready.push(Ready::of(&d, ep));
            deliveries.push(d);
        }
        accepted.push(planned.accepted);
        events.push(planned.event);
    }
    insert_events(tx, &events)?;
    insert_deliveries(tx, &deliveries)?;
    Ok(accepted)
}

fn ingest_now(
    store: &PgStore,
    batch: Vec<NewEvent>,
    idempotency: Option<IdempotencyKey>,
) -> Result<Ingested> {
    let now = store.clock.now_ms();
    store.write(|tx, ready| {
        let Some(idem) = idempotency else {
            return ingest_in(store, tx, ready, batch).map(Ingested::New);
        };
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))",
            &[&IDEMPOTENCY_CLASS, &idem.customer_id, &idem.key],
        )?;
        let seen = tx.query_opt(
            "SELECT record FROM idempotency WHERE customer_id = $1 AND key = $2 AND created_at > $3",
            &[&idem.customer_id, &idem.key, &(now - IDEMPOTENCY_TTL_MS)],
        )?;
        if let Some(row) = seen {
            let seen: IdempotencyRecord = decode(row.get::<_, &str>(0))?;
            return ingest::replay(&seen.request_hash, seen.accepted, &idem.request_hash)
                .map(Ingested::Replayed)
                .map_err(|why| StoreError::IdempotencyConflict(why.into()));
        }
        let accepted = ingest_in(store, tx, ready, batch)?;
        let record = IdempotencyRecord {
            request_hash: idem.request_hash,
            accepted: accepted.clone(),
        };
        // A known customer: ingest_in checked it.
        tx.execute(
            "INSERT INTO idempotency (customer_id, key, created_at, record) VALUES ($1, $2, $3, $4)
             ON CONFLICT (customer_id, key) DO UPDATE
             SET created_at = EXCLUDED.created_at, record = EXCLUDED.record",
            &[&idem.customer_id, &idem.key, &now, &encode(&record)],
        )?;
        Ok(Ingested::New(accepted))
    })
}

impl Events for PgStore {
    fn ingest(
        &self,
        batch: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> BoxFuture<'static, Result<Ingested>> {
        let me = self.me();
        Box::pin(async move {
            let Some(store) = me else {
                return Err(StoreError::Unavailable("the store is closed".into()));
            };
            tokio::task::spawn_blocking(move || ingest_now(&store, batch, idempotency))
                .await
                .unwrap_or_else(|e| Err(StoreError::Storage(format!("ingest failed: {e}"))))
        })
    }

    fn list_events(&self, owner: Owner, page: PageQuery) -> Result<Page<Event>> {
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {EVENT_COLS} FROM events WHERE ($1::text IS NULL OR customer_id = $1)
                     AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
                ),
                &[&owner.customer(), &page.before, &(page.limit as i64 + 1)],
            )?;
            let mut data: Vec<Event> = rows.iter().map(event).collect();
            Ok(super::customers::page_of(&mut data, page.limit, |e| {
                e.id.clone()
            }))
        })
    }

    fn get_event(&self, customer_id: &str, id: &str) -> Result<Option<(Event, Vec<Delivery>)>> {
        self.read(|tx| {
            let Some(row) = tx.query_opt(
                &format!("SELECT {EVENT_COLS} FROM events WHERE id = $1 AND customer_id = $2"),
                &[&id, &customer_id],
            )?
            else {
                return Ok(None);
            };
            let ev = event(&row);
            let ds = tx
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = $1 ORDER BY id DESC"
                    ),
                    &[&id],
                )?
                .iter()
                .map(delivery)
                .collect::<Result<Vec<_>>>()?;
            Ok(Some((ev, ds)))
        })
    }

    fn event_customer(&self, id: &str) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt("SELECT customer_id FROM events WHERE id = $1", &[&id])?
                .map(|r| r.get(0)))
        })
    }
}
