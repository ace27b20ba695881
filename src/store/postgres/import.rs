//! `webhooks import`: copies a stopped data file into an empty database, so a deployment can
//! grow from one box to several. Everything is read through the store contract (customers,
//! keys as hashes, the admin token's hash, the operator's event types, endpoints with their
//! secrets, events, deliveries) and written in one transaction: all or nothing. A delivery
//! that the stopped file had claimed becomes `interrupted`, as a restart would make it.

use postgres::Transaction;

use super::rows::{encode, insert_events};
use super::{parse_url, schema};
use crate::domain::{Delivery, DeliveryFilter, DeliveryStatus};
use crate::store::{OpenError, Owner, PageQuery, Store, StoreError};

/// What was copied, for the command's one line.
#[derive(Debug, Default)]
pub struct Imported {
    pub customers: usize,
    pub endpoints: usize,
    pub events: usize,
    pub deliveries: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the database {0} is not empty (it has customers): import only into a new database")]
    NotEmpty(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

const PAGE: usize = 500;

pub fn import(from: &dyn Store, url: &str) -> Result<Imported, ImportError> {
    let (config, location, tls) = parse_url(url)?;
    let db = |reason: String| OpenError::Database {
        location: location.clone(),
        reason,
    };
    let mut client = config.connect(tls).map_err(|e| db(e.to_string()))?;
    schema::prepare(&mut client).map_err(|e| match e {
        schema::PrepareError::TooNew(found) => OpenError::DatabaseTooNew {
            location: location.clone(),
            found,
            supported: schema::SCHEMA_VERSION,
        },
        schema::PrepareError::Other(reason) => db(reason),
    })?;
    let mut tx = client.transaction().map_err(StoreError::from)?;
    let have: i64 = tx
        .query_one("SELECT count(*) FROM customers", &[])
        .map_err(StoreError::from)?
        .get(0);
    if have > 0 {
        return Err(ImportError::NotEmpty(location));
    }
    let mut n = Imported::default();
    copy_all(from, &mut tx, &mut n)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(n)
}

fn pages<T>(
    mut page: impl FnMut(Option<&str>) -> Result<crate::store::Page<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let p = page(before.as_deref())?;
        all.extend(p.data);
        match p.next {
            Some(next) => before = Some(next),
            None => return Ok(all),
        }
    }
}

fn copy_all(from: &dyn Store, tx: &mut Transaction, n: &mut Imported) -> Result<(), StoreError> {
    if let Some(hash) = from.admin_hash() {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('admin_token_sha256', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&hash.as_slice()],
        )?;
    }
    for et in from.all_event_types()? {
        tx.execute(
            "INSERT INTO event_types (name, description, example) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&et.name, &et.description, &et.example],
        )?;
    }
    let customers = pages(|before| {
        from.list_customers(PageQuery {
            before,
            limit: PAGE,
        })
    })?;
    for c in &customers {
        tx.execute(
            "INSERT INTO customers (id, name, created_at) VALUES ($1, $2, $3)",
            &[&c.id, &c.name, &c.created_at],
        )?;
        for k in from.list_api_keys(&c.id)? {
            tx.execute(
                "INSERT INTO api_keys (id, customer_id, prefix, hash, created_at, last_used_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &k.id,
                    &k.customer_id,
                    &k.prefix,
                    &k.hash,
                    &k.created_at,
                    &k.last_used_at,
                ],
            )?;
        }
        let endpoints = pages(|before| {
            from.list_endpoints(
                Owner::Customer(&c.id),
                PageQuery {
                    before,
                    limit: PAGE,
                },
            )
        })?;
        for e in &endpoints {
            tx.execute(
                "INSERT INTO endpoints (id, customer_id, enabled, record) VALUES ($1, $2, $3, $4)",
                &[&e.id, &e.customer_id, &e.enabled, &encode(e)],
            )?;
        }
        n.endpoints += endpoints.len();
        let events = pages(|before| {
            from.list_events(
                Owner::Customer(&c.id),
                PageQuery {
                    before,
                    limit: PAGE,
                },
            )
        })?;
        for chunk in events.chunks(PAGE) {
            insert_events(tx, chunk)?;
        }
        n.events += events.len();
        let deliveries = pages(|before| {
            from.list_deliveries(
                Owner::Customer(&c.id),
                &DeliveryFilter::default(),
                PageQuery {
                    before,
                    limit: PAGE,
                },
            )
        })?;
        for d in &deliveries {
            insert_delivery(tx, d)?;
        }
        n.deliveries += deliveries.len();
    }
    n.customers = customers.len();
    Ok(())
}

fn insert_delivery(tx: &mut Transaction, d: &Delivery) -> Result<(), StoreError> {
    let mut d = d.clone();
    if d.status == DeliveryStatus::Sending {
        d.status = DeliveryStatus::Interrupted;
        d.error = Some(crate::domain::DeliveryError::Interrupted);
        d.error_detail = Some(
            "the server stopped while this delivery was in flight; it may or may not have arrived and is not sent again by itself".into(),
        );
    }
    tx.execute(
        "INSERT INTO deliveries (id, event_id, endpoint_id, customer_id, event, url, status,
             response_status, response_body, error, error_detail, duration_ms, created_at,
             started_at, finished_at, resend_of, test)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        &[
            &d.id,
            &d.event_id,
            &d.endpoint_id,
            &d.customer_id,
            &d.event,
            &d.url,
            &d.status.as_str(),
            &d.response_status.map(i32::from),
            &d.response_body,
            &d.error.map(|e| e.as_str()),
            &d.error_detail,
            &d.duration_ms.map(|v| v as i64),
            &d.created_at,
            &d.started_at,
            &d.finished_at,
            &d.resend_of,
            &d.test,
        ],
    )?;
    Ok(())
}
