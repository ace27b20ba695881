//! Delivery statistics: per-minute counters of outcomes and a duration histogram, what a
//! commit group adds to them, and the percentiles read back from them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::DeliveryStatus;

/// Statistics are kept this long (the endpoint page's longest chart is 7 days), on both
/// engines.
pub const STATS_KEPT_MS: i64 = 8 * 24 * 3600 * 1000;

/// Upper bounds (ms, inclusive) of the duration histogram's buckets; the last is open.
pub const BOUNDS_MS: [u64; 15] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
];
/// Buckets: one per bound plus the open one above the last.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;

/// The scope every delivery counts in, whoever it belongs to.
pub const ALL: &str = "all";

/// The stats scope of one endpoint.
/// An endpoint's health at a glance, from its counters and its latest deliveries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// Of the deliveries that ended in the last 24 hours, the share that succeeded.
    pub success_24h: Option<f64>,
    /// Under half succeeded in the last hour (with at least 5), or its last 5 all failed.
    pub failing: bool,
    /// Failed or interrupted, and ended, in the last hour.
    pub failed_hour: u64,
    pub total_hour: u64,
}

/// Deliveries an hour needs before its share can call an endpoint failing.
pub const FAILING_MIN: u64 = 5;

impl Health {
    /// `day` and `hour`: the endpoint's counters over 24 h and 1 h; `latest`: its latest
    /// deliveries, newest first (ones not ended yet are skipped).
    pub fn of(day: &Counters, hour: &Counters, latest: &[DeliveryStatus]) -> Self {
        let total_day = day.succeeded + day.failed + day.interrupted;
        let total_hour = hour.succeeded + hour.failed + hour.interrupted;
        let failed_hour = hour.failed + hour.interrupted;
        let ended: Vec<&DeliveryStatus> = latest
            .iter()
            .filter(|s| !matches!(s, DeliveryStatus::Pending | DeliveryStatus::Sending))
            .take(FAILING_MIN as usize)
            .collect();
        let last_all_failed = ended.len() == FAILING_MIN as usize
            && ended.iter().all(|s| **s != DeliveryStatus::Succeeded);
        let mostly_failed = total_hour >= FAILING_MIN && hour.succeeded * 2 < total_hour;
        Self {
            success_24h: (total_day > 0).then(|| day.succeeded as f64 / total_day as f64),
            failing: last_all_failed || mostly_failed,
            failed_hour,
            total_hour,
        }
    }

    /// "97%", or "—" with nothing in 24 hours.
    pub fn success_label(&self) -> String {
        self.success_24h.map_or_else(
            || "—".to_owned(),
            |r| format!("{:.0}%", (r * 100.0).floor()),
        )
    }
}

pub fn endpoint_scope(endpoint_id: &str) -> String {
    format!("ep:{endpoint_id}")
}

/// Whose deliveries a row of per-minute counters counts: every delivery, or one endpoint's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted<'a> {
    All,
    Endpoint(&'a str),
}

impl Counted<'_> {
    /// The scope as the stores key their rows.
    pub fn key(self) -> String {
        match self {
            Counted::All => ALL.to_owned(),
            Counted::Endpoint(id) => endpoint_scope(id),
        }
    }
}

/// The minute (ms since the epoch, floored) a time falls in.
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// Outcomes and durations of the deliveries that finished in one minute (or, merged, in a
/// longer bucket).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub succeeded: u64,
    pub failed: u64,
    pub interrupted: u64,
    /// Deliveries whose POST took at most `BOUNDS_MS[i]` (and more than the bound before).
    pub durations: Vec<u64>,
}

