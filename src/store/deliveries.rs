//! Deliveries: their indexes, the log's queries, resend, and the queue operations the
//! dispatcher and workers use (claim, unclaim, finish, interrupt after a crash, prune).

use redb::{ReadableTable, Table, WriteTransaction};

use super::records::{Delivery, Endpoint, Event, Outcome, decode, encode};
use super::tables::*;
use super::writer::Ready;
use super::{Faults, Page, PageQuery, Result, Store, StoreError};
use crate::domain::time::now_ms;
use crate::domain::{DeliveryError, DeliveryStatus, IdGen, IdKind, ids};

/// Every table a delivery lives in, opened once per transaction.
pub(super) struct DeliveryTables<'t> {
    pub records: Table<'t, &'static str, &'static [u8]>,
    pub by_customer: Table<'t, (&'static str, &'static str), ()>,
    pub by_endpoint: Table<'t, (&'static str, &'static str), ()>,
    pub by_event: Table<'t, (&'static str, &'static str), ()>,
    pub pending: Table<'t, (&'static str, &'static str), ()>,
    pub sending: Table<'t, &'static str, &'static str>,
}

impl<'t> DeliveryTables<'t> {
    pub fn open(tx: &'t WriteTransaction) -> Result<Self> {
        Ok(Self {
            records: tx.open_table(DELIVERIES)?,
            by_customer: tx.open_table(CUSTOMER_DELIVERIES)?,
            by_endpoint: tx.open_table(ENDPOINT_DELIVERIES)?,
            by_event: tx.open_table(EVENT_DELIVERIES)?,
            pending: tx.open_table(PENDING)?,
            sending: tx.open_table(SENDING)?,
        })
    }

    pub fn get(&self, id: &str) -> Result<Option<Delivery>> {
        self.records.get(id)?.map(|v| decode(v.value())).transpose()
    }

    pub fn put(&mut self, d: &Delivery) -> Result<()> {
        self.records.insert(d.id.as_str(), encode(d).as_slice())?;
        Ok(())
    }

    /// Adds a new pending delivery with its indexes.
    pub fn insert_pending(&mut self, d: &Delivery) -> Result<()> {
        self.put(d)?;
        let id = d.id.as_str();
        self.by_customer.insert((d.customer_id.as_str(), id), ())?;
        self.by_endpoint.insert((d.endpoint_id.as_str(), id), ())?;
        self.by_event.insert((d.event_id.as_str(), id), ())?;
        self.pending.insert((d.endpoint_id.as_str(), id), ())?;
        Ok(())
    }

    pub fn remove(&mut self, d: &Delivery) -> Result<()> {
        let id = d.id.as_str();
        self.records.remove(id)?;
        self.by_customer.remove((d.customer_id.as_str(), id))?;
        self.by_endpoint.remove((d.endpoint_id.as_str(), id))?;
        self.by_event.remove((d.event_id.as_str(), id))?;
        self.pending.remove((d.endpoint_id.as_str(), id))?;
        self.sending.remove(id)?;
        Ok(())
    }
}

/// A new pending delivery of `event` to `endpoint`.
pub(super) fn new_delivery(
    ids: &IdGen,
    event: &Event,
    endpoint: &Endpoint,
    resend_of: Option<String>,
    now: i64,
) -> Delivery {
    Delivery {
        id: ids.next(IdKind::Delivery),
        event_id: event.id.clone(),
        endpoint_id: endpoint.id.clone(),
        customer_id: event.customer_id.clone(),
        event: event.event.clone(),
        url: endpoint.url.clone(),
        status: DeliveryStatus::Pending,
        response_status: None,
        response_body: None,
        error: None,
        error_detail: None,
        duration_ms: None,
        created_at: now,
        started_at: None,
        finished_at: None,
        resend_of,
        test: event.test,
    }
}

pub(super) fn ready(d: &Delivery, endpoint: &Endpoint) -> Ready {
    Ready {
        endpoint_id: d.endpoint_id.clone(),
        delivery_id: d.id.clone(),
        rate_limit_per_sec: endpoint.rate_limit_per_sec,
    }
}

/// A delivery as it stands: a record still written `pending` whose id is in the `sending`
/// table has been claimed (claims do not rewrite the record, to keep the writer's work small).
pub(super) fn with_claim(
    mut d: Delivery,
    sending: &impl ReadableTable<&'static str, &'static str>,
) -> Result<Delivery> {
    if d.status == DeliveryStatus::Pending && sending.get(d.id.as_str())?.is_some() {
        d.status = DeliveryStatus::Sending;
    }
    Ok(d)
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<DeliveryStatus>,
}

