//! The benchmark: starts the real `webhooks` binary on a temporary data file, a fast local
//! receiver, and measures ingest, end-to-end delivery, fan-out, a large backlog, the store's
//! own ceiling and reopening after kill -9 — each against a baseline measured in the same run.
//!
//! ```sh
//! cargo run --release --example bench            # the full run (several minutes)
//! cargo run --release --example bench -- --quick # small counts: checks that it all runs
//! ```
//! Loopback only; every loop is bounded in count and time.

mod api;
mod measure;
#[path = "../../tests/it/support/receiver.rs"]
mod receiver;
mod report;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::Api;
use measure::*;
use receiver::Receiver;
use report::{Report, ms};
use server::{Server, server_binary};

/// Counts of one run.
struct Sizes {
    baseline: Duration,
    ingest: usize,
    batch: usize,
    e2e: usize,
    latency_for: Duration,
    fanout: usize,
    backlog: usize,
    during_backlog: usize,
}

const FULL: Sizes = Sizes {
    baseline: Duration::from_secs(5),
    ingest: 40_000,
    batch: 200_000,
    e2e: 100_000,
    latency_for: Duration::from_secs(5),
    fanout: 1000,
    backlog: 1_000_000,
    during_backlog: 20_000,
};

const QUICK: Sizes = Sizes {
    baseline: Duration::from_millis(500),
    ingest: 2_000,
    batch: 5_000,
    e2e: 2_000,
    latency_for: Duration::from_millis(500),
    fanout: 50,
    backlog: 5_000,
    during_backlog: 1_000,
};