impl Counters {
    /// Counts one finished delivery. Only sent ones (succeeded or failed) have a duration.
    pub fn add(&mut self, status: DeliveryStatus, duration_ms: Option<u64>) {
        match status {
            DeliveryStatus::Succeeded => self.succeeded += 1,
            DeliveryStatus::Failed => self.failed += 1,
            DeliveryStatus::Interrupted => self.interrupted += 1,
            DeliveryStatus::Pending | DeliveryStatus::Sending => return,
        }
        if let Some(ms) = duration_ms {
            let i = BOUNDS_MS.partition_point(|&b| b < ms);
            if self.durations.len() < BUCKETS {
                self.durations.resize(BUCKETS, 0);
            }
            self.durations[i] += 1;
        }
    }

    pub fn merge(&mut self, other: &Counters) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.interrupted += other.interrupted;
        if self.durations.len() < other.durations.len() {
            self.durations.resize(other.durations.len(), 0);
        }
        for (a, b) in self.durations.iter_mut().zip(&other.durations) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.succeeded + self.failed + self.interrupted
    }

    /// The duration below which `q` (0..=1) of the timed deliveries fell, interpolated
    /// within its histogram bucket; `None` without timed deliveries.
    pub fn percentile_ms(&self, q: f64) -> Option<u64> {
        let n: u64 = self.durations.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = (q * n as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for (i, &c) in self.durations.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let lo = if i == 0 { 0 } else { BOUNDS_MS[i - 1] };
                let Some(&hi) = BOUNDS_MS.get(i) else {
                    return Some(lo);
                };
                let within = (rank - seen as f64) / c as f64;
                return Some(lo + ((hi - lo) as f64 * within).round() as u64);
            }
            seen += c;
        }
        None
    }
}

/// What one commit group adds to the counters: (scope, minute) → counters. Written once per
/// group, so a busy minute costs one row update per scope per group, not one per delivery.
#[derive(Debug, Default)]
pub struct StatsDelta {
    pub rows: HashMap<(String, i64), Counters>,
}

impl StatsDelta {
    /// Counts a finished delivery of `endpoint_id` in its endpoint's scope and in `ALL`.
    pub fn add(
        &mut self,
        endpoint_id: &str,
        finished_at: i64,
        status: DeliveryStatus,
        duration_ms: Option<u64>,
    ) {
        let minute = minute_of(finished_at);
        for scope in [endpoint_scope(endpoint_id), ALL.to_owned()] {
            self.rows
                .entry((scope, minute))
                .or_default()
                .add(status, duration_ms);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Bucket widths the stats route and the charts offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "minute" => Some(Bucket::Minute),
            "hour" => Some(Bucket::Hour),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Bucket::Minute => MINUTE_MS,
            Bucket::Hour => HOUR_MS,
        }
    }

    /// Where the bucket holding `at` ends: a chart up to now ends here, the current bucket
    /// included.
    pub fn end_of(self, at: i64) -> i64 {
        (at.div_euclid(self.ms()) + 1) * self.ms()
    }
}

/// The most buckets one answer (or chart) holds: a day by the minute.
pub const MAX_BUCKETS: i64 = 1_440;

/// The bucket starts covering [since, until): the first is `since` floored to the bucket.
pub fn bucket_starts(since: i64, until: i64, bucket: Bucket) -> Vec<i64> {
    let w = bucket.ms();
    let first = since.div_euclid(w) * w;
    (0..)
        .map(|i| first + i * w)
        .take_while(|&start| start < until)
        .collect()
}