/// What a worker needs to send one delivery.
#[derive(Debug, Clone)]
pub struct SendJob {
    pub delivery: Delivery,
    pub endpoint: Endpoint,
    pub event: Event,
}

impl Store {
    /// The customer's deliveries, newest first. A filter on another customer's endpoint or
    /// event finds nothing. At most `MAX_SCAN` rows are read per page: a sparse filter may
    /// give a short page whose `next` carries on.
    pub fn list_deliveries(
        &self,
        customer_id: &str,
        filter: &DeliveryFilter,
        page: PageQuery,
    ) -> Result<Page<Delivery>> {
        const MAX_SCAN: usize = 10_000;
        self.read(|tx| {
            let owns = |table: redb::TableDefinition<&str, &[u8]>, id: &str| -> Result<bool> {
                /// Endpoints and events both carry the customer they belong to.
                #[derive(serde::Deserialize)]
                struct Owned {
                    customer_id: String,
                }
                let Some(v) = tx.open_table(table)?.get(id)? else {
                    return Ok(false);
                };
                Ok(decode::<Owned>(v.value())?.customer_id == customer_id)
            };
            let empty = Page {
                data: Vec::new(),
                next: None,
            };
            let (table, owner) = if let Some(ep) = &filter.endpoint_id {
                if !owns(ENDPOINTS, ep)? {
                    return Ok(empty);
                }
                (tx.open_table(ENDPOINT_DELIVERIES)?, ep.as_str())
            } else if let Some(evt) = &filter.event_id {
                if !owns(EVENTS, evt)? {
                    return Ok(empty);
                }
                (tx.open_table(EVENT_DELIVERIES)?, evt.as_str())
            } else {
                (tx.open_table(CUSTOMER_DELIVERIES)?, customer_id)
            };
            let records = tx.open_table(DELIVERIES)?;
            let sending = tx.open_table(SENDING)?;
            let upper = page.before.unwrap_or(ID_MAX);
            let mut data = Vec::new();
            let mut next = None;
            let mut last_scanned = None;
            for (scanned, row) in table.range((owner, "")..(owner, upper))?.rev().enumerate() {
                let (k, _) = row?;
                let id = k.value().1;
                if scanned == MAX_SCAN {
                    next = last_scanned;
                    break;
                }
                last_scanned = Some(id.to_owned());
                let Some(v) = records.get(id)? else { continue };
                let d = with_claim(decode(v.value())?, &sending)?;
                let keep = d.customer_id == customer_id
                    && filter.event_id.as_ref().is_none_or(|e| *e == d.event_id)
                    && filter.status.is_none_or(|s| s == d.status);
                if !keep {
                    continue;
                }
                if data.len() == page.limit {
                    next = data.last().map(|d: &Delivery| d.id.clone());
                    break;
                }
                data.push(d);
            }
            Ok(Page { data, next })
        })
    }

    /// One delivery of the customer's; another customer's is `None`.
    pub fn get_delivery(&self, customer_id: &str, id: &str) -> Result<Option<Delivery>> {
        self.read(|tx| {
            let d: Option<Delivery> = tx
                .open_table(DELIVERIES)?
                .get(id)?
                .map(|v| decode(v.value()))
                .transpose()?;
            let sending = tx.open_table(SENDING)?;
            d.filter(|d| d.customer_id == customer_id)
                .map(|d| with_claim(d, &sending))
                .transpose()
        })
    }

    /// A new delivery of the same event to the endpoint's current URL and secret.
    pub fn resend_delivery(&self, customer_id: &str, id: &str) -> Result<Delivery> {
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        let idgen = self.ids.clone();
        self.write(move |ctx| {
            let mut dt = DeliveryTables::open(ctx.tx)?;
            let original = dt
                .get(&id)?
                .filter(|d| d.customer_id == cid)
                .ok_or(StoreError::NotFound)?;
            let endpoint = super::endpoints::get_in(ctx.tx, &original.endpoint_id)?
                .ok_or(StoreError::NotFound)?;
            let event =
                super::events::get_in(ctx.tx, &original.event_id)?.ok_or(StoreError::NotFound)?;
            let d = new_delivery(
                &idgen,
                &event,
                &endpoint,
                Some(original.id.clone()),
                now_ms(),
            );
            dt.insert_pending(&d)?;
            ctx.ready.push(ready(&d, &endpoint));
            Ok(d)
        })
    }