/// Server delivery workers (the default) and so the baseline's client threads.
pub const WORKERS: usize = 16;
pub const BODY: &str = r#"{"event":"transactions.fetched","data":{"userId":"usr_7f3a9c","externalUserId":"customer-42","consentId":"cns_51d0e2","addedTransactionsCount":"17"}}"#;
pub const DATA: &str = r#"{"userId":"usr_7f3a9c","externalUserId":"customer-42","consentId":"cns_51d0e2","addedTransactionsCount":"17"}"#;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick { QUICK } else { FULL };
    server_binary(); // built (or found up to date) before anything is timed
    let mut report = Report::default();
    let receiver = Receiver::counting();
    println!(
        "webhooks benchmark ({}), {} cores",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. The sender's own ceiling: the same client code, threads and body, no server.
    let base_rate = baseline(&receiver, sizes.baseline);
    report.row(
        "1 baseline: sender → receiver, no server",
        format!("{base_rate:.0} req/s"),
        String::new(),
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("bench.redb");
    let mut server = Server::start(&data);
    let idle_rss = server.rss_kb();
    let admin = server.admin.clone();
    let api = Api::new(&server.base, &admin);

    // 2. Ingest: single events from 32 clients, then batches; one (hanging) endpoint each.
    let (hang_customer, _) = api.customer_with_endpoint("ingest", &receiver.url("/hang/ingest"));
    let (single_rate, p50, p99) = ingest_single(&api, &hang_customer, sizes.ingest, 32);
    report.row(
        "2 ingest, single events, 32 clients",
        format!("{single_rate:.0} events/s"),
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)),
    );
    let batch_rate = ingest_batches(&api, std::slice::from_ref(&hang_customer), sizes.batch, 4);
    report.row(
        "2 ingest, batches of 1000, 4 clients",
        format!("{batch_rate:.0} events/s"),
        String::new(),
    );

    // 3. End to end: deliveries received per second over many events (spread over 8 customers
    // with one endpoint each: one endpoint alone may use only a quarter of the workers), then
    // latency at half that load.
    let e2e_customers: Vec<String> = (0..8)
        .map(|i| {
            api.customer_with_endpoint(
                &format!("e2e-{i}"),
                &receiver.url(&format!("/fast/e2e/{i}")),
            )
            .0
        })
        .collect();
    let e2e_rate = end_to_end(&api, &receiver, &e2e_customers, sizes.e2e);
    report.row(
        "3 end to end, deliveries received",
        format!("{e2e_rate:.0} /s"),
        format!("{:.0}% of baseline (1)", 100.0 * e2e_rate / base_rate),
    );
    let (lp50, lp99, paced) = latency_at(
        &api,
        &receiver,
        &e2e_customers,
        e2e_rate / 2.0,
        sizes.latency_for,
    );
    report.row(
        "3 accepted → received, at half that rate",
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(lp50), ms(lp99)),
        format!("{paced:.0} events/s offered"),
    );

    // 4. Fan-out: one event to many endpoints of one customer.
    let fan_customer = api.customer("fanout");
    let fan_key = fan_customer.1.clone();
    for i in 0..sizes.fanout {
        api.endpoint(&fan_key, &receiver.url(&format!("/fast/fan/{i}")));
    }
    let fan_time = fan_out(&api, &receiver, &fan_customer.0, sizes.fanout);
    report.row(
        &format!(
            "4 fan-out to {} endpoints, last received after",
            sizes.fanout
        ),
        format!("{:.0} ms", ms(fan_time)),
        String::new(),
    );

    // 5. Backlog: a hanging receiver with many pending deliveries; a healthy one meanwhile,
    // compared with the same healthy endpoint before the backlog.
    let (healthy_customer, _) =
        api.customer_with_endpoint("healthy", &receiver.url("/fast/healthy"));
    let alone = end_to_end(
        &api,
        &receiver,
        std::slice::from_ref(&healthy_customer),
        sizes.during_backlog,
    );
    let (backlog_customer, _) =
        api.customer_with_endpoint("backlog", &receiver.url("/hang/backlog"));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = server.rss_sampler(peak.clone());
    let backlog_rate = ingest_batches(
        &api,
        std::slice::from_ref(&backlog_customer),
        sizes.backlog,
        4,
    );
    let pending = api.metric("webhooks_queue_depth");
    let during = end_to_end(
        &api,
        &receiver,
        std::slice::from_ref(&healthy_customer),
        sizes.during_backlog,
    );
    sampler.stop();
    report.row(
        "5 idle server RSS",
        format!("{:.1} MB", idle_rss as f64 / 1024.0),
        String::new(),
    );
    report.row(
        &format!("5 peak RSS with {pending} deliveries pending"),
        format!("{:.1} MB", peak.load(Ordering::Relaxed) as f64 / 1024.0),
        format!("backlog ingested at {backlog_rate:.0} events/s"),
    );
    report.row(
        "5 one healthy endpoint during the backlog",
        format!("{during:.0} deliveries/s"),
        format!(
            "{:.0}% of the same endpoint without it",
            100.0 * during / alone
        ),
    );

    // 7. Reopening the now large file: after a clean stop, and after kill -9.
    let size_mb = std::fs::metadata(&data).map_or(0, |m| m.len()) / (1024 * 1024);
    server.stop();
    let clean = Server::time_to_healthy(&data, &mut server);
    server.kill9();
    let killed = Server::time_to_healthy(&data, &mut server);
    server.stop();

    // 6. The store's ceiling: redb alone, rows committed 1000 per transaction.
    let ceiling = store_ceiling(dir.path(), if quick { 50_000 } else { 500_000 });
    let rows_per_event = 7.0; // event, its customer index, delivery and its 4 indexes
    report.row(
        "6 store ceiling, 1000 rows per commit",
        format!("{ceiling:.0} rows/s"),
        String::new(),
    );
    report.row(
        "6 batch ingest vs ceiling / rows per event",
        format!("{:.0}%", 100.0 * batch_rate * rows_per_event / ceiling),
        format!("{rows_per_event} rows per event at one endpoint"),
    );
    report.row(
        &format!("7 reopen a {size_mb} MB data file, after a clean stop"),
        format!("{:.0} ms", ms(clean)),
        String::new(),
    );
    report.row(
        "7 reopen it after kill -9 (repair)",
        format!("{:.0} ms", ms(killed)),
        format!(
            "{:.1}× the clean reopen",
            killed.as_secs_f64() / clean.as_secs_f64().max(1e-9)
        ),
    );
    report.print();
}
