//! Charts drawn on the server as inline SVG (askama, `_chart.html`): deliveries per bucket
//! stacked by outcome, with p50/p95 duration lines. No JavaScript and no chart crate: the
//! geometry is a few lines of arithmetic here, the markup is escaped by askama and styled
//! by `style.css`, and a page stays a few kilobytes.

use crate::domain::stats::{Bucket, Counters};
use crate::domain::time::rfc3339;

/// The drawing area, in SVG user units (the SVG scales to its box's width).
const W: f64 = 720.0;
const H: f64 = 180.0;
/// Room for the axis labels under and left of the bars.
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 18.0;
const TOP: f64 = 8.0;

/// One bucket with deliveries: a stack of rectangles, bottom up.
pub struct Bar {
    pub start: String,
    pub succeeded: u64,
    pub failed: u64,
    pub interrupted: u64,
    pub segs: Vec<Seg>,
    /// What a pointer over the bar shows.
    pub tip: String,
}

pub struct Seg {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    /// `ok`, `bad` or `lost`.
    pub class: &'static str,
}

/// Where a bucket's p50 and p95 are drawn (marked, so a lone bucket still shows).
pub struct Point {
    pub x: String,
    pub y50: String,
    pub y95: String,
}

pub struct Label {
    pub x: String,
    pub text: String,
}

pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    pub p50: String,
    pub p95: String,
    pub points: Vec<Point>,
    pub x_labels: Vec<Label>,
    pub y_max: u64,
    pub ms_max: u64,
    pub plot_bottom: String,
    /// Where the bars start, and where the count ticks end (left of them).
    pub plot_left: String,
    pub tick_x: String,
    pub summary: String,
    pub total: u64,
    pub failed: u64,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Accessible description of the whole chart.
    pub label: String,
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

impl Chart {
    /// A chart of `buckets` (oldest first, empty ones included) of width `bucket`.
    pub fn new(what: &str, buckets: &[(i64, Counters)], bucket: Bucket) -> Chart {
        let n = buckets.len().max(1) as f64;
        let slot = (W - LEFT) / n;
        let gap = if slot > 4.0 { slot * 0.15 } else { 0.0 };
        let plot_h = H - BOTTOM - TOP;
        let y_max = buckets
            .iter()
            .map(|(_, c)| c.total())
            .max()
            .unwrap_or(0)
            .max(1);
        let ms_max = buckets
            .iter()
            .filter_map(|(_, c)| c.percentile_ms(0.95))
            .max()
            .unwrap_or(0)
            .max(1);
        let mut all = Counters::default();
        let mut bars = Vec::new();
        let (mut p50, mut p95, mut points) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (start, c)) in buckets.iter().enumerate() {
            all.merge(c);
            let x = LEFT + i as f64 * slot + gap / 2.0;
            let w = (slot - gap).max(0.5);
            let mid = x + w / 2.0;
            if let (Some(a), Some(b)) = (c.percentile_ms(0.5), c.percentile_ms(0.95)) {
                let y = |ms: u64| TOP + plot_h * (1.0 - ms as f64 / ms_max as f64);
                p50.push(format!("{},{}", f(mid), f(y(a))));
                p95.push(format!("{},{}", f(mid), f(y(b))));
                points.push(Point {
                    x: f(mid),
                    y50: f(y(a)),
                    y95: f(y(b)),
                });
            }
            if c.total() == 0 {
                continue;
            }
            let mut segs = Vec::new();
            let mut base = TOP + plot_h;
            for (count, class) in [
                (c.succeeded, "ok"),
                (c.failed, "bad"),
                (c.interrupted, "lost"),
            ] {
                if count == 0 {
                    continue;
                }
                let h = plot_h * count as f64 / y_max as f64;
                base -= h;
                segs.push(Seg {
                    x: f(x),
                    y: f(base),
                    w: f(w),
                    h: f(h.max(0.5)),
                    class,
                });
            }
            let time = rfc3339(*start);
            let timing = match (c.percentile_ms(0.5), c.percentile_ms(0.95)) {
                (Some(a), Some(b)) => format!(", p50 {a} ms, p95 {b} ms"),
                _ => String::new(),
            };
            bars.push(Bar {
                tip: format!(
                    "{} UTC: {} succeeded, {} failed, {} interrupted{timing}",
                    &time[..16].replace('T', " "),
                    c.succeeded,
                    c.failed,
                    c.interrupted
                ),
                start: time,
                succeeded: c.succeeded,
                failed: c.failed,
                interrupted: c.interrupted,
                segs,
            });
        }
        // A label at the first bucket and at about every sixth of the way.
        let every = (buckets.len() / 6).max(1);
        let x_labels = buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, (start, _))| {
                let t = rfc3339(*start);
                let text = match bucket {
                    Bucket::Minute => t[11..16].to_owned(),
                    Bucket::Hour if buckets.len() > 48 => format!("{} {}", &t[5..10], &t[11..13]),
                    Bucket::Hour => format!("{}:00", &t[11..13]),
                };
                Label {
                    x: f(LEFT + i as f64 * slot),
                    text,
                }
            })
            .collect();
        let total = all.total();
        let rate = if total == 0 {
            String::new()
        } else {
            format!(
                ", {:.1}% failed",
                100.0 * (all.failed + all.interrupted) as f64 / total as f64
            )
        };
        Chart {
            width: W,
            height: H,
            summary: format!("{total} deliveries{rate}"),
            label: format!(
                "{what}: {total} deliveries in {} buckets of one {}",
                buckets.len(),
                bucket.as_str()
            ),
            total,
            failed: all.failed + all.interrupted,
            p50_ms: all.percentile_ms(0.5),
            p95_ms: all.percentile_ms(0.95),
            bars,
            p50: p50.join(" "),
            p95: p95.join(" "),
            points,
            x_labels,
            y_max,
            ms_max,
            plot_bottom: f(TOP + plot_h),
            plot_left: f(LEFT),
            tick_x: f(LEFT - 4.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeliveryStatus;

    #[test]
    fn one_bar_per_bucket_with_deliveries_stacked_by_outcome() {
        let mut busy = Counters::default();
        for _ in 0..3 {
            busy.add(DeliveryStatus::Succeeded, Some(40));
        }
        busy.add(DeliveryStatus::Failed, Some(400));
        let buckets = vec![
            (0, Counters::default()),
            (3_600_000, busy),
            (7_200_000, Counters::default()),
        ];
        let c = Chart::new("test", &buckets, Bucket::Hour);
        assert_eq!(c.bars.len(), 1);
        assert_eq!(c.bars[0].segs.len(), 2);
        assert_eq!((c.bars[0].succeeded, c.bars[0].failed), (3, 1));
        assert_eq!(c.total, 4);
        assert!(c.summary.contains("25.0% failed"), "{}", c.summary);
        assert!(!c.p95.is_empty());
        // The whole stack spans the plot's height at the tallest bucket.
        let h: f64 = c.bars[0]
            .segs
            .iter()
            .map(|s| s.h.parse::<f64>().unwrap())
            .sum();
        assert!((h - (H - BOTTOM - TOP)).abs() < 0.5, "{h}");
    }
}
