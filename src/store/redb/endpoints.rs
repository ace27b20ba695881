//! Endpoints: create, change, delete, rotate the secret, send a test event, recover failures.

use redb::{ReadableTable, WriteTransaction};

use super::catalog;
use super::deliveries::{DeliveryTables, ReadView};
use super::records::{Delivery, Endpoint, ResultRow, decode, encode};
use super::tables::*;
use super::{RedbStore, WriteCtx};
use crate::domain::delivery::DISABLED_DETAIL;
use crate::domain::ingest;
use crate::domain::input::{EventFilter, ValidationError};
use crate::domain::time::now_ms;
use crate::domain::{
    DeliveryError, DeliveryStatus, EndpointPatch, IdKind, NewEndpoint, SigningSecret,
};
use crate::store::{
    Endpoints, Holds, Owner, Page, PageQuery, PauseChange, Ready, RecoverWindow, Recovery, Result,
    StoreError, TestSent,
};

pub(super) fn get_in(tx: &WriteTransaction, id: &str) -> Result<Option<Endpoint>> {
    tx.open_table(ENDPOINTS)?
        .get(id)?
        .map(|v| decode(v.value()))
        .transpose()
}

fn owned_in(tx: &WriteTransaction, customer_id: &str, id: &str) -> Result<Endpoint> {
    get_in(tx, id)?
        .filter(|e| e.customer_id == customer_id)
        .ok_or(StoreError::NotFound)
}

fn check_events(tx: &WriteTransaction, events: &[String]) -> Result<Vec<String>> {
    let types = tx.open_table(EVENT_TYPES)?;
    let filter = EventFilter::parse(events, |name| types.get(name).ok().flatten().is_some())?;
    Ok(filter.into_list())
}

fn put(tx: &WriteTransaction, e: &Endpoint) -> Result<()> {
    tx.open_table(ENDPOINTS)?
        .insert(e.id.as_str(), encode(e).as_slice())?;
    Ok(())
}

/// Ends pending, non-test deliveries of an endpoint as `failed` with `error`, never sent,
/// oldest first: at most `max`, and only those created before `before` if given; the claim
/// mark moves past them (pending test deliveries wait on in `LATE`). Returns how many.
fn fail_pending(
    ctx: &WriteCtx,
    endpoint_id: &str,
    error: DeliveryError,
    detail: &str,
    before: Option<i64>,
    max: usize,
) -> Result<usize> {
    let mut dt = DeliveryTables::open(ctx)?;
    let now = now_ms();
    let mut highest = String::new();
    let mut failed = 0;
    'pages: loop {
        let page = dt
            .view
            .pending_of(&dt.by_endpoint, endpoint_id, &highest, 1024)?;
        if page.is_empty() {
            break;
        }
        for id in page {
            if failed == max {
                break 'pages;
            }
            let Some(d) = dt.get(&id)? else {
                highest = id;
                continue;
            };
            if before.is_some_and(|t| d.created_at >= t) {
                break 'pages;
            }
            highest.clone_from(&id);
            if d.test {
                dt.view.late.insert((endpoint_id, id.as_str()), ())?;
                continue;
            }
            dt.view.late.remove((endpoint_id, id.as_str()))?;
            let r = ResultRow::unsent(DeliveryStatus::Failed, error, detail, now);
            dt.settle_pending(&id, endpoint_id, r)?;
            failed += 1;
        }
    }
    if !highest.is_empty() {
        dt.set_through(endpoint_id, &highest)?;
    }
    Ok(failed)
}

