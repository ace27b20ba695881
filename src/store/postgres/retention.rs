//! Retention: old events with their deliveries, expired Idempotency-Keys and portal
//! sessions, each removed in small transactions (any node may run it; it is idempotent).

use super::PgStore;
use crate::domain::{IdKind, ids};
use crate::store::{IDEMPOTENCY_TTL_MS, Pruned, Result, Retention};

impl Retention for PgStore {
    fn prune_before(&self, cutoff_ms: i64, after: &str, max: usize) -> Result<Pruned> {
        let bound = ids::lower_bound_at(IdKind::Event, cutoff_ms.max(0) as u64);
        let start = if after.is_empty() { "evt_" } else { after };
        self.write(|tx, _| {
            let old: Vec<String> = tx
                .query(
                    "SELECT id FROM events WHERE id > $1 AND id < $2 ORDER BY id LIMIT $3",
                    &[&start, &bound, &(max as i64)],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let last = (old.len() == max).then(|| old.last().cloned()).flatten();
            let deleted = tx.execute(
                "DELETE FROM events e WHERE e.id = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id
                                 AND d.status IN ('pending', 'sending'))",
                &[&old],
            )?;
            Ok(Pruned {
                last,
                removed: deleted as usize,
            })
        })
    }

    fn prune_expired(&self, max: usize) -> Result<usize> {
        let now = self.clock.now_ms();
        self.write(|tx, _| {
            let keys = tx.execute(
                "DELETE FROM idempotency WHERE ctid IN
                   (SELECT ctid FROM idempotency WHERE created_at <= $1 LIMIT $2)",
                &[&(now - IDEMPOTENCY_TTL_MS), &(max as i64)],
            )?;
            let sessions = tx.execute(
                "DELETE FROM sessions WHERE ctid IN
                   (SELECT ctid FROM sessions WHERE expires_at <= $1 LIMIT $2)",
                &[&now, &(max as i64)],
            )?;
            tx.execute(
                "DELETE FROM portal_links WHERE ctid IN
                   (SELECT ctid FROM portal_links WHERE expires_at <= $1 LIMIT $2)",
                &[&now, &(max as i64)],
            )?;
            // Statistics are kept 8 days, as on the data file.
            tx.execute(
                "DELETE FROM delivery_stats WHERE ctid IN
                   (SELECT ctid FROM delivery_stats WHERE minute < $1 LIMIT $2)",
                &[&(now - crate::domain::stats::STATS_KEPT_MS), &(max as i64)],
            )?;
            Ok((keys as usize).max(sessions as usize))
        })
    }
}
