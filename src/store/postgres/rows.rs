//! Rows to domain objects and back: the column lists every query of a kind uses, and the JSON
//! records kept for endpoints, sessions and idempotency answers.

use postgres::Row;
use postgres::types::Type;
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::{Delivery, DeliveryError, DeliveryStatus, Event};
use crate::store::{Result, StoreError};

pub const DELIVERY_COLS: &str = "id, event_id, endpoint_id, customer_id, event, url, status, \
     response_status, response_body, error, error_detail, duration_ms, created_at, started_at, \
     finished_at, resend_of, test";

pub const EVENT_COLS: &str = "id, customer_id, event, test, created_at, body, data_start";

pub fn delivery(row: &Row) -> Result<Delivery> {
    let status: String = row.get(6);
    let error: Option<String> = row.get(9);
    Ok(Delivery {
        id: row.get(0),
        event_id: row.get(1),
        endpoint_id: row.get(2),
        customer_id: row.get(3),
        event: row.get(4),
        url: row.get(5),
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("delivery status {status:?}")))?,
        response_status: row.get::<_, Option<i32>>(7).map(|s| s as u16),
        response_body: row.get(8),
        error: error.map(|e| parse_error(&e)).transpose()?,
        error_detail: row.get(10),
        duration_ms: row.get::<_, Option<i64>>(11).map(|d| d as u64),
        created_at: row.get(12),
        started_at: row.get(13),
        finished_at: row.get(14),
        resend_of: row.get(15),
        test: row.get(16),
    })
}

pub fn event(row: &Row) -> Event {
    event_at(row, 0)
}

/// An event from `EVENT_COLS` starting at column `at`.
pub fn event_at(row: &Row, at: usize) -> Event {
    Event {
        id: row.get(at),
        customer_id: row.get(at + 1),
        event: row.get(at + 2),
        test: row.get(at + 3),
        created_at: row.get(at + 4),
        body: row.get(at + 5),
        data_start: row.get::<_, i32>(at + 6) as usize,
    }
}

/// A column list with each column qualified by `table`.
pub fn prefixed(table: &str, cols: &str) -> String {
    cols.split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn parse_error(s: &str) -> Result<DeliveryError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| corrupt(format!("delivery error {s:?}")))
}

pub fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))
}

fn corrupt(what: String) -> StoreError {
    StoreError::Storage(format!("corrupt record: {what}"))
}

/// Inserts new pending deliveries (one statement for all).
pub fn insert_deliveries(tx: &mut postgres::Transaction, ds: &[Delivery]) -> Result<()> {
    if ds.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Delivery) -> String| ds.iter().map(f).collect::<Vec<String>>();
    let ids = col(|d| d.id.clone());
    let events = col(|d| d.event_id.clone());
    let endpoints = col(|d| d.endpoint_id.clone());
    let customers = col(|d| d.customer_id.clone());
    let names = col(|d| d.event.clone());
    let urls = col(|d| d.url.clone());
    let created: Vec<i64> = ds.iter().map(|d| d.created_at).collect();
    let resend_of: Vec<Option<String>> = ds.iter().map(|d| d.resend_of.clone()).collect();
    let test: Vec<bool> = ds.iter().map(|d| d.test).collect();
    tx.query_typed(
        "INSERT INTO deliveries (id, event_id, endpoint_id, customer_id, event, url, status,
                                 created_at, resend_of, test)
         SELECT id, ev, ep, cu, name, url, 'pending', created, resend_of, test
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::text[], $9::bool[])
              AS t(id, ev, ep, cu, name, url, created, resend_of, test)",
        &[
            (&ids, Type::TEXT_ARRAY),
            (&events, Type::TEXT_ARRAY),
            (&endpoints, Type::TEXT_ARRAY),
            (&customers, Type::TEXT_ARRAY),
            (&names, Type::TEXT_ARRAY),
            (&urls, Type::TEXT_ARRAY),
            (&created, Type::INT8_ARRAY),
            (&resend_of, Type::TEXT_ARRAY),
            (&test, Type::BOOL_ARRAY),
        ],
    )?;
    Ok(())
}

/// Inserts new events (one statement for all).
pub fn insert_events(tx: &mut postgres::Transaction, es: &[Event]) -> Result<()> {
    if es.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = es.iter().map(|e| e.id.as_str()).collect();
    let customers: Vec<&str> = es.iter().map(|e| e.customer_id.as_str()).collect();
    let names: Vec<&str> = es.iter().map(|e| e.event.as_str()).collect();
    let test: Vec<bool> = es.iter().map(|e| e.test).collect();
    let created: Vec<i64> = es.iter().map(|e| e.created_at).collect();
    let bodies: Vec<&str> = es.iter().map(|e| e.body.as_str()).collect();
    let starts: Vec<i32> = es.iter().map(|e| e.data_start as i32).collect();
    tx.query_typed(
        "INSERT INTO events (id, customer_id, event, test, created_at, body, data_start)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bigint[],
                              $6::text[], $7::int[])",
        &[
            (&ids, Type::TEXT_ARRAY),
            (&customers, Type::TEXT_ARRAY),
            (&names, Type::TEXT_ARRAY),
            (&test, Type::BOOL_ARRAY),
            (&created, Type::INT8_ARRAY),
            (&bodies, Type::TEXT_ARRAY),
            (&starts, Type::INT4_ARRAY),
        ],
    )?;
    Ok(())
}
