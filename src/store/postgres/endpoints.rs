//! Endpoints: create, change, delete, rotate the secret, send a test event, recover failures.

use postgres::Transaction;

use super::PgStore;
use super::rows::{decode, encode, insert_deliveries, insert_events};
use crate::domain::delivery::DISABLED_DETAIL;
use crate::domain::ingest;
use crate::domain::input::{EventFilter, ValidationError};
use crate::domain::time::now_ms;
use crate::domain::{
    Delivery, DeliveryError, Endpoint, EndpointPatch, Event, IdKind, NewEndpoint, SigningSecret,
};
use crate::store::{
    Endpoints, Holds, Owner, Page, PageQuery, PauseChange, Ready, RecoverWindow, Recovery, Result,
    StoreError, TestSent,
};

/// The advisory-lock class that serialises resends and recovers of one endpoint.
const RESEND_CLASS: i32 = 0x5768_6b74;

pub(super) fn get_in(tx: &mut Transaction, id: &str) -> Result<Option<Endpoint>> {
    tx.query_opt("SELECT record FROM endpoints WHERE id = $1", &[&id])?
        .map(|r| decode(r.get::<_, &str>(0)))
        .transpose()
}

/// The customer's endpoint, locked for the rest of the transaction.
fn owned_in(tx: &mut Transaction, customer_id: &str, id: &str) -> Result<Endpoint> {
    tx.query_opt(
        "SELECT record FROM endpoints WHERE id = $1 AND customer_id = $2 FOR UPDATE",
        &[&id, &customer_id],
    )?
    .map(|r| decode(r.get::<_, &str>(0)))
    .transpose()?
    .ok_or(StoreError::NotFound)
}

fn put(tx: &mut Transaction, e: &Endpoint) -> Result<()> {
    tx.execute(
        "INSERT INTO endpoints (id, customer_id, enabled, record) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET enabled = EXCLUDED.enabled, record = EXCLUDED.record",
        &[&e.id, &e.customer_id, &e.enabled, &encode(e)],
    )?;
    Ok(())
}

fn check_events(tx: &mut Transaction, events: &[String]) -> Result<Vec<String>> {
    let known: Vec<String> = tx
        .query(
            "SELECT name FROM event_types WHERE name = ANY($1)",
            &[&events],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let filter = EventFilter::parse(events, |name| known.iter().any(|k| k == name))?;
    Ok(filter.into_list())
}

/// Serialises resends and recovers of one endpoint until the transaction ends.
pub(super) fn lock_resends(tx: &mut Transaction, endpoint_id: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&RESEND_CLASS, &endpoint_id],
    )?;
    Ok(())
}

/// Ends pending, non-test deliveries of an endpoint as `failed` with `error`, never sent,
/// oldest first: at most `max`, and only those created before `before` if given.
fn fail_pending(
    tx: &mut Transaction,
    endpoint_id: &str,
    error: DeliveryError,
    detail: &str,
    before: Option<i64>,
    max: usize,
) -> Result<usize> {
    let n = tx.execute(
        "UPDATE deliveries SET status = 'failed', error = $2, error_detail = $3, finished_at = $4
         WHERE id IN (SELECT id FROM deliveries
                      WHERE endpoint_id = $1 AND status = 'pending' AND NOT test
                        AND created_at < $5
                      ORDER BY id LIMIT $6)",
        &[
            &endpoint_id,
            &error.as_str(),
            &detail,
            &now_ms(),
            &before.unwrap_or(i64::MAX),
            &(max.min(i64::MAX as usize) as i64),
        ],
    )?;
    Ok(n as usize)
}

impl Holds for PgStore {
    fn change_pause(&self, endpoint_id: &str, change: PauseChange) -> Result<Option<Endpoint>> {
        self.write(|tx, ready| {
            let Some(mut e) = tx
                .query_opt(
                    "SELECT record FROM endpoints WHERE id = $1 FOR UPDATE",
                    &[&endpoint_id],
                )?
                .map(|r| decode::<Endpoint>(r.get::<_, &str>(0)))
                .transpose()?
            else {
                return Ok(None);
            };
            let pause = change(e.pause.as_ref());
            if pause != e.pause {
                if pause.is_none() {
                    ready.push(Ready::resumed(&e));
                }
                e.pause = pause;
                put(tx, &e)?;
            }
            Ok(Some(e))
        })
    }

    fn fail_waiting(
        &self,
        endpoint_id: &str,
        created_before: Option<i64>,
        detail: &'static str,
        max: usize,
    ) -> Result<usize> {
        self.write(|tx, _| {
            fail_pending(
                tx,
                endpoint_id,
                DeliveryError::ReceiverUnavailable,
                detail,
                created_before,
                max,
            )
        })
    }
}

impl Endpoints for PgStore {
    fn create_endpoint(&self, customer_id: &str, new: NewEndpoint, max: u32) -> Result<Endpoint> {
        let now = now_ms();
        let mut e = Endpoint::new(
            self.ids.next(IdKind::Endpoint),
            customer_id,
            new,
            SigningSecret::generate().as_str().to_owned(),
            now,
        );
        self.write(|tx, _| {
            e.events = check_events(tx, &e.events)?;
            // Locks the customer: concurrent creations count one after the other.
            if tx
                .query_opt(
                    "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE",
                    &[&e.customer_id],
                )?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let have: i64 = tx
                .query_one(
                    "SELECT count(*) FROM endpoints WHERE customer_id = $1",
                    &[&e.customer_id],
                )?
                .get(0);
            if have >= i64::from(max) {
                return Err(StoreError::Invalid(ValidationError::new(
                    "limit_reached",
                    format!("a customer may have at most {max} endpoints; delete one first"),
                )));
            }
            put(tx, &e)
        })?;
        Ok(e)
    }

