//! The delivery log: the customer's deliveries, one delivery, and resending one.

use super::PgStore;
use super::endpoints::{get_in, lock_resends};
use super::rows::{DELIVERY_COLS, EVENT_COLS, delivery, event, insert_deliveries};
use crate::domain::time::now_ms;
use crate::domain::{Delivery, DeliveryFilter};
use crate::store::{DeliveryLog, Owner, Page, PageQuery, Ready, Result, StoreError};

impl DeliveryLog for PgStore {
    fn list_deliveries(
        &self,
        owner: Owner,
        filter: &DeliveryFilter,
        page: PageQuery,
    ) -> Result<Page<Delivery>> {
        self.deliveries_of(owner.customer(), filter, page)
    }

    fn get_delivery(&self, customer_id: &str, id: &str) -> Result<Option<Delivery>> {
        self.read(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 AND customer_id = $2"
                ),
                &[&id, &customer_id],
            )?
            .as_ref()
            .map(delivery)
            .transpose()
        })
    }

    fn delivery_request(&self, id: &str) -> Result<Option<Vec<(String, String)>>> {
        self.read(|tx| {
            let row = tx.query_opt(
                "SELECT request_headers FROM deliveries WHERE id = $1",
                &[&id],
            )?;
            Ok(row
                .and_then(|r| r.get::<_, Option<String>>(0))
                .and_then(|text| crate::domain::delivery::SentHeaders::decode(text.as_bytes())))
        })
    }

    fn resend_delivery(&self, customer_id: &str, id: &str) -> Result<Delivery> {
        self.write(|tx, made| {
            let original = tx
                .query_opt(
                    &format!(
                        "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 AND customer_id = $2"
                    ),
                    &[&id, &customer_id],
                )?
                .as_ref()
                .map(delivery)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
            lock_resends(tx, &original.endpoint_id)?;
            let endpoint = get_in(tx, &original.endpoint_id)?.ok_or(StoreError::NotFound)?;
            let ev = tx
                .query_opt(
                    &format!("SELECT {EVENT_COLS} FROM events WHERE id = $1"),
                    &[&original.event_id],
                )?
                .as_ref()
                .map(event)
                .ok_or(StoreError::NotFound)?;
            let d = Delivery::pending(&self.ids, &ev, &endpoint, Some(original.id), now_ms());
            insert_deliveries(tx, std::slice::from_ref(&d))?;
            made.push(Ready::of(&d, &endpoint));
            Ok(d)
        })
    }
}

impl PgStore {
    fn deliveries_of(
        &self,
        customer_id: Option<&str>,
        filter: &DeliveryFilter,
        page: PageQuery,
    ) -> Result<Page<Delivery>> {
        let status = filter.status.map(|s| s.as_str());
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {DELIVERY_COLS} FROM deliveries
                     WHERE ($1::text IS NULL OR customer_id = $1)
                     AND ($2::text IS NULL OR endpoint_id = $2)
                     AND ($3::text IS NULL OR event_id = $3)
                     AND ($4::text IS NULL OR status = $4)
                     AND ($5::text IS NULL OR id < $5)
                     AND ($7::text IS NULL OR event = $7)
                     AND ($8::bigint IS NULL OR created_at >= $8)
                     AND ($9::bigint IS NULL OR created_at < $9)
                     AND ($10::text IS NULL OR id > $10)
                     ORDER BY id {order} LIMIT $6",
                    order = if filter.after.is_some() {
                        "ASC"
                    } else {
                        "DESC"
                    },
                ),
                &[
                    &customer_id,
                    &filter.endpoint_id,
                    &filter.event_id,
                    &status,
                    &page.before,
                    &(page.limit as i64 + 1),
                    &filter.event,
                    &filter.since,
                    &filter.until,
                    &filter.after,
                ],
            )?;
            let mut data = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
            Ok(super::customers::page_of(&mut data, page.limit, |d| {
                d.id.clone()
            }))
        })
    }
}
