//! A delivery's life in redb: the tables it lives in, how its state follows from its result
//! and its endpoint's claim mark, and making, claiming, finishing and removing it. Depends
//! on the tables and records, and on the commit group's context (`group::WriteCtx`).
//!
//! Rows written per delivery over its life: four when it is made (record, and the customer,
//! endpoint and event indexes), one result and, if it was sent, the headers it was sent with;
//! a claim rewrites only its endpoint's mark, once per commit group. The endpoint index is
//! also the queue: above the mark is pending.

use std::cell::RefCell;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, Table};

use super::group::{Tally, WriteCtx};
use super::records::{ClaimMark, Delivery, DeliveryRow, ResultRow, decode_bin, encode_bin};
use super::tables::*;
use crate::domain::DeliveryStatus;
use crate::store::Result;

type Bytes = &'static [u8];
type Pair = (&'static str, &'static str);

/// The tables that say what state a delivery is in, for reading (snapshots) or writing.
pub(super) struct View<T, K> {
    pub records: T,
    pub results: T,
    pub claims: T,
    pub late: K,
}

pub(super) type ReadView = View<ReadOnlyTable<&'static str, Bytes>, ReadOnlyTable<Pair, ()>>;

impl ReadView {
    pub fn open(tx: &ReadTransaction) -> Result<Self> {
        Ok(View {
            records: tx.open_table(DELIVERIES)?,
            results: tx.open_table(RESULTS)?,
            claims: tx.open_table(CLAIMS)?,
            late: tx.open_table(LATE)?,
        })
    }
}

impl<T: ReadableTable<&'static str, Bytes>, K: ReadableTable<Pair, ()>> View<T, K> {
    pub fn get(&self, id: &str) -> Result<Option<Delivery>> {
        let Some(raw) = self.records.get(id)? else {
            return Ok(None);
        };
        let row: DeliveryRow = decode_bin(raw.value())?;
        drop(raw);
        let result = self.result(id)?;
        let status = match &result {
            Some(r) => r.status,
            None => self.open_status(id, &row.endpoint_id)?,
        };
        Ok(Some(row.into_delivery(id, result, status)))
    }

    pub fn result(&self, id: &str) -> Result<Option<ResultRow>> {
        self.results
            .get(id)?
            .map(|v| decode_bin(v.value()))
            .transpose()
    }

    pub fn has_result(&self, id: &str) -> Result<bool> {
        Ok(self.results.get(id)?.is_some())
    }

    pub fn mark(&self, endpoint_id: &str) -> Result<Option<ClaimMark>> {
        self.claims
            .get(endpoint_id)?
            .map(|v| decode_bin(v.value()))
            .transpose()
    }

    /// The state of a delivery without a result: at or below its endpoint's claim mark it
    /// was claimed (unless handed back, in `LATE`); above, it waits.
    pub fn open_status(&self, id: &str, endpoint_id: &str) -> Result<DeliveryStatus> {
        let claimed = self
            .mark(endpoint_id)?
            .is_some_and(|m| id <= m.through.as_str());
        Ok(if claimed && self.late.get((endpoint_id, id))?.is_none() {
            DeliveryStatus::Sending
        } else {
            DeliveryStatus::Pending
        })
    }

    /// Up to `limit` pending deliveries of one endpoint after `after`, oldest first: those
    /// handed back first, then the queue above the claim mark.
    pub fn pending_of(
        &self,
        by_endpoint: &impl ReadableTable<Pair, ()>,
        endpoint_id: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for row in self
            .late
            .range((endpoint_id, after)..(endpoint_id, ID_MAX))?
        {
            let id = row?.0.value().1.to_owned();
            if id.as_str() != after {
                v.push(id);
            }
            if v.len() == limit {
                return Ok(v);
            }
        }
        let through = self
            .mark(endpoint_id)?
            .map(|m| m.through)
            .unwrap_or_default();
        let from = through.as_str().max(after);
        for row in by_endpoint.range((endpoint_id, from)..(endpoint_id, ID_MAX))? {
            let (k, _) = row?;
            let id = k.value().1;
            if id == from || self.has_result(id)? {
                continue;
            }
            v.push(id.to_owned());
            if v.len() == limit {
                break;
            }
        }
        Ok(v)
    }
}

