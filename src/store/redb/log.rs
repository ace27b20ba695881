//! The delivery log: the customer's deliveries, one delivery, and resending one.

use super::RedbStore;
use super::deliveries::{DeliveryTables, ReadView};
use super::records::{Delivery, decode};
use super::tables::*;
use crate::domain::DeliveryFilter;
use crate::domain::time::now_ms;
use crate::store::{DeliveryLog, Owner, Page, PageQuery, Ready, Result, StoreError};

impl DeliveryLog for RedbStore {
    /// At most `MAX_SCAN` rows are read per page: a sparse filter may give a short page
    /// whose `next` carries on.
    fn list_deliveries(
        &self,
        owner: Owner,
        filter: &DeliveryFilter,
        page: PageQuery,
    ) -> Result<Page<Delivery>> {
        self.deliveries_of(owner.customer(), filter, page)
    }

    /// One delivery of the customer's; another customer's is `None`.
    fn get_delivery(&self, customer_id: &str, id: &str) -> Result<Option<Delivery>> {
        self.read(|tx| {
            Ok(ReadView::open(tx)?
                .get(id)?
                .filter(|d| d.customer_id == customer_id))
        })
    }

    fn delivery_request(&self, id: &str) -> Result<Option<Vec<(String, String)>>> {
        self.read(|tx| {
            // A file from before this table was added gets it at its next start.
            let table = match tx.open_table(super::tables::REQUESTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(table
                .get(id)?
                .and_then(|v| crate::domain::delivery::SentHeaders::decode(v.value())))
        })
    }

    /// A new delivery of the same event to the endpoint's current URL and secret.
    fn resend_delivery(&self, customer_id: &str, id: &str) -> Result<Delivery> {
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        let idgen = self.ids.clone();
        self.write(move |ctx| {
            let mut dt = DeliveryTables::open(ctx)?;
            let original = dt
                .get(&id)?
                .filter(|d| d.customer_id == cid)
                .ok_or(StoreError::NotFound)?;
            let endpoint = super::endpoints::get_in(ctx.tx, &original.endpoint_id)?
                .ok_or(StoreError::NotFound)?;
            let event =
                super::events::get_in(ctx.tx, &original.event_id)?.ok_or(StoreError::NotFound)?;
            let d = Delivery::pending(
                &idgen,
                &event,
                &endpoint,
                Some(original.id.clone()),
                now_ms(),
            );
            dt.insert_pending(&d)?;
            ctx.ready.push(Ready::of(&d, &endpoint));
            Ok(d)
        })
    }
}

/// At most this many rows are read for one page: a sparse filter gives a short page whose
/// `next` carries on.
const MAX_SCAN: usize = 10_000;

/// Ids follow creation order but their clock may run a little ahead of `created_at` (ids
/// never go back): a time filter stops scanning only this far past its bound.
const CLOCK_SLACK_MS: i64 = 60_000;

impl RedbStore {
    fn deliveries_of(
        &self,
        customer_id: Option<&str>,
        filter: &DeliveryFilter,
        page: PageQuery,
    ) -> Result<Page<Delivery>> {
        self.read(|tx| {
            let owns = |id: &str| -> Result<bool> {
                let owner = if id.starts_with("ep_") {
                    tx.open_table(ENDPOINTS)?
                        .get(id)?
                        .map(|v| decode::<crate::domain::Endpoint>(v.value()))
                        .transpose()?
                        .map(|e| e.customer_id)
                } else {
                    super::events::get_from(&tx.open_table(EVENTS)?, id)?.map(|e| e.customer_id)
                };
                Ok(owner.is_some_and(|o| customer_id.is_none_or(|c| c == o)))
            };
            let empty = Page {
                data: Vec::new(),
                next: None,
            };
            let (table, owner) = if let Some(ep) = &filter.endpoint_id {
                if !owns(ep)? {
                    return Ok(empty);
                }
                (tx.open_table(ENDPOINT_DELIVERIES)?, ep.as_str())
            } else if let Some(evt) = &filter.event_id {
                if !owns(evt)? {
                    return Ok(empty);
                }
                (tx.open_table(EVENT_DELIVERIES)?, evt.as_str())
            } else if let Some(c) = customer_id {
                (tx.open_table(CUSTOMER_DELIVERIES)?, c)
            } else {
                return all_deliveries(tx, filter, page);
            };
            let view = ReadView::open(tx)?;
            let bound = upper_bound(filter);
            let upper = page.before.unwrap_or(ID_MAX).min(bound.as_str());
            if let Some(after) = filter.after.as_deref().filter(|a| *a < upper) {
                let ids = table
                    .range((owner, after)..(owner, upper))?
                    .map(|row| row.map(|(k, _)| k.value().1.to_owned()));
                return scan_forward(&view, ids, after, customer_id, filter, page.limit);
            }
            let ids = table
                .range((owner, "")..(owner, upper))?
                .rev()
                .map(|row| row.map(|(k, _)| k.value().1.to_owned()));
            scan_page(&view, ids, customer_id, filter, page.limit)
        })
    }
}

/// A page of deliveries read newest first from `ids`, kept if they are the customer's and
/// pass the filter; at most `MAX_SCAN` ids are read (a sparse filter gives a short page whose
/// `next` carries on), and a `since` bound ends the scan once ids are older still.
fn scan_page(
    view: &ReadView,
    ids: impl Iterator<Item = std::result::Result<String, redb::StorageError>>,
    customer_id: Option<&str>,
    filter: &DeliveryFilter,
    limit: usize,
) -> Result<Page<Delivery>> {
    let mut data = Vec::new();
    let mut next = None;
    let mut last_scanned = None;
    for (scanned, id) in ids.enumerate() {
        let id = id?;
        if scanned == MAX_SCAN {
            next = last_scanned;
            break;
        }
        let Some(d) = view.get(&id)? else {
            last_scanned = Some(id);
            continue;
        };
        last_scanned = Some(id);
        if filter
            .since
            .is_some_and(|t| d.created_at < t - CLOCK_SLACK_MS)
        {
            next = None;
            break; // newest first: everything after this is older still
        }
        if !(customer_id.is_none_or(|c| d.customer_id == c) && filter.keeps(&d)) {
            continue;
        }
        if data.len() == limit {
            next = data.last().map(|d: &Delivery| d.id.clone());
            break;
        }
        data.push(d);
    }
    Ok(Page { data, next })
}

/// A page of deliveries made after `after`, oldest first, read from `ids` (ascending, from
/// `after` itself on); `next` is the last id read when more may follow.
fn scan_forward(
    view: &ReadView,
    ids: impl Iterator<Item = std::result::Result<String, redb::StorageError>>,
    after: &str,
    customer_id: Option<&str>,
    filter: &DeliveryFilter,
    limit: usize,
) -> Result<Page<Delivery>> {
    let mut data = Vec::new();
    let mut next = None;
    let mut last_scanned: Option<String> = None;
    for (scanned, id) in ids.enumerate() {
        let id = id?;
        if id.as_str() <= after {
            continue;
        }
        if scanned == MAX_SCAN || data.len() == limit {
            next = last_scanned;
            break;
        }
        let kept = view
            .get(&id)?
            .filter(|d| customer_id.is_none_or(|c| d.customer_id == c) && filter.keeps(d));
        last_scanned = Some(id);
        data.extend(kept);
    }
    Ok(Page { data, next })
}

/// No delivery made before `until` has an id at or above this.
fn upper_bound(filter: &DeliveryFilter) -> String {
    match filter.until {
        Some(t) => crate::domain::ids::lower_bound_at(
            crate::domain::IdKind::Delivery,
            (t + CLOCK_SLACK_MS).max(0) as u64,
        ),
        None => ID_MAX.to_owned(),
    }
}

/// Every customer's deliveries (no endpoint or event named), newest first.
fn all_deliveries(
    tx: &redb::ReadTransaction,
    filter: &DeliveryFilter,
    page: PageQuery,
) -> Result<Page<Delivery>> {
    let view = ReadView::open(tx)?;
    let bound = upper_bound(filter);
    let upper = page.before.unwrap_or(ID_MAX).min(bound.as_str());
    let records = tx.open_table(DELIVERIES)?;
    if let Some(after) = filter.after.as_deref().filter(|a| *a < upper) {
        let ids = records
            .range(after..upper)?
            .map(|row| row.map(|(k, _)| k.value().to_owned()));
        return scan_forward(&view, ids, after, None, filter, page.limit);
    }
    let ids = records
        .range(..upper)?
        .rev()
        .map(|row| row.map(|(k, _)| k.value().to_owned()));
    scan_page(&view, ids, None, filter, page.limit)
}
