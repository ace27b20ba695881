//! Retention: old events with their deliveries, expired Idempotency-Keys and portal
//! sessions, each removed in small transactions.

use redb::ReadableTable;

use super::RedbStore;
use super::deliveries::DeliveryTables;
use super::records::{EventRow, IdempotencyRecord, decode, decode_bin};
use super::tables::*;
use crate::domain::{DeliveryStatus, IdKind, ids};
use crate::store::{IDEMPOTENCY_TTL_MS, Pruned, Result, Retention};

impl Retention for RedbStore {
    /// Deletes, in one small transaction, old events (created before `cutoff_ms`) after
    /// `after` with their deliveries, reading at most `max`. An event with a delivery still
    /// pending or in flight is kept.
    fn prune_before(&self, cutoff_ms: i64, after: &str, max: usize) -> Result<Pruned> {
        let bound = ids::lower_bound_at(IdKind::Event, cutoff_ms.max(0) as u64);
        let after = after.to_owned();
        self.write(move |ctx| {
            let mut events = ctx.tx.open_table(EVENTS)?;
            let mut old = Vec::new();
            let start = if after.is_empty() {
                "evt_"
            } else {
                after.as_str()
            };
            for row in events.range(start..bound.as_str())? {
                let (k, v) = row?;
                if k.value() == after {
                    continue;
                }
                old.push(decode_bin::<EventRow>(v.value())?.into_event(k.value()));
                if old.len() == max {
                    break;
                }
            }
            let last = (old.len() == max)
                .then(|| old.last().map(|e| e.id.clone()))
                .flatten();
            let mut dt = DeliveryTables::open(ctx)?;
            let mut by_customer = ctx.tx.open_table(CUSTOMER_EVENTS)?;
            let mut deleted = 0;
            for e in &old {
                let mut ds = Vec::new();
                for dlv in super::paging::index_ids(&dt.by_event, &e.id)? {
                    if let Some(d) = dt.get(&dlv)? {
                        ds.push(d);
                    }
                }
                if ds
                    .iter()
                    .any(|d| matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Sending))
                {
                    continue;
                }
                for d in &ds {
                    dt.remove(d)?;
                }
                events.remove(e.id.as_str())?;
                by_customer.remove((e.customer_id.as_str(), e.id.as_str()))?;
                deleted += 1;
            }
            Ok(Pruned {
                last,
                removed: deleted,
            })
        })
    }

    fn prune_expired(&self, max: usize) -> Result<usize> {
        let now = self.clock.now_ms();
        self.write(move |ctx| {
            let mut table = ctx.tx.open_table(IDEMPOTENCY)?;
            let mut old = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let rec: IdempotencyRecord = decode(v.value())?;
                if now - rec.created_at >= IDEMPOTENCY_TTL_MS {
                    let (c, key) = k.value();
                    old.push((c.to_owned(), key.to_owned()));
                    if old.len() == max {
                        break;
                    }
                }
            }
            for (c, key) in &old {
                table.remove((c.as_str(), key.as_str()))?;
            }
            let sessions = super::sessions::prune_expired(ctx.tx, now, max)?;
            prune_stats(ctx.tx, now - crate::domain::stats::STATS_KEPT_MS, max)?;
            Ok(old.len().max(sessions))
        })
    }
}

/// Forgets per-minute statistics older than `before`; at most `max` rows per call.
fn prune_stats(tx: &redb::WriteTransaction, before: i64, max: usize) -> Result<()> {
    let mut table = tx.open_table(STATS)?;
    let mut old = Vec::new();
    for row in table.iter()? {
        let (k, _) = row?;
        let (scope, minute) = k.value();
        if minute < before {
            old.push((scope.to_owned(), minute));
            if old.len() == max {
                break;
            }
        }
    }
    for (scope, minute) in &old {
        table.remove((scope.as_str(), *minute))?;
    }
    Ok(())
}