    fn list_endpoints(&self, owner: Owner, page: PageQuery) -> Result<Page<Endpoint>> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT record FROM endpoints WHERE ($1::text IS NULL OR customer_id = $1)
                 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                &[&owner.customer(), &page.before, &(page.limit as i64 + 1)],
            )?;
            let mut data = rows
                .iter()
                .map(|r| decode(r.get::<_, &str>(0)))
                .collect::<Result<Vec<Endpoint>>>()?;
            Ok(super::customers::page_of(&mut data, page.limit, |e| {
                e.id.clone()
            }))
        })
    }

    fn get_endpoint(&self, customer_id: &str, id: &str) -> Result<Option<Endpoint>> {
        self.read(|tx| {
            tx.query_opt(
                "SELECT record FROM endpoints WHERE id = $1 AND customer_id = $2",
                &[&id, &customer_id],
            )?
            .map(|r| decode(r.get::<_, &str>(0)))
            .transpose()
        })
    }

    fn update_endpoint(
        &self,
        customer_id: &str,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<Endpoint> {
        self.write(|tx, ready| {
            let mut e = owned_in(tx, customer_id, id)?;
            let mut patch = patch;
            patch.events = patch
                .events
                .map(|events| check_events(tx, &events))
                .transpose()?;
            let paused = e.pause.is_some();
            let disabled = e.apply(patch, now_ms());
            put(tx, &e)?;
            if paused && e.pause.is_none() {
                ready.push(Ready::resumed(&e));
            }
            if disabled {
                fail_pending(
                    tx,
                    &e.id,
                    DeliveryError::EndpointDisabled,
                    DISABLED_DETAIL,
                    None,
                    usize::MAX,
                )?;
            }
            Ok(e)
        })
    }

    fn delete_endpoint(&self, customer_id: &str, id: &str) -> Result<()> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM endpoints WHERE id = $1 AND customer_id = $2",
                &[&id, &customer_id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn rotate_secret(
        &self,
        customer_id: &str,
        id: &str,
        keep_old_for_secs: u64,
    ) -> Result<Endpoint> {
        let secret = SigningSecret::generate();
        self.write(|tx, _| {
            let mut e = owned_in(tx, customer_id, id)?;
            e.rotate(secret.as_str().to_owned(), keep_old_for_secs, now_ms());
            put(tx, &e)?;
            Ok(e)
        })
    }

    fn send_test(
        &self,
        customer_id: &str,
        id: &str,
        event_type: Option<String>,
    ) -> Result<TestSent> {
        self.write(|tx, ready| {
            let e = owned_in(tx, customer_id, id)?;
            let name = ingest::test_type(&e, event_type);
            let et = super::catalog::get(tx, &name)?.ok_or_else(|| ingest::unknown_type(&name))?;
            let (event, d) = ingest::plan_test(et, &e, &self.ids, now_ms());
            insert_events(tx, std::slice::from_ref(&event))?;
            insert_deliveries(tx, std::slice::from_ref(&d))?;
            ready.push(Ready::of(&d, &e));
            Ok(TestSent {
                event_id: event.id,
                delivery_id: d.id,
            })
        })
    }

    /// Sends again, once per event, the latest failure in the window of an event that has not
    /// succeeded (or is not on its way) here since; serialised per endpoint, so repeating a
    /// recover never duplicates.
    fn recover(&self, customer_id: &str, id: &str, window: RecoverWindow) -> Result<Recovery> {
        let RecoverWindow { since, until, max } = window;
        self.write(|tx, ready| {
            let e = owned_in(tx, customer_id, id)?;
            lock_resends(tx, &e.id)?;
            let rows = tx.query(
                "SELECT DISTINCT ON (d.event_id) d.id, ev.id, ev.customer_id, ev.event, ev.test,
                        ev.created_at, ev.body, ev.data_start
                 FROM deliveries d JOIN events ev ON ev.id = d.event_id
                 WHERE d.endpoint_id = $1 AND d.status IN ('failed', 'interrupted')
                   AND d.created_at >= $2 AND ($3::bigint IS NULL OR d.created_at <= $3)
                   AND NOT EXISTS (SELECT 1 FROM deliveries s
                                   WHERE s.endpoint_id = $1 AND s.event_id = d.event_id
                                     AND s.status NOT IN ('failed', 'interrupted'))
                 ORDER BY d.event_id, d.id DESC",
                &[&e.id, &since, &until],
            )?;
            let now = now_ms();
            let mut made = Vec::with_capacity(rows.len());
            for row in &rows {
                let original: String = row.get(0);
                let event = Event {
                    id: row.get(1),
                    customer_id: row.get(2),
                    event: row.get(3),
                    test: row.get(4),
                    created_at: row.get(5),
                    body: row.get(6),
                    data_start: row.get::<_, i32>(7) as usize,
                };
                // A later delivery of this event here (outside the window) is on its way or done.
                let newer = tx
                    .query_opt(
                        "SELECT 1 FROM deliveries WHERE endpoint_id = $1 AND event_id = $2 AND id > $3 LIMIT 1",
                        &[&e.id, &event.id, &original],
                    )?
                    .is_some();
                if !newer {
                    made.push(Delivery::pending(&self.ids, &event, &e, Some(original), now));
                }
            }
            let left = made.len().saturating_sub(max);
            made.truncate(max);
            insert_deliveries(tx, &made)?;
            ready.extend(made.iter().map(|d| Ready::of(d, &e)));
            Ok(Recovery {
                made: made.len(),
                left,
            })
        })
    }
}
