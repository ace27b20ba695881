//! The queue of record on PostgreSQL: pending deliveries by endpoint (a partial index),
//! claims marked with the claiming node (through the batcher), results, and this node's
//! outstanding claims at start and stop.

use postgres::types::Type;

use super::PgStore;
use super::node::INTERRUPTED_DETAIL;
use super::rows::{DELIVERY_COLS, EVENT_COLS, decode, delivery, event_at, prefixed};
use crate::domain::time::now_ms;
use crate::domain::{Claim, Endpoint, Outcome, SendJob};
use crate::store::{Backlog, ClaimReply, Faults, Queue, QueueCounts, Result, StoreError};

/// Marks this node's claims `interrupted`: they may have been sent.
pub(super) fn interrupt_own(store: &PgStore) -> Result<usize> {
    let mut c = store.conn()?;
    let mut tx = c.transaction()?;
    let now = now_ms();
    let rows = tx.query(
        "UPDATE deliveries SET status = 'interrupted', error = 'interrupted', error_detail = $2,
             finished_at = $3, claimed_by = NULL
         WHERE status = 'sending' AND claimed_by = $1 RETURNING endpoint_id",
        &[&store.node.id, &INTERRUPTED_DETAIL, &now],
    )?;
    let endpoints: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    super::stats::add(
        &mut tx,
        &store.node.id,
        &super::stats::interrupted_delta(&endpoints, now),
    )?;
    tx.commit()?;
    Ok(endpoints.len())
}

impl Queue for PgStore {
    fn claim_then(&self, ids: Vec<Claim>, then: ClaimReply) {
        self.batcher.claim(ids, then);
    }

    /// Hands back claims no worker started (still this node's, still `sending`, and by the
    /// very claim that made them so): through the batcher, which retries until it is written
    /// and tells every node. Never fails here.
    fn unclaim(&self, ids: Vec<Claim>) -> Result<()> {
        {
            let mut prepared = self
                .batcher
                .prepared
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for c in &ids {
                prepared.remove(&c.delivery_id);
            }
        }
        self.batcher.unclaim(ids);
        Ok(())
    }

    fn pending_of(&self, endpoint_id: &str, after: &str, limit: usize) -> Result<Vec<String>> {
        let mut c = self.conn()?;
        Ok(c.query_typed(
            "SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND id > $2
             ORDER BY id LIMIT $3",
            &[
                (&endpoint_id, Type::TEXT),
                (&after, Type::TEXT),
                (&(limit as i64), Type::INT8),
            ],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    fn endpoints_with_pending(&self) -> Result<Vec<Backlog>> {
        let mut c = self.conn()?;
        // A loose index scan: one probe per endpoint, not one row per pending delivery.
        let rows = c.query(
            "WITH RECURSIVE eps(id) AS (
                 (SELECT endpoint_id FROM deliveries WHERE status = 'pending'
                  ORDER BY endpoint_id LIMIT 1)
                 UNION ALL
                 SELECT (SELECT endpoint_id FROM deliveries
                         WHERE status = 'pending' AND endpoint_id > eps.id
                         ORDER BY endpoint_id LIMIT 1)
                 FROM eps WHERE eps.id IS NOT NULL)
             SELECT e.id, e.record FROM eps JOIN endpoints e ON e.id = eps.id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                let e: Endpoint = decode(r.get::<_, &str>(1))?;
                Ok(Backlog {
                    endpoint_id: r.get(0),
                    rate_limit_per_sec: e.rate_limit_per_sec,
                })
            })
            .collect()
    }

    /// What a worker needs, only while the delivery is still this node's claim (a node whose
    /// lease lapsed finds its claims interrupted and sends none of them).
    fn load_send_job(&self, delivery_id: &str) -> Result<Option<SendJob>> {
        if Faults::on(&self.faults.load) {
            return Err(StoreError::Storage(
                "cannot read the delivery (injected fault)".into(),
            ));
        }
        // Read by the claim that made it this node's (the lease guards the rest: see may_send).
        if let Some(job) = self
            .batcher
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(delivery_id)
        {
            return Ok(Some(job));
        }
        // One round trip: the delivery (still this node's claim), its endpoint and event.
        let mut c = self.conn()?;
        let Some(row) = c.query_typed_opt(
            &format!(
                "SELECT {cols}, e.record, {ev}
                 FROM deliveries d
                 JOIN endpoints e ON e.id = d.endpoint_id
                 JOIN events ev ON ev.id = d.event_id
                 WHERE d.id = $1 AND d.status = 'sending' AND d.claimed_by = $2",
                cols = prefixed("d", DELIVERY_COLS),
                ev = prefixed("ev", EVENT_COLS),
            ),
            &[(&delivery_id, Type::TEXT), (&self.node.id, Type::TEXT)],
        )?
        else {
            return Ok(None);
        };
        let d = delivery(&row)?;
        let endpoint: Endpoint = decode(row.get::<_, &str>(17))?;
        Ok(Some(SendJob {
            delivery: d,
            endpoint,
            event: event_at(&row, 18),
        }))
    }

    fn finish(&self, outcome: Outcome) {
        self.batcher.finish(outcome);
    }

    fn fail_unsent(&self, endpoint_id: String, delivery_id: String, detail: String) {
        self.batcher
            .fail_unsent(endpoint_id, delivery_id, detail, self.clock.now_ms());
    }

    /// At start: this node's claims from before are `interrupted` (other nodes' claims are
    /// theirs until their lease lapses).
    fn interrupt_in_flight(&self) -> Result<usize> {
        interrupt_own(self)
    }

    fn queue_counts(&self) -> Result<QueueCounts> {
        let mut c = self.conn()?;
        let row = c.query_one(
            "SELECT count(*) FILTER (WHERE status = 'pending'),
                    count(*) FILTER (WHERE status = 'sending')
             FROM deliveries WHERE status IN ('pending', 'sending')",
            &[],
        )?;
        Ok(QueueCounts {
            pending: row.get::<_, i64>(0) as u64,
            claimed: row.get::<_, i64>(1) as u64,
        })
    }
}
