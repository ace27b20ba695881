//! What several jobs share: the tables a delivery lives in, making a new delivery, and
//! reading (owner, id) indexes. Depends on nothing but the tables and records.

use redb::{ReadableTable, Table, WriteTransaction};

use super::records::{Delivery, decode, encode};
use super::tables::*;
use crate::domain::DeliveryStatus;
use crate::store::Result;

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

/// Every second id of an (owner, id) index under `owner`, oldest first.
pub(super) fn index_ids(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    owner: &str,
) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for row in table.range((owner, "")..(owner, ID_MAX))? {
        v.push(row?.0.value().1.to_owned());
    }
    Ok(v)
}

/// A page of ids, newest first, from the index range of `owner`.
pub(super) fn page_ids(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    owner: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool)> {
    let upper = before.unwrap_or(ID_MAX);
    let mut ids = Vec::with_capacity(limit);
    let mut more = false;
    for row in table.range((owner, "")..(owner, upper))?.rev() {
        let (k, _) = row?;
        if ids.len() == limit {
            more = true;
            break;
        }
        ids.push(k.value().1.to_owned());
    }
    Ok((ids, more))
}

/// A page of whole records, newest first, from a table keyed by id.
pub(super) fn page_records<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    page: crate::store::PageQuery,
    id_of: impl Fn(&T) -> String,
) -> Result<crate::store::Page<T>> {
    let upper = page.before.unwrap_or(ID_MAX);
    let mut data = Vec::with_capacity(page.limit);
    let mut more = false;
    for row in table.range(..upper)?.rev() {
        let (_, v) = row?;
        if data.len() == page.limit {
            more = true;
            break;
        }
        data.push(decode::<T>(v.value())?);
    }
    let next = more.then(|| data.last().map(&id_of)).flatten();
    Ok(crate::store::Page { data, next })
}
