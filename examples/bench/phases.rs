//! The benchmark's phases, in the order they run; each adds its rows to the report.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::measure::*;
use crate::report::ms;
use crate::server::Server;
use crate::{Bench, POOL};

/// Batch ingest rate of phase 2, for the store-ceiling comparison of phase 6.
static BATCH_RATE: AtomicU64 = AtomicU64::new(0);

/// Phase 2: Ingest: single events from 32 clients, then batches; one (hanging) endpoint each.
pub fn ingest(b: &mut Bench) {
    let (hang, hang_key) = b
        .api
        .customer_with_endpoint("ingest", &b.receiver.url("/hang/ingest"));
    let (single_rate, p50, p99) = ingest_single(&b.api, &hang, b.sizes.ingest, 32);
    b.report.row(
        "2 ingest, single events, 32 clients (durable before 202)",
        format!("{single_rate:.0} events/s"),
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)),
    );
    let batch_rate = ingest_batches(&b.api, std::slice::from_ref(&hang), b.sizes.batch, 4);
    BATCH_RATE.store(batch_rate as u64, Ordering::Relaxed);
    b.report.row(
        "2 ingest, batches of 1000, 4 clients",
        format!("{batch_rate:.0} events/s"),
        String::new(),
    );
    // The hanging endpoint would hold its share of the pool through every later phase: drop
    // it with its backlog, and let its POSTs in flight time out.
    b.api.delete_endpoints(&hang_key);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while b.api.metric("webhooks_deliveries_in_flight") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "POSTs did not time out"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `n` customers with one endpoint each at `path_of(i)` on the plain receiver.
fn customers(b: &Bench, name: &str, n: usize, path_of: impl Fn(usize) -> String) -> Vec<String> {
    (0..n)
        .map(|i| {
            b.api
                .customer_with_endpoint(&format!("{name}-{i}"), &b.receiver.url(&path_of(i)))
                .0
        })
        .collect()
}

/// Phase 3: Instant receivers: batches at 8 endpoints and at one; single events over HTTP while
/// delivering, at 8 and at one; latency at half the 8-endpoint rate.
pub fn instant_receivers(b: &mut Bench, server: &Server) {
    let eight = customers(b, "e2e", 8, |i| format!("/fast/e2e/{i}"));
    let one = customers(b, "e2e-one", 1, |_| "/fast/e2e-one".into());
    let rows = |kind: &str| {
        b.api
            .metric(&format!("webhooks_store_rows_written{{kind=\"{kind}\"}}"))
    };
    let (rows0, counters0) = (rows("deliveries"), rows("counters"));
    let cpu0 = server.cpu_secs();
    let rate8 = end_to_end(&b.api, &b.receiver, &eight, b.sizes.e2e);
    let cpu = server.cpu_secs() - cpu0;
    let (rows1, counters1) = (rows("deliveries"), rows("counters"));
    b.report.row(
        "3 end to end, batches, 8 endpoints",
        format!("{rate8:.0} deliveries/s"),
        format!("{:.0}% of baseline (1)", 100.0 * rate8 / b.base_rate),
    );
    b.report.row(
        "3 server CPU per delivery (ingest + send), 8 endpoints",
        format!("{:.0} µs", cpu * 1e6 / b.sizes.e2e as f64),
        "user + system time of the server process".into(),
    );
    if rows1 > rows0 {
        let n = b.sizes.e2e as f64;
        b.report.row(
            "3 rows written per delivery (its event's two included)",
            format!("{:.2}", (rows1 - rows0) as f64 / n),
            format!(
                "+ {:.3} per delivery for queue counters and statistics",
                (counters1 - counters0) as f64 / n
            ),
        );
    }
    let l0 = limits(&b.api);
    let rate1 = end_to_end(&b.api, &b.receiver, &one, b.sizes.e2e / 2);
    b.report.row(
        "3 end to end, batches, 1 endpoint",
        format!("{rate1:.0} deliveries/s"),
        format!(
            "{:.0}% of baseline (1); mean in-flight limit {:.0}",
            100.0 * rate1 / b.base_rate,
            mean_limit(l0, limits(&b.api))
        ),
    );
    for (label, cs) in [("8 endpoints", &eight), ("1 endpoint", &one)] {
        let rate = end_to_end_single(&b.api, &b.receiver, cs, b.sizes.single, 32);
        b.report.row(
            &format!("3 end to end, single events over HTTP, 32 clients, {label}"),
            format!("{rate:.0} deliveries/s"),
            format!("{:.0}% of baseline (1)", 100.0 * rate / b.base_rate),
        );
    }
    let (lp50, lp99, paced) = latency_at(
        &b.api,
        &b.receiver,
        &eight,
        rate8 / 2.0,
        b.sizes.latency_for,
    );
    b.report.row(
        "3 accepted → received, at half the 8-endpoint rate",
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(lp50), ms(lp99)),
        format!("{paced:.0} events/s offered"),
    );
}