impl Holds for RedbStore {
    fn change_pause(&self, endpoint_id: &str, change: PauseChange) -> Result<Option<Endpoint>> {
        let id = endpoint_id.to_owned();
        self.write(move |ctx| {
            let Some(mut e) = get_in(ctx.tx, &id)? else {
                return Ok(None);
            };
            let pause = change(e.pause.as_ref());
            if pause != e.pause {
                if pause.is_none() {
                    ctx.ready.push(Ready::resumed(&e));
                }
                e.pause = pause;
                put(ctx.tx, &e)?;
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
        let id = endpoint_id.to_owned();
        self.write(move |ctx| {
            fail_pending(
                ctx,
                &id,
                DeliveryError::ReceiverUnavailable,
                detail,
                created_before,
                max,
            )
        })
    }
}

impl Endpoints for RedbStore {
    /// Creates an endpoint unless the customer already has `max` (422 `limit_reached`); the
    /// count is taken under the writer, so concurrent creations cannot pass it.
    fn create_endpoint(&self, customer_id: &str, new: NewEndpoint, max: u32) -> Result<Endpoint> {
        let now = now_ms();
        let endpoint = Endpoint::new(
            self.ids.next(IdKind::Endpoint),
            customer_id,
            new,
            SigningSecret::generate().as_str().to_owned(),
            now,
        );
        self.write(move |ctx| {
            let mut e = endpoint;
            e.events = check_events(ctx.tx, &e.events)?;
            if ctx
                .tx
                .open_table(CUSTOMERS)?
                .get(e.customer_id.as_str())?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let mut index = ctx.tx.open_table(CUSTOMER_ENDPOINTS)?;
            let owner = e.customer_id.as_str();
            let have = index
                .range((owner, "")..(owner, ID_MAX))?
                .take(max as usize)
                .count();
            if have >= max as usize {
                return Err(StoreError::Invalid(ValidationError::new(
                    "limit_reached",
                    format!("a customer may have at most {max} endpoints; delete one first"),
                )));
            }
            put(ctx.tx, &e)?;
            index.insert((owner, e.id.as_str()), ())?;
            Ok(e)
        })
    }

    fn list_endpoints(&self, owner: Owner, page: PageQuery) -> Result<Page<Endpoint>> {
        self.read(|tx| {
            super::paging::page_owned(
                &tx.open_table(CUSTOMER_ENDPOINTS)?,
                &tx.open_table(ENDPOINTS)?,
                owner,
                page,
                |_, raw| decode(raw),
                |e: &Endpoint| e.id.clone(),
            )
        })
    }

    fn get_endpoint(&self, customer_id: &str, id: &str) -> Result<Option<Endpoint>> {
        self.read(|tx| {
            let e: Option<Endpoint> = tx
                .open_table(ENDPOINTS)?
                .get(id)?
                .map(|v| decode(v.value()))
                .transpose()?;
            Ok(e.filter(|e| e.customer_id == customer_id))
        })
    }

    fn update_endpoint(
        &self,
        customer_id: &str,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<Endpoint> {
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        self.write(move |ctx| {
            let mut e = owned_in(ctx.tx, &cid, &id)?;
            let mut patch = patch;
            patch.events = patch
                .events
                .map(|events| check_events(ctx.tx, &events))
                .transpose()?;
            let paused = e.pause.is_some();
            let disabled = e.apply(patch, now_ms());
            put(ctx.tx, &e)?;
            if paused && e.pause.is_none() {
                ctx.ready.push(Ready::resumed(&e));
            }
            if disabled {
                fail_pending(
                    ctx,
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

    /// Removes the endpoint and its deliveries; pending ones are never sent.
    fn delete_endpoint(&self, customer_id: &str, id: &str) -> Result<()> {
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        self.write(move |ctx| {
            let e = owned_in(ctx.tx, &cid, &id)?;
            DeliveryTables::open(ctx)?.remove_endpoint(&e.id)?;
            ctx.tx.open_table(ENDPOINTS)?.remove(e.id.as_str())?;
            ctx.tx
                .open_table(CUSTOMER_ENDPOINTS)?
                .remove((cid.as_str(), e.id.as_str()))?;
            Ok(())
        })
    }

    /// A new signing secret; the old one keeps signing too for `keep_old_for_secs`.
    fn rotate_secret(
        &self,
        customer_id: &str,
        id: &str,
        keep_old_for_secs: u64,
    ) -> Result<Endpoint> {
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        let secret = SigningSecret::generate();
        self.write(move |ctx| {
            let mut e = owned_in(ctx.tx, &cid, &id)?;
            e.rotate(secret.as_str().to_owned(), keep_old_for_secs, now_ms());
            put(ctx.tx, &e)?;
            Ok(e)
        })
    }

    /// Sends the catalog example of `event_type` (default: the first subscribed type) to this
    /// endpoint only, even if disabled or unsubscribed. Returns (event id, delivery id).
    fn send_test(
        &self,
        customer_id: &str,
        id: &str,
        event_type: Option<String>,
    ) -> Result<TestSent> {
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        let ids = self.ids.clone();
        self.write(move |ctx| {
            let e = owned_in(ctx.tx, &cid, &id)?;
            let types = ctx.tx.open_table(EVENT_TYPES)?;
            let name = ingest::test_type(&e, event_type);
            let et = catalog::get(&types, &name)?.ok_or_else(|| ingest::unknown_type(&name))?;
            drop(types);
            let (event, d) = ingest::plan_test(et, &e, &ids, now_ms());
            super::events::put_new(ctx.tx, &event)?;
            DeliveryTables::open(ctx)?.insert_pending(&d)?;
            ctx.ready.push(Ready::of(&d, &e));
            Ok(TestSent {
                event_id: event.id,
                delivery_id: d.id,
            })
        })
    }

    /// Sends again, once per event, what failed or was interrupted on this endpoint in
    /// [since, until]: an event that has since succeeded here, or is on its way, is skipped, so
    /// repeating a recover never duplicates. Returns how many deliveries it made.
    fn recover(&self, customer_id: &str, id: &str, window: RecoverWindow) -> Result<Recovery> {
        let RecoverWindow { since, until, max } = window;
        // Choose in a read transaction (a long history is read without holding the writer)…
        let candidates = self.read(|tx| {
            let endpoint: Option<Endpoint> = tx
                .open_table(ENDPOINTS)?
                .get(id)?
                .map(|v| decode(v.value()))
                .transpose()?;
            if endpoint.is_none_or(|e| e.customer_id != customer_id) {
                return Err(StoreError::NotFound);
            }
            let index = tx.open_table(ENDPOINT_DELIVERIES)?;
            let view = ReadView::open(tx)?;
            let mut settled = std::collections::HashSet::new();
            let mut latest_failure: std::collections::BTreeMap<String, String> = Default::default();
            for row in index.range((id, "")..(id, ID_MAX))? {
                let (k, _) = row?;
                let Some(d) = view.get(k.value().1)? else {
                    continue;
                };
                match d.status {
                    DeliveryStatus::Failed | DeliveryStatus::Interrupted => {
                        let in_window =
                            d.created_at >= since && until.is_none_or(|u| d.created_at <= u);
                        if in_window {
                            latest_failure.insert(d.event_id.clone(), d.id.clone());
                        }
                    }
                    _ => {
                        settled.insert(d.event_id.clone());
                    }
                }
            }
            latest_failure.retain(|event, _| !settled.contains(event));
            Ok(latest_failure)
        })?;
        // …then write only the new deliveries.
        let (cid, id) = (customer_id.to_owned(), id.to_owned());
        let ids = self.ids.clone();
        self.write(move |ctx| {
            let e = owned_in(ctx.tx, &cid, &id)?;
            let mut events = Vec::with_capacity(candidates.len());
            for (event_id, original) in candidates {
                if let Some(event) = super::events::get_in(ctx.tx, &event_id)? {
                    events.push((event, original));
                }
            }
            let mut dt = DeliveryTables::open(ctx)?;
            // Checked again under the writer: a resend made since the read (another recover,
            // a Resend click) means this event is already on its way again.
            let mut fresh = Vec::with_capacity(events.len());
            for (event, original) in events {
                let mut newer = false;
                for dlv in super::paging::index_ids(&dt.by_event, &event.id)? {
                    if dlv > original && dt.get(&dlv)?.is_some_and(|d| d.endpoint_id == e.id) {
                        newer = true;
                        break;
                    }
                }
                if !newer {
                    fresh.push((event, original));
                }
            }
            let left = fresh.len().saturating_sub(max);
            fresh.truncate(max);
            let events = fresh;
            let now = now_ms();
            for (event, original) in &events {
                let d = Delivery::pending(&ids, event, &e, Some(original.clone()), now);
                dt.insert_pending(&d)?;
                ctx.ready.push(Ready::of(&d, &e));
            }
            Ok(Recovery {
                made: events.len(),
                left,
            })
        })
    }
}
