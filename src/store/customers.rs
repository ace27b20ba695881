//! Customers and their API keys; deleting a customer removes everything it owns.

use redb::{ReadableTable, ReadableTableMetadata};

use super::deliveries::DeliveryTables;
use super::records::{ApiKeyRecord, Customer, decode, encode};
use super::tables::*;
use super::{KeyOwner, Page, PageQuery, Result, Store, StoreError};
use crate::domain::secret::hex;
use crate::domain::time::now_ms;
use crate::domain::{ApiKey, IdKind, ValidationError};

impl Store {
    /// A new customer and its first API key (the plaintext is returned only here).
    pub fn create_customer(&self, name: String) -> Result<(Customer, ApiKeyRecord, String)> {
        let customer = Customer {
            id: self.ids.next(IdKind::Customer),
            name,
            created_at: now_ms(),
        };
        let key = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        let record = self.key_record(&customer.id, &key);
        let (c, r) = (customer.clone(), record.clone());
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
            Ok(())
        })?;
        self.remember(&key, &record);
        Ok((customer, record, key.as_str().to_owned()))
    }

    fn key_record(&self, customer_id: &str, key: &ApiKey) -> ApiKeyRecord {
        ApiKeyRecord {
            id: self.ids.next(IdKind::ApiKey),
            customer_id: customer_id.to_owned(),
            prefix: key.display_prefix(),
            hash: hex(&key.hash()),
            created_at: now_ms(),
            last_used_at: None,
        }
    }

    fn remember(&self, key: &ApiKey, record: &ApiKeyRecord) {
        self.remember_key(
            key.hash(),
            KeyOwner {
                key_id: record.id.clone(),
                customer_id: record.customer_id.clone(),
                touched: Default::default(),
            },
        );
    }

    pub fn get_customer(&self, id: &str) -> Result<Option<Customer>> {
        self.read(|tx| {
            tx.open_table(CUSTOMERS)?
                .get(id)?
                .map(|v| decode(v.value()))
                .transpose()
        })
    }

    /// A customer by id, or else by name.
    pub fn find_customer(&self, name_or_id: &str) -> Result<Option<Customer>> {
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
    pub fn list_customers(&self, page: PageQuery) -> Result<Page<Customer>> {
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

    pub fn count_customers(&self) -> Result<u64> {
        self.read(|tx| Ok(tx.open_table(CUSTOMERS)?.len()?))
    }

    /// Removes the customer with its endpoints, events, deliveries, keys and idempotency records.
    pub fn delete_customer(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        let cid = id.clone();
        self.write(move |ctx| {
            let tx = ctx.tx;
            let mut customers = tx.open_table(CUSTOMERS)?;
            let customer: Customer = match customers.remove(id.as_str())? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NotFound),
            };
            tx.open_table(CUSTOMER_NAMES)?
                .remove(customer.name.as_str())?;

            let mut dt = DeliveryTables::open(tx)?;
            let delivery_ids = index_ids(&dt.by_customer, &id)?;
            for dlv in delivery_ids {
                if let Some(d) = dt.get(&dlv)? {
                    dt.remove(&d)?;
                }
            }

            let mut endpoints = tx.open_table(ENDPOINTS)?;
            let mut by_customer = tx.open_table(CUSTOMER_ENDPOINTS)?;
            for ep in index_ids(&by_customer, &id)? {
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
            Ok(())
        })?;
        self.forget_keys(|owner| owner.customer_id == cid);
        Ok(())
    }

    /// A further API key for the customer.
    pub fn create_api_key(&self, customer_id: &str) -> Result<(ApiKeyRecord, String)> {
        let key = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        let record = self.key_record(customer_id, &key);
        let r = record.clone();
        self.write(move |ctx| {
            if ctx
                .tx
                .open_table(CUSTOMERS)?
                .get(r.customer_id.as_str())?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            ctx.tx
                .open_table(API_KEYS)?
                .insert(r.id.as_str(), encode(&r).as_slice())?;
            Ok(())
        })?;
        self.remember(&key, &record);
        Ok((record, key.as_str().to_owned()))
    }

    /// The customer's keys, newest first.
    pub fn list_api_keys(&self, customer_id: &str) -> Result<Vec<ApiKeyRecord>> {
        self.read(|tx| {
            let mut v = Vec::new();
            for row in tx.open_table(API_KEYS)?.iter()?.rev() {
                let (_, val) = row?;
                let k: ApiKeyRecord = decode(val.value())?;
                if k.customer_id == customer_id {
                    v.push(k);
                }
            }
            Ok(v)
        })
    }

    pub fn delete_api_key(&self, customer_id: &str, key_id: &str) -> Result<()> {
        let (cid, kid) = (customer_id.to_owned(), key_id.to_owned());
        self.write(move |ctx| {
            let mut keys = ctx.tx.open_table(API_KEYS)?;
            let owned = match keys.get(kid.as_str())? {
                Some(v) => decode::<ApiKeyRecord>(v.value())?.customer_id == cid,
                None => false,
            };
            if !owned {
                return Err(StoreError::NotFound);
            }
            keys.remove(kid.as_str())?;
            Ok(())
        })?;
        self.forget_keys(|owner| owner.key_id == key_id);
        Ok(())
    }

    /// Records that a key was used; called at most about once a minute per key.
    pub fn touch_api_key(&self, key_id: &str, at: i64) {
        let kid = key_id.to_owned();
        self.write_detached(move |ctx| {
            let mut keys = ctx.tx.open_table(API_KEYS)?;
            let rec = keys
                .get(kid.as_str())?
                .map(|v| decode::<ApiKeyRecord>(v.value()))
                .transpose()?;
            if let Some(mut rec) = rec {
                rec.last_used_at = Some(at);
                keys.insert(kid.as_str(), encode(&rec).as_slice())?;
            }
            Ok(())
        });
    }
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
