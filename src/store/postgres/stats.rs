//! Delivery statistics on PostgreSQL: each node adds a commit group's counters to its own
//! per-minute rows (one upsert inside the group's statement); reads sum over nodes.

use super::PgStore;
use crate::domain::stats::{Counted, Counters, StatsDelta};
use crate::store::{Minutes, Result, Stats};

/// The counters of a group as statement parameters: scope, minute, succeeded, failed,
/// interrupted, durations (an array literal per row), sorted by key so that concurrent
/// groups lock rows in one order.
pub(super) struct Columns {
    pub scopes: Vec<String>,
    pub minutes: Vec<i64>,
    pub succeeded: Vec<i64>,
    pub failed: Vec<i64>,
    pub interrupted: Vec<i64>,
    pub durations: Vec<String>,
}

impl Columns {
    pub fn of(delta: &StatsDelta) -> Self {
        let mut rows: Vec<_> = delta.rows.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut c = Columns {
            scopes: Vec::with_capacity(rows.len()),
            minutes: Vec::with_capacity(rows.len()),
            succeeded: Vec::with_capacity(rows.len()),
            failed: Vec::with_capacity(rows.len()),
            interrupted: Vec::with_capacity(rows.len()),
            durations: Vec::with_capacity(rows.len()),
        };
        for ((scope, minute), n) in rows {
            c.scopes.push(scope.clone());
            c.minutes.push(*minute);
            c.succeeded.push(n.succeeded as i64);
            c.failed.push(n.failed as i64);
            c.interrupted.push(n.interrupted as i64);
            let list: Vec<String> = n.durations.iter().map(u64::to_string).collect();
            c.durations.push(format!("{{{}}}", list.join(",")));
        }
        c
    }
}

/// The upsert adding a group's counters to this node's rows. `$n` placeholders: node id,
/// then the six columns of `Columns`, starting at `first`.
pub(super) fn upsert_sql(node: usize, first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "INSERT INTO delivery_stats AS s
             (scope, minute, node_id, succeeded, failed, interrupted, durations)
         SELECT u.scope, u.minute, ${node}, u.ok, u.bad, u.lost, u.hist::bigint[]
         FROM unnest({}::text[], {}::bigint[], {}::bigint[], {}::bigint[], {}::bigint[],
                     {}::text[]) AS u(scope, minute, ok, bad, lost, hist)
         ON CONFLICT (scope, minute, node_id) DO UPDATE SET
             succeeded = s.succeeded + excluded.succeeded,
             failed = s.failed + excluded.failed,
             interrupted = s.interrupted + excluded.interrupted,
             durations = (SELECT coalesce(array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY n),
                                          '{{}}')
                          FROM unnest(s.durations, excluded.durations)
                               WITH ORDINALITY AS x(a, b, n))",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
    )
}

/// Counts interrupted deliveries (one endpoint id each) at `at`: after a crash or a lapsed lease.
pub(super) fn interrupted_delta(endpoints: &[String], at: i64) -> StatsDelta {
    let mut d = StatsDelta::default();
    for ep in endpoints {
        d.add(ep, at, crate::domain::DeliveryStatus::Interrupted, None);
    }
    d
}

/// Adds `delta` to this node's rows in its own statement.
pub(super) fn add(
    c: &mut impl postgres::GenericClient,
    node: &str,
    delta: &StatsDelta,
) -> Result<()> {
    if delta.is_empty() {
        return Ok(());
    }
    let cols = Columns::of(delta);
    c.execute(
        &upsert_sql(1, 2),
        &[
            &node,
            &cols.scopes,
            &cols.minutes,
            &cols.succeeded,
            &cols.failed,
            &cols.interrupted,
            &cols.durations,
        ],
    )?;
    Ok(())
}

impl Stats for PgStore {
    fn minute_counters(&self, scope: Counted<'_>, since: i64, until: i64) -> Result<Minutes> {
        let scope = scope.key();
        let mut c = self.conn()?;
        let rows = c.query(
            "SELECT minute, succeeded, failed, interrupted, durations FROM delivery_stats
             WHERE scope = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
            &[&scope, &since, &until],
        )?;
        let mut out: Vec<(i64, Counters)> = Vec::new();
        for row in rows {
            let minute: i64 = row.get(0);
            let n = Counters {
                succeeded: row.get::<_, i64>(1) as u64,
                failed: row.get::<_, i64>(2) as u64,
                interrupted: row.get::<_, i64>(3) as u64,
                durations: row
                    .get::<_, Vec<i64>>(4)
                    .into_iter()
                    .map(|v| v.max(0) as u64)
                    .collect(),
            };
            match out.last_mut() {
                Some((m, c)) if *m == minute => c.merge(&n),
                _ => out.push((minute, n)),
            }
        }
        Ok(out)
    }
}
