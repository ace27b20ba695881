//! Charts drawn on the server (askama, `_chart.html`): deliveries per bucket stacked by
//! outcome, and under them the p50/p95 duration on an axis of its own. No JavaScript and no
//! chart crate. The plots are SVG stretched to their box (`preserveAspectRatio="none"`), so
//! they fill any width; every label is HTML text placed beside them, so it keeps its size
//! (at least 11 px) on a phone as on a desk, where text inside a scaled SVG would shrink
//! with it.

use crate::domain::stats::{Bucket, Counters};
use crate::domain::time::rfc3339;

/// The plots' coordinate system, in SVG user units: x across all buckets, y down the plot.
const W: f64 = 1000.0;
const H: f64 = 100.0;

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

/// A label on an axis: where (percent of the plot) and what; `alt` labels give way on a
/// narrow screen.
pub struct Tick {
    pub pct: String,
    /// The gridline's y, in plot units (y axes only).
    pub y: String,
    pub text: String,
    pub alt: bool,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    /// Count axis: 3 to 5 labels from 0 up, with gridlines.
    pub y_ticks: Vec<Tick>,
    pub x_labels: Vec<Tick>,
    /// Duration axis (ms), and the p50/p95 lines as runs of buckets with deliveries: a
    /// bucket without any is a gap, not a drop to 0.
    pub ms_ticks: Vec<Tick>,
    pub p50: Vec<String>,
    pub p95: Vec<String>,
    pub summary: String,
    pub total: u64,
    pub failed: u64,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Accessible description of the whole chart.
    pub label: String,
    /// Of the duration plot.
    pub ms_label: String,
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// A round top for an axis whose data reach `max`, and its step: 4 steps or fewer of 1, 2 or
/// 5 × 10ⁿ (so 3 to 5 labels counting 0).
fn nice(max: u64) -> (u64, u64) {
    let max = max.max(2);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let s = step * m;
            if s * 4 >= max {
                return (s * max.div_ceil(s), s);
            }
        }
        step *= 10;
    }
}

/// The labels and gridlines of a y axis from 0 to `top` by `step`.
fn y_axis(top: u64, step: u64, unit: &str) -> Vec<Tick> {
    (0..=top / step)
        .map(|i| {
            let v = i * step;
            let frac = v as f64 / top as f64;
            Tick {
                pct: f(100.0 * frac),
                y: f(H * (1.0 - frac)),
                text: format!("{v}{unit}"),
                alt: false,
            }
        })
        .collect()
}