/// Sums per-minute counters (any order, any number of sources) into the buckets of
/// `bucket_starts`; minutes outside them are left out. Empty buckets stay zero.
pub fn into_buckets(
    minutes: impl IntoIterator<Item = (i64, Counters)>,
    since: i64,
    until: i64,
    bucket: Bucket,
) -> Vec<(i64, Counters)> {
    let starts = bucket_starts(since, until, bucket);
    let mut out: Vec<(i64, Counters)> = starts.iter().map(|&s| (s, Counters::default())).collect();
    let Some(&first) = starts.first() else {
        return out;
    };
    for (minute, c) in minutes {
        let i = (minute - first).div_euclid(bucket.ms());
        if let Some((_, slot)) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            slot.merge(&c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_fall_in_the_right_bucket() {
        let mut c = Counters::default();
        for _ in 0..90 {
            c.add(DeliveryStatus::Succeeded, Some(40)); // 20 < 40 ≤ 50
        }
        for _ in 0..10 {
            c.add(DeliveryStatus::Failed, Some(400)); // 200 < 400 ≤ 500
        }
        c.add(DeliveryStatus::Interrupted, None);
        assert_eq!((c.succeeded, c.failed, c.interrupted), (90, 10, 1));
        let p50 = c.percentile_ms(0.5).unwrap();
        assert!((20..=50).contains(&p50), "{p50}");
        let p95 = c.percentile_ms(0.95).unwrap();
        assert!((200..=500).contains(&p95), "{p95}");
        assert_eq!(Counters::default().percentile_ms(0.5), None);
    }

    #[test]
    fn merging_adds_everything() {
        let mut a = Counters::default();
        a.add(DeliveryStatus::Succeeded, Some(1));
        let mut b = Counters::default();
        b.add(DeliveryStatus::Succeeded, Some(100_000));
        b.add(DeliveryStatus::Failed, Some(3));
        a.merge(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.durations.iter().sum::<u64>(), 3);
        assert_eq!(a.durations[BUCKETS - 1], 1);
        assert_eq!(a.percentile_ms(1.0), Some(60_000));
    }

    #[test]
    fn minutes_fall_into_aligned_buckets() {
        let h = 3_600_000;
        let starts = bucket_starts(h + 5, 3 * h + 1, Bucket::Hour);
        assert_eq!(starts, vec![h, 2 * h, 3 * h]);
        assert_eq!(Bucket::Hour.end_of(h + 5), 2 * h);
        assert_eq!(Bucket::Hour.end_of(h), 2 * h);
        let mut one = Counters::default();
        one.add(DeliveryStatus::Succeeded, Some(3));
        let minutes = vec![
            (h, one.clone()),
            (h + 59 * MINUTE_MS, one.clone()),
            (3 * h, one.clone()),
            (9 * h, one.clone()), // outside
        ];
        let b = into_buckets(minutes, h + 5, 3 * h + 1, Bucket::Hour);
        let totals: Vec<u64> = b.iter().map(|(_, c)| c.total()).collect();
        assert_eq!(totals, vec![2, 0, 1]);
        assert_eq!(
            bucket_starts(MINUTE_MS, MINUTE_MS, Bucket::Minute),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn minutes_floor() {
        assert_eq!(minute_of(60_000 * 5 + 59_999), 300_000);
        assert_eq!(minute_of(-1), -60_000);
    }

    #[test]
    fn an_endpoint_is_failing_by_its_last_hour_or_its_last_five() {
        use DeliveryStatus::*;
        let c = |ok, bad| Counters {
            succeeded: ok,
            failed: bad,
            ..Default::default()
        };
        // Under half of at least five in the hour.
        assert!(Health::of(&c(10, 10), &c(2, 3), &[]).failing);
        assert!(!Health::of(&c(10, 10), &c(3, 2), &[]).failing);
        assert!(
            !Health::of(&c(0, 4), &c(0, 4), &[]).failing,
            "too few to judge"
        );
        // The last five ended deliveries all failed (pending ones skipped).
        let five = [Pending, Failed, Failed, Interrupted, Failed, Failed];
        assert!(Health::of(&c(100, 5), &c(0, 0), &five).failing);
        let mixed = [Failed, Failed, Succeeded, Failed, Failed];
        assert!(!Health::of(&c(100, 5), &c(0, 0), &mixed).failing);
        let h = Health::of(&c(97, 3), &c(0, 0), &[]);
        assert_eq!(h.success_label(), "97%");
        assert_eq!(Health::of(&c(0, 0), &c(0, 0), &[]).success_label(), "—");
    }
}
