//! Events: ingest (with idempotency and fan-out to subscribed endpoints) and the event log.

use futures_util::future::BoxFuture;
use redb::{ReadableTable, WriteTransaction};

use super::deliveries::{DeliveryTables, ReadView};
use super::paging::index_ids;
use super::records::{
    Delivery, Endpoint, Event, EventRow, IdempotencyRecord, decode, decode_bin, encode, encode_bin,
};
use super::tables::*;
use super::{RedbStore, WriteCtx};
use crate::domain::ingest;
use crate::domain::time::now_ms;
use crate::domain::{Accepted, IdGen, NewEvent};
use crate::store::{
    Events, IDEMPOTENCY_TTL_MS, IdempotencyKey, Ingested, Owner, Page, PageQuery, Ready, Result,
    StoreError,
};

/// One event from its table (read or write transaction).
pub(super) fn get_from(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Event>> {
    table
        .get(id)?
        .map(|v| decode_bin::<EventRow>(v.value()).map(|r| r.into_event(id)))
        .transpose()
}

pub(super) fn get_in(tx: &WriteTransaction, id: &str) -> Result<Option<Event>> {
    get_from(&tx.open_table(EVENTS)?, id)
}

pub(super) fn put_new(tx: &WriteTransaction, e: &Event) -> Result<()> {
    tx.open_table(EVENTS)?
        .insert(e.id.as_str(), encode_bin(&EventRow::of(e)).as_slice())?;
    tx.open_table(CUSTOMER_EVENTS)?
        .insert((e.customer_id.as_str(), e.id.as_str()), ())?;
    Ok(())
}

/// Checks the batch against the store, then writes every event with its deliveries (the
/// rules: `domain::ingest`): all or nothing.
fn ingest_in(ctx: &mut WriteCtx, ids: &IdGen, batch: Vec<NewEvent>) -> Result<Vec<Accepted>> {
    {
        let customers = ctx.tx.open_table(CUSTOMERS)?;
        let types = ctx.tx.open_table(EVENT_TYPES)?;
        ingest::check_batch(
            &batch,
            |c| Ok::<_, StoreError>(customers.get(c)?.is_some()),
            |t| Ok(types.get(t)?.is_some()),
        )??;
    }
    let now = now_ms();
    let mut accepted = Vec::with_capacity(batch.len());
    let mut subscribers: Vec<Endpoint> = Vec::new();
    let mut subscribers_of: Option<String> = None;
    // Opened once for the whole batch, not per event.
    let mut events = ctx.tx.open_table(EVENTS)?;
    let mut by_customer = ctx.tx.open_table(CUSTOMER_EVENTS)?;
    let mut dt = DeliveryTables::open(ctx)?;
    for new in batch {
        if subscribers_of.as_deref() != Some(new.customer_id.as_str()) {
            subscribers = enabled_endpoints(ctx.tx, &new.customer_id)?;
            subscribers_of = Some(new.customer_id.clone());
        }
        let planned = ingest::plan_event(new, ids, &subscribers, now);
        let event = &planned.event;
        events.insert(
            event.id.as_str(),
            encode_bin(&EventRow::of(event)).as_slice(),
        )?;
        by_customer.insert((event.customer_id.as_str(), event.id.as_str()), ())?;
        ctx.tally.borrow_mut().rows += 2;
        for (d, ep) in &planned.deliveries {
            dt.insert_pending(d)?;
            ctx.ready.push(Ready::of(d, ep));
        }
        accepted.push(planned.accepted);
    }
    Ok(accepted)
}

fn enabled_endpoints(tx: &WriteTransaction, customer_id: &str) -> Result<Vec<Endpoint>> {
    let index = tx.open_table(CUSTOMER_ENDPOINTS)?;
    let table = tx.open_table(ENDPOINTS)?;
    let mut v = Vec::new();
    for id in index_ids(&index, customer_id)? {
        if let Some(raw) = table.get(id.as_str())? {
            let e: Endpoint = decode(raw.value())?;
            if e.enabled {
                v.push(e);
            }
        }
    }
    Ok(v)
}

impl Events for RedbStore {
    fn ingest(
        &self,
        batch: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> BoxFuture<'static, Result<Ingested>> {
        let ids = self.ids.clone();
        let clock = self.clock.clone();
        let committed = self.writer.submit(move |ctx| {
            let Some(idem) = idempotency else {
                return ingest_in(ctx, &ids, batch).map(Ingested::New);
            };
            let now = clock.now_ms();
            {
                let table = ctx.tx.open_table(IDEMPOTENCY)?;
                let seen = table
                    .get((idem.customer_id.as_str(), idem.key.as_str()))?
                    .map(|v| decode::<IdempotencyRecord>(v.value()))
                    .transpose()?
                    .filter(|r| now - r.created_at < IDEMPOTENCY_TTL_MS);
                if let Some(seen) = seen {
                    return ingest::replay(&seen.request_hash, seen.accepted, &idem.request_hash)
                        .map(Ingested::Replayed)
                        .map_err(|why| StoreError::IdempotencyConflict(why.into()));
                }
            }
            let accepted = ingest_in(ctx, &ids, batch)?;
            let record = IdempotencyRecord {
                request_hash: idem.request_hash,
                accepted: accepted.clone(),
                created_at: now,
            };
            ctx.tx.open_table(IDEMPOTENCY)?.insert(
                (idem.customer_id.as_str(), idem.key.as_str()),
                encode(&record).as_slice(),
            )?;
            Ok(Ingested::New(accepted))
        });
        Box::pin(async move {
            committed
                .await
                .unwrap_or_else(|_| Err(super::writer::stopped()))
        })
    }

    fn list_events(&self, owner: Owner, page: PageQuery) -> Result<Page<Event>> {
        self.read(|tx| {
            super::paging::page_owned(
                &tx.open_table(CUSTOMER_EVENTS)?,
                &tx.open_table(EVENTS)?,
                owner,
                page,
                |id, raw| Ok(decode_bin::<EventRow>(raw)?.into_event(id)),
                |e: &Event| e.id.clone(),
            )
        })
    }

    /// One of the customer's events with all its deliveries, newest first.
    fn get_event(&self, customer_id: &str, id: &str) -> Result<Option<(Event, Vec<Delivery>)>> {
        self.read(|tx| {
            let event = get_from(&tx.open_table(EVENTS)?, id)?;
            let Some(event) = event.filter(|e| e.customer_id == customer_id) else {
                return Ok(None);
            };
            let index = tx.open_table(EVENT_DELIVERIES)?;
            let view = ReadView::open(tx)?;
            let mut deliveries: Vec<Delivery> = Vec::new();
            for row in index.range((id, "")..(id, ID_MAX))?.rev() {
                let (k, _) = row?;
                if let Some(d) = view.get(k.value().1)? {
                    deliveries.push(d);
                }
            }
            Ok(Some((event, deliveries)))
        })
    }

    /// The customer an event belongs to (for the operator's view).
    fn event_customer(&self, id: &str) -> Result<Option<String>> {
        self.read(|tx| Ok(get_from(&tx.open_table(EVENTS)?, id)?.map(|e| e.customer_id)))
    }
}