/// Every table a delivery lives in, opened once per change.
pub(super) struct DeliveryTables<'t> {
    pub view: View<Table<'t, &'static str, Bytes>, Table<'t, Pair, ()>>,
    pub by_customer: Table<'t, Pair, ()>,
    pub by_endpoint: Table<'t, Pair, ()>,
    pub by_event: Table<'t, Pair, ()>,
    /// The headers each POST was sent with.
    pub requests: Table<'t, &'static str, Bytes>,
    tally: &'t RefCell<Tally>,
}

impl<'t> DeliveryTables<'t> {
    pub fn open(ctx: &WriteCtx<'t>) -> Result<Self> {
        let tx = ctx.tx;
        Ok(Self {
            view: View {
                records: tx.open_table(DELIVERIES)?,
                results: tx.open_table(RESULTS)?,
                claims: tx.open_table(CLAIMS)?,
                late: tx.open_table(LATE)?,
            },
            by_customer: tx.open_table(CUSTOMER_DELIVERIES)?,
            by_endpoint: tx.open_table(ENDPOINT_DELIVERIES)?,
            by_event: tx.open_table(EVENT_DELIVERIES)?,
            requests: tx.open_table(REQUESTS)?,
            tally: ctx.tally,
        })
    }

    pub fn get(&self, id: &str) -> Result<Option<Delivery>> {
        self.view.get(id)
    }

    /// Adds a new pending delivery with its indexes. Its id was made under the writer, so it
    /// sorts above its endpoint's claim mark (ids resume above every mark at start).
    pub fn insert_pending(&mut self, d: &Delivery) -> Result<()> {
        let id = d.id.as_str();
        let ep = d.endpoint_id.as_str();
        self.view
            .records
            .insert(id, encode_bin(&DeliveryRow::of(d)).as_slice())?;
        self.by_customer.insert((d.customer_id.as_str(), id), ())?;
        self.by_endpoint.insert((ep, id), ())?;
        self.by_event.insert((d.event_id.as_str(), id), ())?;
        let mut tally = self.tally.borrow_mut();
        tally.pending += 1;
        tally.rows += 4;
        Ok(())
    }

    /// Records how a claimed delivery ended: one blind insert. A claimed delivery is deleted
    /// only with its endpoint, whose mark goes too (and a claim never writes a mark back for
    /// deliveries that are gone): then nothing is written.
    pub fn finish(&mut self, id: &str, endpoint_id: &str, result: &ResultRow) -> Result<()> {
        if self.view.claims.get(endpoint_id)?.is_none() {
            return Ok(());
        }
        let mut tally = self.tally.borrow_mut();
        if let Some(at) = result.finished_at {
            tally
                .stats
                .add(endpoint_id, at, result.status, result.duration_ms);
        }
        tally.sending -= 1;
        tally.rows += 1;
        self.view
            .results
            .insert(id, encode_bin(&result).as_slice())?;
        Ok(())
    }

    /// As `finish`, with the headers the POST was sent with.
    pub fn finish_sent(
        &mut self,
        id: &str,
        endpoint_id: &str,
        result: &ResultRow,
        sent: Option<&[u8]>,
    ) -> Result<()> {
        if self.view.claims.get(endpoint_id)?.is_none() {
            return Ok(());
        }
        if let Some(sent) = sent {
            self.requests.insert(id, sent)?;
        }
        self.finish(id, endpoint_id, result)
    }

    /// Ends a pending delivery without sending it (its endpoint was disabled).
    pub fn settle_pending(&mut self, id: &str, endpoint_id: &str, result: ResultRow) -> Result<()> {
        let mut tally = self.tally.borrow_mut();
        if let Some(at) = result.finished_at {
            tally.stats.add(endpoint_id, at, result.status, None);
        }
        tally.pending -= 1;
        tally.rows += 1;
        self.view
            .results
            .insert(id, encode_bin(&result).as_slice())?;
        Ok(())
    }