impl Chart {
    /// A chart of `buckets` (oldest first, empty ones included) of width `bucket`.
    pub fn new(what: &str, buckets: &[(i64, Counters)], bucket: Bucket) -> Chart {
        let n = buckets.len().max(1) as f64;
        let slot = W / n;
        let gap = slot * 0.15;
        let (top, step) = nice(buckets.iter().map(|(_, c)| c.total()).max().unwrap_or(0));
        let ms_max = buckets
            .iter()
            .filter_map(|(_, c)| c.percentile_ms(0.95))
            .max();
        let (ms_top, ms_step) = nice(ms_max.unwrap_or(0));
        let mut all = Counters::default();
        let mut bars = Vec::new();
        let (mut p50, mut p95) = (Vec::new(), Vec::new());
        let (mut run50, mut run95) = (Vec::new(), Vec::new());
        let y_ms = |ms: u64| H * (1.0 - ms as f64 / ms_top as f64);
        for (i, (start, c)) in buckets.iter().enumerate() {
            all.merge(c);
            let x = i as f64 * slot + gap / 2.0;
            let w = (slot - gap).max(0.5);
            match (c.percentile_ms(0.5), c.percentile_ms(0.95)) {
                // Across the bucket's width, so that a lone bucket still shows a line.
                (Some(a), Some(b)) => {
                    for (run, ms) in [(&mut run50, a), (&mut run95, b)] {
                        run.push(format!("{},{}", f(x), f(y_ms(ms))));
                        run.push(format!("{},{}", f(x + w), f(y_ms(ms))));
                    }
                }
                _ => {
                    for (runs, run) in [(&mut p50, &mut run50), (&mut p95, &mut run95)] {
                        if !run.is_empty() {
                            runs.push(std::mem::take(run).join(" "));
                        }
                    }
                }
            }
            if c.total() == 0 {
                continue;
            }
            let mut segs = Vec::new();
            let mut base = H;
            for (count, class) in [
                (c.succeeded, "ok"),
                (c.failed, "bad"),
                (c.interrupted, "lost"),
            ] {
                if count == 0 {
                    continue;
                }
                let h = H * count as f64 / top as f64;
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
        for (runs, run) in [(&mut p50, run50), (&mut p95, run95)] {
            if !run.is_empty() {
                runs.push(run.join(" "));
            }
        }
        // Six labels at most, every other one giving way on a narrow screen; none so near
        // the right edge that it would stick out.
        let every = buckets.len().div_ceil(6).max(1);
        let x_labels = buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, (start, _))| (i, rfc3339(*start)))
            .filter(|(i, _)| (*i as f64 + 0.5) / n < 0.93)
            .enumerate()
            .map(|(k, (i, t))| {
                let text = match bucket {
                    Bucket::Minute => t[11..16].to_owned(),
                    Bucket::Hour if buckets.len() > 48 => format!("{} {}h", &t[5..10], &t[11..13]),
                    Bucket::Hour => format!("{}:00", &t[11..13]),
                };
                Tick {
                    pct: f(100.0 * (i as f64 + 0.5) / n),
                    y: String::new(),
                    text,
                    alt: k % 2 == 1,
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
            summary: format!("{total} deliveries{rate}"),
            label: format!(
                "{what}: {total} deliveries in {} buckets of one {}",
                buckets.len(),
                bucket.as_str()
            ),
            ms_label: match (all.percentile_ms(0.5), all.percentile_ms(0.95)) {
                (Some(a), Some(b)) => format!(
                    "Duration per {}: p50 {a} ms, p95 {b} ms over the whole range",
                    bucket.as_str()
                ),
                _ => "No durations in this range".into(),
            },
            total,
            failed: all.failed + all.interrupted,
            p50_ms: all.percentile_ms(0.5),
            p95_ms: all.percentile_ms(0.95),
            bars,
            y_ticks: y_axis(top, step, ""),
            x_labels,
            ms_ticks: if ms_max.is_some() {
                y_axis(ms_top, ms_step, " ms")
            } else {
                Vec::new()
            },
            p50,
            p95,
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
        // The count axis tops at a round 4 (0 1 2 3 4): the stack of 4 fills the plot.
        let texts: Vec<&str> = c.y_ticks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["0", "1", "2", "3", "4"]);
        let h: f64 = c.bars[0]
            .segs
            .iter()
            .map(|s| s.h.parse::<f64>().unwrap())
            .sum();
        assert!((h - H).abs() < 0.5, "{h}");
        // One run of the duration lines: the empty buckets around it are gaps.
        assert_eq!((c.p50.len(), c.p95.len()), (1, 1));
        assert!(c.ms_ticks.last().unwrap().text.ends_with(" ms"));
    }

    #[test]
    fn axes_have_three_to_five_round_labels() {
        for max in [0, 1, 3, 7, 9, 10, 11, 23, 99, 101, 480, 999, 1001, 12_345] {
            let (top, step) = nice(max);
            let labels = top / step + 1;
            assert!((3..=5).contains(&labels), "{max}: {top}/{step}");
            assert!(top >= max, "{max}: {top}");
            let lead = step / 10u64.pow(step.ilog10());
            assert!([1, 2, 5].contains(&lead), "{max}: step {step}");
        }
    }

    #[test]
    fn a_bucket_without_deliveries_breaks_the_duration_line() {
        let mut one = Counters::default();
        one.add(DeliveryStatus::Succeeded, Some(10));
        let buckets = vec![
            (0, one.clone()),
            (60_000, Counters::default()),
            (120_000, one),
        ];
        let c = Chart::new("gap", &buckets, Bucket::Minute);
        assert_eq!(
            c.p50.len(),
            2,
            "two runs, not a line through 0: {:?}",
            c.p50
        );
    }
}
