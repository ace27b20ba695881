//! Customers; deleting one removes everything it owns.

use redb::ReadableTable;

use super::RedbStore;
use super::deliveries::DeliveryTables;
use super::paging::index_ids;
use super::records::{ApiKeyRecord, Customer, decode, encode};
use super::tables::*;
use crate::domain::time::now_ms;
use crate::domain::{ApiKey, IdKind, ValidationError};
use crate::store::{Customers, NewCustomer, NewKey, Page, PageQuery, Result, StoreError};

impl Customers for RedbStore {
    /// A new customer and its first API key (the plaintext is returned only here).
    fn create_customer(&self, name: String) -> Result<NewCustomer> {
        let customer = Customer {
            id: self.ids.next(IdKind::Customer),
            name,
            created_at: now_ms(),
        };
        let key = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        let record = self.key_record(&customer.id, &key);
        let (c, r) = (customer.clone(), record.clone());
        let (cache, hash) = (self.keys.clone(), key.hash());
        self.write(move |ctx| {
            let mut names = ctx.tx.open_table(CUSTOMER_NAMES)?;
            if names.get(c.name.as_str())?.is_some() {
                return Err(StoreError::Invalid(ValidationError::new(
                    "name_taken",
                    format!("a customer named {:?} already exists", c.name),
                )));
            }
            names.insert(c.name.as_str(), c.id.as_str())?;
            ctx.tx
                .open_table(CUSTOMERS)?
                .insert(c.id.as_str(), encode(&c).as_slice())?;
            ctx.tx
                .open_table(API_KEYS)?
                .insert(r.id.as_str(), encode(&r).as_slice())?;
            // On the writer, in commit order with deletions.
            cache.remember(hash, &r);
            Ok(())
        })?;
        Ok(NewCustomer {
            customer,
            key: NewKey {
                record,
                plaintext: key.as_str().to_owned(),
            },
        })
    }

    fn get_customer(&self, id: &str) -> Result<Option<Customer>> {
        self.read(|tx| {
            tx.open_table(CUSTOMERS)?
                .get(id)?
                .map(|v| decode(v.value()))
                .transpose()
        })
    }

    /// A customer by id, or else by name.
    fn find_customer(&self, name_or_id: &str) -> Result<Option<Customer>> {
        if let Some(c) = self.get_customer(name_or_id)? {
            return Ok(Some(c));
        }
        let id = self.read(|tx| {
            Ok(tx
                .open_table(CUSTOMER_NAMES)?
                .get(name_or_id)?
                .map(|v| v.value().to_owned()))
        })?;
        match id {
            Some(id) => self.get_customer(&id),
            None => Ok(None),
        }
    }

    /// Customers, newest first.
    fn list_customers(&self, page: PageQuery) -> Result<Page<Customer>> {
        self.read(|tx| {
            let table = tx.open_table(CUSTOMERS)?;
            let upper = page.before.unwrap_or(ID_MAX);
            let mut data = Vec::new();
            let mut more = false;
            for row in table.range(""..upper)?.rev() {
                let (_, v) = row?;
                if data.len() == page.limit {
                    more = true;
                    break;
                }
                data.push(decode::<Customer>(v.value())?);
            }
            let next = more.then(|| data.last().map(|c| c.id.clone())).flatten();
            Ok(Page { data, next })
        })
    }

    fn owner_of(&self, id: &str) -> Result<Option<String>> {
        use super::records::{DeliveryRow, Endpoint, EventRow, decode_bin};
        self.read(|tx| {
            Ok(match id.split('_').next() {
                Some("ep") => tx
                    .open_table(ENDPOINTS)?
                    .get(id)?
                    .map(|v| decode::<Endpoint>(v.value()).map(|e| e.customer_id))
                    .transpose()?,
                Some("evt") => tx
                    .open_table(EVENTS)?
                    .get(id)?
                    .map(|v| decode_bin::<EventRow>(v.value()).map(|e| e.customer_id))
                    .transpose()?,
                Some("dlv") => tx
                    .open_table(DELIVERIES)?
                    .get(id)?
                    .map(|v| decode_bin::<DeliveryRow>(v.value()).map(|d| d.customer_id))
                    .transpose()?,
                _ => None,
            })
        })
    }

    /// Removes the customer with its endpoints, events, deliveries, keys and idempotency records.
    fn delete_customer(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        let cache = self.keys.clone();
        self.write(move |ctx| {
            let tx = ctx.tx;
            let mut customers = tx.open_table(CUSTOMERS)?;
            let customer: Customer = match customers.remove(id.as_str())? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NotFound),
            };
            tx.open_table(CUSTOMER_NAMES)?
                .remove(customer.name.as_str())?;

            let mut dt = DeliveryTables::open(ctx)?;
            let delivery_ids = index_ids(&dt.by_customer, &id)?;
            for dlv in delivery_ids {
                if let Some(d) = dt.get(&dlv)? {
                    dt.remove(&d)?;
                }
            }

            let mut endpoints = tx.open_table(ENDPOINTS)?;
            let mut by_customer = tx.open_table(CUSTOMER_ENDPOINTS)?;
            for ep in index_ids(&by_customer, &id)? {
                dt.remove_endpoint(&ep)?;
                endpoints.remove(ep.as_str())?;
                by_customer.remove((id.as_str(), ep.as_str()))?;
            }

            let mut events = tx.open_table(EVENTS)?;
            let mut events_by_customer = tx.open_table(CUSTOMER_EVENTS)?;
            for evt in index_ids(&events_by_customer, &id)? {
                events.remove(evt.as_str())?;
                events_by_customer.remove((id.as_str(), evt.as_str()))?;
            }

            let mut keys = tx.open_table(API_KEYS)?;
            keys.retain(|_, v| decode::<ApiKeyRecord>(v).map_or(true, |k| k.customer_id != id))?;

            let mut idem = tx.open_table(IDEMPOTENCY)?;
            idem.retain_in((id.as_str(), "")..(id.as_str(), ID_MAX), |_, _| false)?;

            super::sessions::end_customer_sessions(tx, &id)?;
            cache.forget(|owner| owner.customer_id == id);
            Ok(())
        })
    }
}