    /// Claims these deliveries of one endpoint (ascending ids) by moving its mark; returns
    /// those that were still pending. A pending delivery the mark passes over without being
    /// asked for is kept waiting in `LATE` (the dispatcher asks in order, so this is rare).
    pub fn claim(&mut self, endpoint_id: &str, ids: &[String]) -> Result<Vec<String>> {
        let ep = endpoint_id;
        let mut mark = self.view.mark(ep)?.unwrap_or_default();
        let mut claimed = Vec::with_capacity(ids.len());
        let mut rows = 1; // the mark
        let mut moved = false;
        for id in ids {
            let id = id.as_str();
            let handed_back = self.view.late.get((ep, id))?.is_some();
            if handed_back {
                self.view.late.remove((ep, id))?;
                rows += 1;
                moved = true;
                if !self.view.has_result(id)? {
                    claimed.push(id.to_owned());
                    if mark.scan_from.as_str() > id {
                        mark.scan_from = id.to_owned();
                    }
                }
                continue;
            }
            if id <= mark.through.as_str() {
                continue; // claimed or ended already
            }
            if self.by_endpoint.get((ep, id))?.is_none() {
                // Deleted (with its endpoint, perhaps): the mark does not move for it, and an
                // endpoint that is gone gets no mark back.
                continue;
            }
            let mut passed = Vec::new();
            for row in self
                .by_endpoint
                .range((ep, mark.through.as_str())..(ep, id))?
            {
                let (k, _) = row?;
                let other = k.value().1;
                if other != mark.through && !self.view.has_result(other)? {
                    passed.push(other.to_owned());
                }
            }
            for other in passed {
                self.view.late.insert((ep, other.as_str()), ())?;
                rows += 1;
            }
            mark.through = id.to_owned();
            moved = true;
            if !self.view.has_result(id)? {
                claimed.push(id.to_owned());
            }
        }
        if !moved {
            return Ok(claimed);
        }
        if mark.scan_from.is_empty()
            && let Some(first) = claimed.iter().min()
        {
            mark.scan_from.clone_from(first);
        }
        self.advance_scan(ep, &mut mark)?;
        self.view.claims.insert(ep, encode_bin(&mark).as_slice())?;
        let mut tally = self.tally.borrow_mut();
        tally.pending -= claimed.len() as i64;
        tally.sending += claimed.len() as i64;
        tally.rows += rows;
        Ok(claimed)
    }

    /// Moves `scan_from` past deliveries that ended (or were handed back), so recovery after
    /// a crash reads only what may still be in flight. Bounded per call; runs at each claim.
    fn advance_scan(&self, ep: &str, mark: &mut ClaimMark) -> Result<()> {
        const MAX_STEPS: usize = 4096;
        if mark.scan_from.is_empty() {
            return Ok(());
        }
        let mut next = None;
        for (step, row) in self
            .by_endpoint
            .range((ep, mark.scan_from.as_str())..=(ep, mark.through.as_str()))?
            .enumerate()
        {
            let (k, _) = row?;
            let id = k.value().1;
            let settled = self.view.has_result(id)? || self.view.late.get((ep, id))?.is_some();
            if !settled || step == MAX_STEPS {
                next = Some(id.to_owned());
                break;
            }
            next = Some(id.to_owned());
        }
        if let Some(next) = next {
            mark.scan_from = next;
        }
        Ok(())
    }

    /// Hands a claimed, unstarted delivery back: it waits again (in `LATE`).
    pub fn unclaim(&mut self, endpoint_id: &str, id: &str) -> Result<bool> {
        if self.view.open_status_if_unfinished(id, endpoint_id)? != Some(DeliveryStatus::Sending) {
            return Ok(false);
        }
        self.view.late.insert((endpoint_id, id), ())?;
        let mut tally = self.tally.borrow_mut();
        tally.pending += 1;
        tally.sending -= 1;
        Ok(true)
    }