    /// Moves these pending deliveries to `sending` in one commit: from here on they count as
    /// possibly sent. `then` gets the ones that were still pending (others were deleted or
    /// disabled) once that is durable.
    pub fn claim_then(
        &self,
        ids: Vec<(String, String)>,
        then: impl FnOnce(Result<Vec<(String, String)>>) + Send + 'static,
    ) {
        self.write_then(
            move |ctx| {
                let mut dt = DeliveryTables::open(ctx.tx)?;
                let mut claimed = Vec::with_capacity(ids.len());
                for (ep, dlv) in ids {
                    // The record itself is not rewritten: being in `sending` is the claim.
                    if dt.pending.remove((ep.as_str(), dlv.as_str()))?.is_none() {
                        continue;
                    }
                    dt.sending.insert(dlv.as_str(), ep.as_str())?;
                    claimed.push((ep, dlv));
                }
                Ok(claimed)
            },
            then,
        );
    }

    /// Puts claimed deliveries that no worker started back to `pending` (at shutdown).
    pub fn unclaim(&self, ids: Vec<(String, String)>) -> Result<()> {
        self.write(move |ctx| {
            let mut dt = DeliveryTables::open(ctx.tx)?;
            for (ep, dlv) in ids {
                if dt.sending.remove(dlv.as_str())?.is_none() {
                    continue;
                }
                dt.pending.insert((ep.as_str(), dlv.as_str()), ())?;
            }
            Ok(())
        })
    }

    /// What a worker needs for a claimed delivery; `None` if it was deleted meanwhile.
    pub fn load_send_job(&self, delivery_id: &str) -> Result<Option<SendJob>> {
        if Faults::on(&self.faults.load) {
            return Err(StoreError::Storage(
                "cannot read the delivery (injected fault)".into(),
            ));
        }
        self.read(|tx| {
            let Some(v) = tx.open_table(DELIVERIES)?.get(delivery_id)? else {
                return Ok(None);
            };
            let delivery: Delivery = decode(v.value())?;
            let Some(v) = tx
                .open_table(ENDPOINTS)?
                .get(delivery.endpoint_id.as_str())?
            else {
                return Ok(None);
            };
            let endpoint: Endpoint = decode(v.value())?;
            let Some(v) = tx.open_table(EVENTS)?.get(delivery.event_id.as_str())? else {
                return Ok(None);
            };
            let event: Event = decode(v.value())?;
            Ok(Some(SendJob {
                delivery,
                endpoint,
                event,
            }))
        })
    }

    /// Records a worker's result; grouped with other writes, nobody waits for it.
    pub fn finish(&self, outcome: Outcome) {
        self.write_detached(move |ctx| {
            // Only the two tables a result touches: this runs once per delivery.
            ctx.tx
                .open_table(SENDING)?
                .remove(outcome.delivery_id.as_str())?;
            let mut records = ctx.tx.open_table(DELIVERIES)?;
            let Some(mut d) = records
                .get(outcome.delivery_id.as_str())?
                .map(|v| decode::<Delivery>(v.value()))
                .transpose()?
            else {
                return Ok(());
            };
            d.status = outcome.status();
            d.url = outcome.url;
            d.response_status = outcome.response_status;
            d.response_body = outcome.response_body;
            d.error = outcome.error;
            d.error_detail = outcome.error_detail;
            d.duration_ms = Some(outcome.duration_ms);
            d.started_at = Some(outcome.started_at);
            d.finished_at = Some(outcome.finished_at);
            records.insert(d.id.as_str(), encode(&d).as_slice())?;
            Ok(())
        });
    }

    /// A claimed delivery that its worker could not prepare (its records could not be read):
    /// it was certainly not sent, so it ends `failed` with error `internal` rather than
    /// staying `sending` (and turning `interrupted` at the next start).
    pub fn fail_unsent(&self, delivery_id: String, detail: String) {
        let now = self.clock.now_ms();
        self.write_detached(move |ctx| {
            let mut dt = DeliveryTables::open(ctx.tx)?;
            dt.sending.remove(delivery_id.as_str())?;
            if let Some(mut d) = dt.get(&delivery_id)? {
                d.status = DeliveryStatus::Failed;
                d.error = Some(DeliveryError::Internal);
                d.error_detail = Some(detail);
                d.started_at = Some(now);
                d.finished_at = Some(now);
                d.duration_ms = Some(0);
                dt.put(&d)?;
            }
            Ok(())
        });
    }

