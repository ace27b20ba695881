//! The queue of record as the dispatcher and the workers use it: pending deliveries by
//! endpoint, claims (the `sending` table) committed before any POST, results, and what a
//! crash left claimed.

use redb::ReadableTable;

use super::RedbStore;
use super::index::DeliveryTables;
use super::records::{Delivery, Endpoint, Event, decode, encode};
use super::tables::*;
use crate::domain::{DeliveryError, DeliveryStatus, Outcome, SendJob};
use crate::store::{ClaimReply, Faults, Queue, Result, StoreError};

impl Queue for RedbStore {
    /// Moves these pending deliveries to `sending` in one commit: from here on they count as
    /// possibly sent. `then` gets the ones that were still pending (others were deleted or
    /// disabled) once that is durable.
    fn claim_then(&self, ids: Vec<(String, String)>, then: ClaimReply) {
        self.writer.submit_then(
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
    fn unclaim(&self, ids: Vec<(String, String)>) -> Result<()> {
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

    /// Up to `limit` pending delivery ids of one endpoint after `after`, oldest first.
    fn pending_of(&self, endpoint_id: &str, after: &str, limit: usize) -> Result<Vec<String>> {
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
    fn endpoints_with_pending(&self) -> Result<Vec<(String, Option<u32>)>> {
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

    /// What a worker needs for a claimed delivery; `None` if it was deleted meanwhile.
    fn load_send_job(&self, delivery_id: &str) -> Result<Option<SendJob>> {
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
    fn finish(&self, outcome: Outcome) {
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
    fn fail_unsent(&self, delivery_id: String, detail: String) {
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
    fn interrupt_in_flight(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        self.write(move |ctx| {
            let mut dt = DeliveryTables::open(ctx.tx)?;
            let mut ids = Vec::new();
            for row in dt.sending.iter()? {
                ids.push(row?.0.value().to_owned());
            }

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

    /// Counts of deliveries waiting in the store and handed to workers, for /metrics.
    fn queue_counts(&self) -> Result<(u64, u64)> {
        use redb::ReadableTableMetadata;
        self.read(|tx| {
            Ok((
                tx.open_table(PENDING)?.len()?,
                tx.open_table(SENDING)?.len()?,
            ))
        })
    }
}