    /// Every delivery of the endpoint that may be in flight (claimed, no result, not handed
    /// back), read from its mark's `scan_from`.
    pub fn in_flight_of(&self, endpoint_id: &str) -> Result<Vec<String>> {
        let Some(mark) = self.view.mark(endpoint_id)? else {
            return Ok(Vec::new());
        };
        let mut v = Vec::new();
        if mark.through.is_empty() {
            return Ok(v);
        }
        for row in self
            .by_endpoint
            .range((endpoint_id, mark.scan_from.as_str())..=(endpoint_id, mark.through.as_str()))?
        {
            let (k, _) = row?;
            let id = k.value().1;
            if !self.view.has_result(id)? && self.view.late.get((endpoint_id, id))?.is_none() {
                v.push(id.to_owned());
            }
        }
        Ok(v)
    }

    /// Ends what `in_flight_of` found as `interrupted`.
    pub fn interrupt(&mut self, endpoint_id: &str, ids: &[String], now: i64) -> Result<()> {
        for id in ids {
            let r = ResultRow::unsent(
                DeliveryStatus::Interrupted,
                crate::domain::DeliveryError::Interrupted,
                "the server stopped while this delivery was in flight; it may or may not have arrived and is not sent again by itself",
                now,
            );
            self.finish(id, endpoint_id, &r)?;
        }
        if let Some(mut mark) = self.view.mark(endpoint_id)? {
            mark.scan_from.clone_from(&mark.through);
            self.view
                .claims
                .insert(endpoint_id, encode_bin(&mark).as_slice())?;
        }
        Ok(())
    }

    /// Removes a delivery with its result and indexes (as read by `get`, with its state).
    pub fn remove(&mut self, d: &Delivery) -> Result<()> {
        let id = d.id.as_str();
        self.view.records.remove(id)?;
        self.view.results.remove(id)?;
        self.requests.remove(id)?;
        self.view.late.remove((d.endpoint_id.as_str(), id))?;
        self.by_customer.remove((d.customer_id.as_str(), id))?;
        self.by_endpoint.remove((d.endpoint_id.as_str(), id))?;
        self.by_event.remove((d.event_id.as_str(), id))?;
        let mut tally = self.tally.borrow_mut();
        match d.status {
            DeliveryStatus::Pending => tally.pending -= 1,
            DeliveryStatus::Sending => tally.sending -= 1,
            _ => {}
        }
        Ok(())
    }

    /// Removes every delivery of an endpoint and its queue mark.
    pub fn remove_endpoint(&mut self, endpoint_id: &str) -> Result<()> {
        for dlv in super::paging::index_ids(&self.by_endpoint, endpoint_id)? {
            if let Some(d) = self.get(&dlv)? {
                self.remove(&d)?;
            }
        }
        self.view.claims.remove(endpoint_id)?;
        Ok(())
    }

    /// Moves the endpoint's mark to `through` (after every pending delivery below it was
    /// ended or put in `LATE`).
    pub fn set_through(&mut self, endpoint_id: &str, through: &str) -> Result<()> {
        let mut mark = self.view.mark(endpoint_id)?.unwrap_or_default();
        if through > mark.through.as_str() {
            if mark.scan_from.is_empty() {
                mark.scan_from = through.to_owned();
            }
            mark.through = through.to_owned();
            self.view
                .claims
                .insert(endpoint_id, encode_bin(&mark).as_slice())?;
        }
        Ok(())
    }
}

impl<T: ReadableTable<&'static str, Bytes>, K: ReadableTable<Pair, ()>> View<T, K> {
    /// The state of a delivery that exists and has no result; `None` otherwise.
    pub fn open_status_if_unfinished(
        &self,
        id: &str,
        endpoint_id: &str,
    ) -> Result<Option<DeliveryStatus>> {
        if self.records.get(id)?.is_none() || self.has_result(id)? {
            return Ok(None);
        }
        self.open_status(id, endpoint_id).map(Some)
    }
}