    /// At start-up: whatever was handed to a worker by the last process might have been sent.
    /// It becomes `interrupted` and is never sent again by itself. Returns how many.
    pub fn interrupt_in_flight(&self) -> Result<usize> {
        self.write(|ctx| {
            let mut dt = DeliveryTables::open(ctx.tx)?;
            let mut ids = Vec::new();
            for row in dt.sending.iter()? {
                ids.push(row?.0.value().to_owned());
            }
            let now = now_ms();
            for id in &ids {
                dt.sending.remove(id.as_str())?;
                if let Some(mut d) = dt.get(id)? {
                    d.status = DeliveryStatus::Interrupted;
                    d.error = Some(DeliveryError::Interrupted);
                    d.error_detail = Some(
                        "the server stopped while this delivery was in flight; it may or may not have arrived and is not sent again by itself".into(),
                    );
                    d.finished_at = Some(now);
                    dt.put(&d)?;
                }
            }
            Ok(ids.len())
        })
    }

    /// Up to `limit` pending delivery ids of one endpoint after `after`, oldest first.
    pub fn pending_of(&self, endpoint_id: &str, after: &str, limit: usize) -> Result<Vec<String>> {
        self.read(|tx| {
            let pending = tx.open_table(PENDING)?;
            let mut v = Vec::new();
            for row in pending.range((endpoint_id, after)..(endpoint_id, ID_MAX))? {
                let id = row?.0.value().1.to_owned();
                if id.as_str() == after {
                    continue;
                }
                v.push(id);
                if v.len() == limit {
                    break;
                }
            }
            Ok(v)
        })
    }

    /// Every endpoint that has pending deliveries, with its rate limit.
    pub fn endpoints_with_pending(&self) -> Result<Vec<(String, Option<u32>)>> {
        self.read(|tx| {
            let pending = tx.open_table(PENDING)?;
            let endpoints = tx.open_table(ENDPOINTS)?;
            let mut v = Vec::new();
            let mut from = String::new();
            loop {
                let next = pending
                    .range((from.as_str(), ID_MAX)..)?
                    .next()
                    .transpose()?
                    .map(|(k, _)| k.value().0.to_owned());
                let Some(ep) = next else { break };
                let rate = endpoints
                    .get(ep.as_str())?
                    .map(|e| decode::<Endpoint>(e.value()))
                    .transpose()?
                    .and_then(|e| e.rate_limit_per_sec);
                v.push((ep.clone(), rate));
                from = ep;
            }
            Ok(v)
        })
    }

    /// Deletes, in one small transaction, old events (created before `cutoff_ms`) after
    /// `after` with their deliveries, reading at most `max`. An event with a delivery still
    /// pending or in flight is kept. Returns the last event read (to continue after) and how
    /// many went; `None` when the old events are all read.
    pub fn prune_before(
        &self,
        cutoff_ms: i64,
        after: &str,
        max: usize,
    ) -> Result<(Option<String>, usize)> {
        let bound = ids::lower_bound_at(IdKind::Event, cutoff_ms.max(0) as u64);
        let after = after.to_owned();
        self.write(move |ctx| {
            let mut events = ctx.tx.open_table(EVENTS)?;
            let mut old = Vec::new();
            let start = if after.is_empty() {
                "evt_"
            } else {
                after.as_str()
            };
            for row in events.range(start..bound.as_str())? {
                let (k, v) = row?;
                if k.value() == after {
                    continue;
                }
                old.push(decode::<Event>(v.value())?);
                if old.len() == max {
                    break;
                }
            }
            let last = (old.len() == max)
                .then(|| old.last().map(|e| e.id.clone()))
                .flatten();
            let mut dt = DeliveryTables::open(ctx.tx)?;
            let mut by_customer = ctx.tx.open_table(CUSTOMER_EVENTS)?;
            let mut deleted = 0;
            for e in &old {
                let mut ds = Vec::new();
                for dlv in super::customers::index_ids(&dt.by_event, &e.id)? {
                    if let Some(d) = dt.get(&dlv)? {
                        ds.push(d);
                    }
                }
                if ds
                    .iter()
                    .any(|d| matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Sending))
                {
                    continue;
                }
                for d in &ds {
                    dt.remove(d)?;
                }
                events.remove(e.id.as_str())?;
                by_customer.remove((e.customer_id.as_str(), e.id.as_str()))?;
                deleted += 1;
            }
            Ok((last, deleted))
        })
    }

    /// Counts of deliveries waiting in the store and handed to workers, for /metrics.
    pub fn queue_counts(&self) -> Result<(u64, u64)> {
        use redb::ReadableTableMetadata;
        self.read(|tx| {
            Ok((
                tx.open_table(PENDING)?.len()?,
                tx.open_table(SENDING)?.len()?,
            ))
        })
    }
}
