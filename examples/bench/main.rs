//! The benchmark: starts the real `webhooks` binary (its defaults) on a temporary data file
//! and local receivers — instant ones, ones that hold each answer 50 or 200 ms (±10%) without
//! holding a thread, one over TLS, small ones that really block — and measures ingest, end-to-end delivery, latency,
//! POSTs in flight against Little's law, fan-out, a large backlog, the store's own ceiling
//! and reopening after kill -9: each against a baseline measured in the same run.
//! `BENCH_SERVER=path` measures another build of the server with the same benchmark.
//!
//! ```sh
//! cargo run --release --example bench            # the full run (several minutes)
//! cargo run --release --example bench -- --quick # small counts: checks that it all runs
//! cargo run --release --example bench -- --postgres            # on a throwaway PostgreSQL,
//!                                                  # with nodes capped at 0.3 CPU (cgroups)
//! cargo run --release --example bench -- --database postgres://… # on a cluster you give
//! ```
//! Loopback only; every loop is bounded in count and time.

mod api;
mod capped;
mod measure;
mod phases;
#[path = "../../tests/it/support/pki.rs"]
mod pki;
mod postgres;
#[path = "../../tests/it/support/receiver.rs"]
mod receiver;
mod report;
mod server;
mod small;
#[path = "../../tests/it/support/small.rs"]
mod small_receiver;

use std::time::Duration;

use api::Api;
use measure::baseline;
use pki::Pki;
use receiver::Receiver;
use report::Report;
use server::{Server, server_binary};

/// Counts of one run.
pub struct Sizes {
    pub baseline: Duration,
    pub ingest: usize,
    pub batch: usize,
    pub e2e: usize,
    pub single: usize,
    pub latency_for: Duration,
    /// Events per run against receivers with latency.
    pub slow: usize,
    pub fanout: usize,
    pub backlog: usize,
    pub during_backlog: usize,
    pub ceiling_rows: usize,
}

const FULL: Sizes = Sizes {
    baseline: Duration::from_secs(5),
    ingest: 40_000,
    batch: 200_000,
    e2e: 100_000,
    single: 20_000,
    latency_for: Duration::from_secs(5),
    slow: 10_000,
    fanout: 1000,
    backlog: 1_000_000,
    during_backlog: 20_000,
    ceiling_rows: 500_000,
};

const QUICK: Sizes = Sizes {
    baseline: Duration::from_millis(500),
    ingest: 2_000,
    batch: 5_000,
    e2e: 2_000,
    single: 1_000,
    latency_for: Duration::from_millis(500),
    slow: 1_000,
    fanout: 50,
    backlog: 5_000,
    during_backlog: 1_000,
    ceiling_rows: 50_000,
};

/// The server's default pool (`--workers`): the Little's-law bound of POSTs in flight.
pub const POOL: usize = 512;
/// The baseline's client threads.
pub const WORKERS: usize = 16;
pub const BODY: &str = r#"{"event":"transactions.fetched","data":{"userId":"usr_7f3a9c","externalUserId":"customer-42","consentId":"cns_51d0e2","addedTransactionsCount":"17"}}"#;
pub const DATA: &str = r#"{"userId":"usr_7f3a9c","externalUserId":"customer-42","consentId":"cns_51d0e2","addedTransactionsCount":"17"}"#;

/// What every phase uses.
pub struct Bench {
    pub sizes: Sizes,
    pub quick: bool,
    pub report: Report,
    pub receiver: Receiver,
    pub tls_receiver: Receiver,
    pub api: Api,
    /// Deliveries/s of the sender alone (1).
    pub base_rate: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick { QUICK } else { FULL };
    server_binary(); // built (or found up to date) before anything is timed
    let pki = Pki::new();
    println!(
        "webhooks benchmark ({}), {} cores",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let receiver = Receiver::counting();
    let mut report = Report::default();
    // 1. The sender's own ceiling: the same client code, threads and body, no server.
    let base_rate = baseline(&receiver, sizes.baseline);
    report.row(
        "1 baseline: sender → receiver, no server",
        format!("{base_rate:.0} req/s"),
        String::new(),
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--database")
        .and_then(|i| args.get(i + 1).cloned());
    let throwaway = args
        .iter()
        .any(|a| a == "--postgres")
        .then(postgres::Cluster::start);
    if let Some(cluster) = given.or_else(|| throwaway.as_ref().map(|c| c.url.clone())) {
        let mut b = Bench {
            sizes,
            quick,
            report,
            tls_receiver: Receiver::counting_tls(pki.server_config()),
            receiver,
            api: Api::new("http://127.0.0.1:1", ""),
            base_rate,
        };
        let local = throwaway.as_ref().map(|c| c.dir.as_path());
        postgres::run(&mut b, &cluster, dir.path(), local);
        b.report.print();
        return;
    }
    let data = dir.path().join("bench.redb");
    let ca = pki.ca.display().to_string();
    let mut flags = vec!["--ca-file".to_owned(), ca];
    // One customer with 1000 endpoints for the fan-out. Builds before the limit existed
    // refuse the flag: BENCH_NO_ENDPOINT_LIMIT=1 leaves it out for them.
    if std::env::var_os("BENCH_NO_ENDPOINT_LIMIT").is_none() {
        flags.extend(["--max-endpoints-per-customer".to_owned(), "2000".to_owned()]);
    }
    let mut server = Server::start(&data, &flags);
    let idle_rss = server.rss_kb();
    let api = Api::new(&server.base, &server.admin);
    let mut b = Bench {
        sizes,
        quick,
        report,
        tls_receiver: Receiver::counting_tls(pki.server_config()),
        receiver,
        api,
        base_rate,
    };
    // `--only 3,10` runs those sections alone (for a quick before/after of one change).
    let only: Option<Vec<u32>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        });
    let wants = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));
    if wants(2) {
        phases::ingest(&mut b);
    }
    if wants(3) {
        phases::instant_receivers(&mut b, &server);
    }
    if wants(8) {
        phases::receivers_with_latency(&mut b);
    }
    if wants(9) {
        phases::over_tls(&mut b);
    }
    if wants(4) {
        phases::fan_out(&mut b);
    }
    if wants(10) {
        small::small_receivers(&mut b);
    }
    if wants(11) {
        small::receivers_that_restart(&mut b);
    }
    if wants(5) {
        phases::backlog(&mut b, &server, idle_rss);
    }
    if wants(6) || wants(7) {
        phases::reopen_and_ceiling(&mut b, &mut server, &data, dir.path());
    }
    b.report.print();
}
