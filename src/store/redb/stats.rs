//! Delivery statistics as the writer keeps them: per-minute rows by scope, read by range.

use super::RedbStore;
use super::records::decode_bin;
use super::tables::STATS;
use crate::domain::stats::Counted;
use crate::store::{Minutes, Result, Stats};

impl Stats for RedbStore {
    fn minute_counters(&self, scope: Counted<'_>, since: i64, until: i64) -> Result<Minutes> {
        let scope = scope.key();
        let scope = scope.as_str();
        self.read(|tx| {
            let table = tx.open_table(STATS)?;
            let mut v = Vec::new();
            for row in table.range((scope, since)..(scope, until))? {
                let (k, raw) = row?;
                v.push((k.value().1, decode_bin(raw.value())?));
            }
            Ok(v)
        })
    }
}
