//! The queue of record as the dispatcher and the workers use it: pending deliveries by
//! endpoint (above its claim mark), claims committed before any POST, results, and what a
//! crash left claimed.

use std::collections::BTreeMap;

use redb::ReadableTable;

use super::RedbStore;
use super::deliveries::{DeliveryTables, ReadView};
use super::records::{DeliveryRow, Endpoint, EventRow, ResultRow, decode, decode_bin};
use super::tables::*;
use crate::domain::{Claim, DeliveryError, DeliveryStatus, Outcome, SendJob};
use crate::store::{Backlog, ClaimReply, Faults, Queue, QueueCounts, Result, StoreError};

/// Groups claims by endpoint, ids ascending.
fn by_endpoint(ids: Vec<Claim>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in ids {
        m.entry(c.endpoint_id).or_default().push(c.delivery_id);
    }
    for v in m.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    m
}

impl Queue for RedbStore {
    /// Claims these pending deliveries in one commit by moving their endpoints' marks: from
    /// here on they count as possibly sent. `then` gets the ones that were still pending
    /// (others were deleted or ended) once that is durable.
    fn claim_then(&self, ids: Vec<Claim>, then: ClaimReply) {
        self.writer.submit_then(
            move |ctx| {
                let mut dt = DeliveryTables::open(ctx)?;
                let mut claimed = Vec::with_capacity(ids.len());
                for (ep, dlvs) in by_endpoint(ids) {
                    for id in dt.claim(&ep, &dlvs)? {
                        claimed.push(Claim::new(&ep, id));
                    }
                }
                Ok(claimed)
            },
            then,
        );
    }

    /// Puts claimed deliveries that no worker started back to `pending` (at shutdown).
    fn unclaim(&self, ids: Vec<Claim>) -> Result<()> {
        self.write(move |ctx| {
            let mut dt = DeliveryTables::open(ctx)?;
            for c in ids {
                dt.unclaim(&c.endpoint_id, &c.delivery_id)?;
            }
            Ok(())
        })
    }

    /// Up to `limit` pending delivery ids of one endpoint after `after`, oldest first.
    fn pending_of(&self, endpoint_id: &str, after: &str, limit: usize) -> Result<Vec<String>> {
        self.read(|tx| {
            let view = ReadView::open(tx)?;
            view.pending_of(
                &tx.open_table(ENDPOINT_DELIVERIES)?,
                endpoint_id,
                after,
                limit,
            )
        })
    }

    /// Every endpoint that has pending deliveries, with its rate limit.
    fn endpoints_with_pending(&self) -> Result<Vec<Backlog>> {
        self.read(|tx| {
            let view = ReadView::open(tx)?;
            let index = tx.open_table(ENDPOINT_DELIVERIES)?;
            let endpoints = tx.open_table(ENDPOINTS)?;
            let mut v = Vec::new();
            for row in endpoints.iter()? {
                let (k, raw) = row?;
                let ep = k.value();
                if !view.pending_of(&index, ep, "", 1)?.is_empty() {
                    let rate = decode::<Endpoint>(raw.value())?.rate_limit_per_sec;
                    v.push(Backlog {
                        endpoint_id: ep.to_owned(),
                        rate_limit_per_sec: rate,
                    });
                }
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
            let row: DeliveryRow = decode_bin(v.value())?;
            let Some(v) = tx.open_table(ENDPOINTS)?.get(row.endpoint_id.as_str())? else {
                return Ok(None);
            };
            let endpoint: Endpoint = decode(v.value())?;
            let Some(v) = tx.open_table(EVENTS)?.get(row.event_id.as_str())? else {
                return Ok(None);
            };
            let event = decode_bin::<EventRow>(v.value())?.into_event(&row.event_id);
            let delivery = row.into_delivery(delivery_id, None, DeliveryStatus::Sending);
            Ok(Some(SendJob {
                delivery,
                endpoint,
                event,
            }))
        })
    }

    /// Records a worker's result as one blind insert; grouped with other writes, nobody
    /// waits for it.
    /// Written with the writer's next group; kept in memory (and written once it can be)
    /// while the data file cannot be written.
    fn finish(&self, mut outcome: Outcome) {
        let (id, ep) = (outcome.delivery_id.clone(), outcome.endpoint_id.clone());
        let sent = outcome.request_headers.take().map(String::into_bytes);
        self.writer.result(id, ep, ResultRow::of(outcome), sent);
    }

    /// A claimed delivery that its worker could not prepare (its records could not be read):
    /// it was certainly not sent, so it ends `failed` with error `internal` rather than
    /// staying `sending` (and turning `interrupted` at the next start).
    fn fail_unsent(&self, endpoint_id: String, delivery_id: String, detail: String) {
        let now = self.clock.now_ms();
        self.write_detached(move |ctx| {
            let mut r = ResultRow::unsent(
                DeliveryStatus::Failed,
                DeliveryError::Internal,
                &detail,
                now,
            );
            r.started_at = Some(now);
            r.duration_ms = Some(0);
            DeliveryTables::open(ctx)?.finish(&delivery_id, &endpoint_id, &r)
        });
    }

    /// At start-up: whatever was claimed by the last process and has no result might have
    /// been sent. It becomes `interrupted` and is never sent again by itself. Reads only
    /// from each endpoint's `scan_from`. Returns how many.
    fn interrupt_in_flight(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        self.write(move |ctx| {
            let mut dt = DeliveryTables::open(ctx)?;
            let mut endpoints = Vec::new();
            for row in dt.view.claims.iter()? {
                endpoints.push(row?.0.value().to_owned());
            }
            let mut n = 0;
            for ep in endpoints {
                let ids = dt.in_flight_of(&ep)?;
                n += ids.len();
                dt.interrupt(&ep, &ids, now)?;
            }
            Ok(n)
        })
    }

    /// Deliveries waiting in the store and claimed, for /metrics: counters the writer keeps
    /// in the commits that change them.
    fn queue_counts(&self) -> Result<QueueCounts> {
        self.read(|tx| {
            let meta = tx.open_table(META)?;
            let get = |key: &str| -> Result<u64> {
                Ok(meta
                    .get(key)?
                    .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                    .map_or(0, |b| i64::from_le_bytes(b).max(0) as u64))
            };
            Ok(QueueCounts {
                pending: get("queue_pending")?,
                claimed: get("queue_sending")?,
            })
        })
    }
}