/// Phase 8: Receivers that hold each answer 50 or 200 ms ± 10% (without holding a thread), at 100
/// endpoints and at one: deliveries/s, and POSTs in flight (rate × latency, by Little's
/// law, and as the server's gauge showed them) next to the bound min(pool, offered).
pub fn receivers_with_latency(b: &mut Bench) {
    for latency_ms in [50u64, 200] {
        for endpoints in [100usize, 1] {
            let cs = customers(b, &format!("lat{latency_ms}-{endpoints}"), endpoints, |i| {
                format!("/jitter/{latency_ms}/{i}")
            });
            // BENCH_SLOW_EVENTS shortens these runs for an old build that sends few at once.
            let n = std::env::var("BENCH_SLOW_EVENTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(b.sizes.slow);
            let l0 = limits(&b.api);
            let (rate, in_flight) =
                with_in_flight(&b.api, || end_to_end(&b.api, &b.receiver, &cs, n));
            let limit = mean_limit(l0, limits(&b.api));
            let bound = POOL.min(n) as f64;
            b.report.row(
                &format!("8 {latency_ms} ms receivers, {endpoints} endpoint(s), {n} events"),
                format!("{rate:.0} deliveries/s"),
                format!(
                    "POSTs in flight: mean {:.0}, peak {}, of the bound {bound:.0} ({:.0}%); rate × latency {:.0}; mean limit {limit:.0}",
                    in_flight.mean,
                    in_flight.peak,
                    100.0 * in_flight.mean / bound,
                    rate * latency_ms as f64 / 1000.0,
                ),
            );
            if endpoints == 1 {
                // The same endpoint's next burst: it starts from the limit it learnt (kept
                // five minutes), not from the small start.
                let (again, _) = with_in_flight(&b.api, || end_to_end(&b.api, &b.receiver, &cs, n));
                b.report.row(
                    &format!("8 {latency_ms} ms receivers, 1 endpoint, its next {n} events"),
                    format!("{again:.0} deliveries/s"),
                    format!("{:.0}% of its first burst", 100.0 * again / rate),
                );
            }
        }
    }
}

/// Phase 9: HTTPS receivers at 8 endpoints: connections are reused, so TLS costs little.
pub fn over_tls(b: &mut Bench) {
    let cs: Vec<String> = (0..8)
        .map(|i| {
            b.api
                .customer_with_endpoint(
                    &format!("tls-{i}"),
                    &b.tls_receiver.tls_url(&format!("/fast/tls/{i}")),
                )
                .0
        })
        .collect();
    let rate = end_to_end(&b.api, &b.tls_receiver, &cs, b.sizes.e2e / 2);
    b.report.row(
        "9 end to end over TLS, batches, 8 endpoints",
        format!("{rate:.0} deliveries/s"),
        format!("{:.0}% of baseline (1)", 100.0 * rate / b.base_rate),
    );
}

/// Phase 4: Fan-out: one event to many endpoints of one customer (five, one after another).
pub fn fan_out(b: &mut Bench) {
    let (customer, key) = b.api.customer("fanout");
    for i in 0..b.sizes.fanout {
        b.api
            .endpoint(&key, &b.receiver.url(&format!("/fast/fan/{i}")));
    }
    // One event's time is at the mercy of the machine's other work: the median of five.
    let mut took: Vec<_> = (0..5)
        .map(|_| crate::measure::fan_out(&b.api, &b.receiver, &customer, b.sizes.fanout))
        .collect();
    took.sort();
    b.report.row(
        &format!(
            "4 fan-out to {} endpoints, last received after",
            b.sizes.fanout
        ),
        format!("{:.0} ms", ms(took[2])),
        format!(
            "median of 5 events; {:.0}–{:.0} ms",
            ms(took[0]),
            ms(took[4])
        ),
    );
}

/// Phase 5: Backlog: a hanging receiver with many pending deliveries; a healthy endpoint
/// meanwhile, compared with the same endpoint before the backlog; memory.
pub fn backlog(b: &mut Bench, server: &Server, idle_rss: u64) {
    let (healthy, _) = b
        .api
        .customer_with_endpoint("healthy", &b.receiver.url("/fast/healthy"));
    let one = std::slice::from_ref(&healthy);
    let alone = end_to_end(&b.api, &b.receiver, one, b.sizes.during_backlog);
    let (stuck, _) = b
        .api
        .customer_with_endpoint("backlog", &b.receiver.url("/hang/backlog"));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = server.rss_sampler(peak.clone());
    let rate = ingest_batches(&b.api, std::slice::from_ref(&stuck), b.sizes.backlog, 4);
    let pending = b.api.metric("webhooks_queue_depth");
    let during = end_to_end(&b.api, &b.receiver, one, b.sizes.during_backlog);
    sampler.stop();
    b.report.row(
        "5 idle server RSS",
        format!("{:.1} MB", idle_rss as f64 / 1024.0),
        String::new(),
    );
    b.report.row(
        &format!("5 peak RSS with {pending} deliveries pending"),
        format!("{:.1} MB", peak.load(Ordering::Relaxed) as f64 / 1024.0),
        format!("backlog ingested at {rate:.0} events/s"),
    );
    b.report.row(
        "5 one healthy endpoint beside the blackholed backlog",
        format!("{during:.0} deliveries/s"),
        format!(
            "{:.0}% of the same endpoint without it",
            100.0 * during / alone
        ),
    );
}

/// Phase 7: Reopening the now large file, after a clean stop and after kill -9; phase 6: the store's
/// ceiling, redb alone.
pub fn reopen_and_ceiling(b: &mut Bench, server: &mut Server, data: &Path, dir: &Path) {
    let size_mb = std::fs::metadata(data).map_or(0, |m| m.len()) / (1024 * 1024);
    server.stop();
    let clean = Server::time_to_healthy(data, server);
    server.kill9();
    let killed = Server::time_to_healthy(data, server);
    server.stop();
    let ceiling = store_ceiling(dir, b.sizes.ceiling_rows);
    let rows_per_event = 6.0; // event, its customer index, delivery and its 3 indexes
    let batch_rate = BATCH_RATE.load(Ordering::Relaxed) as f64;
    b.report.row(
        "6 store ceiling, 1000 rows per commit",
        format!("{ceiling:.0} rows/s"),
        String::new(),
    );
    b.report.row(
        "6 batch ingest vs ceiling / rows per event",
        format!("{:.0}%", 100.0 * batch_rate * rows_per_event / ceiling),
        format!("{rows_per_event} rows per event at one endpoint"),
    );
    b.report.row(
        &format!("7 reopen a {size_mb} MB data file, after a clean stop"),
        format!("{:.0} ms", ms(clean)),
        String::new(),
    );
    b.report.row(
        "7 reopen it after kill -9 (repair)",
        format!("{:.0} ms", ms(killed)),
        format!(
            "{:.1}× the clean reopen",
            killed.as_secs_f64() / clean.as_secs_f64().max(1e-9)
        ),
    );
    let _ = b.quick;
}
