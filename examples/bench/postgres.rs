//! The benchmark against PostgreSQL (`--database URL` of a cluster the benchmark may create
//! databases in, or `--postgres` for a throwaway one from `scripts/pg-cluster`): one node,
//! then two on one database, against instant receivers — end to end, single-event ingest,
//! accepted → received at half load, what each delivery costs the database (transactions
//! and rows written, from `pg_stat_database`) and each node's part of the work.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::measure::{batched, end_to_end, end_to_end_single, ingest_batches, latency_at};
use crate::report::ms;
use crate::server::Server;
use crate::{Api, Bench};

/// A new, empty database on the cluster of `url`; its URL.
pub fn fresh_database(url: &str, name: &str) -> String {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("the database answers");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .expect("drop an earlier benchmark database");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create the benchmark database");
    let (root, _) = url.split_once('?').map_or((url, ""), |(u, q)| (u, q));
    let (root, _) = root.rsplit_once('/').expect("a URL with a database");
    format!("{root}/{name}")
}

/// (transactions committed, rows inserted + updated + deleted) in the database so far.
pub fn db_counters(url: &str) -> (i64, i64) {
    // Each connection reports its statistics at most once a second while busy, and an idle
    // one only 10 s after its last report (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): read sooner,
    // the count depends on how long the run lasted (1.2 s gave 1.0–4.3 rows per delivery for
    // the same work, 12 s always ~4.8).
    std::thread::sleep(Duration::from_millis(11_000));
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("the database answers");
    let row = c
        .query_one(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
             FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .expect("pg_stat_database");
    (row.get(0), row.get(1))
}

/// Deliveries a node finished, all outcomes together.
fn delivered_by(api: &Api) -> u64 {
    api.get("/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("webhooks_deliveries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub fn node(dir: &Path, url: &str, id: &str, admin: Option<&str>) -> Server {
    let flags = vec![
        "--database".to_owned(),
        url.to_owned(),
        "--node-id".to_owned(),
        id.to_owned(),
    ];
    Server::start_node(&dir.join(id), admin, &flags)
}

pub fn run(b: &mut Bench, cluster: &str, dir: &Path, cluster_dir: Option<&Path>) {
    // One node.
    let url = fresh_database(cluster, "webhooks_bench_one");
    let one = node(dir, &url, "bench-1", None);
    let api = Api::new(&one.base, &one.admin);
    let (eight, keys): (Vec<String>, Vec<String>) = (0..8)
        .map(|i| {
            api.customer_with_endpoint(
                &format!("pg-{i}"),
                &b.receiver.url(&format!("/fast/pg/{i}")),
            )
        })
        .unzip();
    let n = b.sizes.e2e;
    let (tx0, rows0) = db_counters(&url);
    let l0 = crate::measure::limits(&api);
    let rate = end_to_end(&api, &b.receiver, &eight, n);
    let limit = crate::measure::mean_limit(l0, crate::measure::limits(&api));
    let (tx1, rows1) = db_counters(&url);
    let done = batched(n) as f64;
    b.report.row(
        "P1 one node, end to end, batches, 8 endpoints",
        format!("{rate:.0} deliveries/s"),
        format!(
            "{:.0}% of baseline (1); per delivery {:.2} transactions, {:.1} rows written; mean limit {limit:.0}{}",
            100.0 * rate / b.base_rate,
            (tx1 - tx0) as f64 / done,
            (rows1 - rows0) as f64 / done,
            failed_note(&api, &keys)
        ),
    );
    let single = end_to_end_single(&api, &b.receiver, &eight, b.sizes.single, 32);
    b.report.row(
        "P1 one node, end to end, single events over HTTP, 32 clients",
        format!("{single:.0} deliveries/s"),
        format!("{:.0}% of baseline (1)", 100.0 * single / b.base_rate),
    );
    // Half of what single events sustain (the latency phase posts single events).
    let half = rate.min(single) / 2.0;
    let (p50, p99, offered) = latency_at(&api, &b.receiver, &eight, half, b.sizes.latency_for);
    b.report.row(
        "P1 one node, accepted → received at half load (single events)",
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)),
        format!("{offered:.0} events/s offered"),
    );
    drop(one);

    // Two nodes on one database, ingest through both.
    let url = fresh_database(cluster, "webhooks_bench_two");
    let a = node(dir, &url, "bench-a", None);
    let bnode = node(dir, &url, "bench-b", Some(&a.admin));
    let (api_a, api_b) = (Api::new(&a.base, &a.admin), Api::new(&bnode.base, &a.admin));
    let eight: Vec<String> = (0..8)
        .map(|i| {
            api_a
                .customer_with_endpoint(
                    &format!("pg2-{i}"),
                    &b.receiver.url(&format!("/fast/pg2/{i}")),
                )
                .0
        })
        .collect();
    let before = b.receiver.total();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| ingest_batches(&api_a, &eight, n / 2, 1));
        s.spawn(|| ingest_batches(&api_b, &eight, n / 2, 1));
        let want = 2 * batched(n / 2) as u64;
        let deadline = start + Duration::from_secs(900);
        while b.receiver.total() - before < want {
            assert!(Instant::now() < deadline, "deliveries stalled");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let rate2 = (b.receiver.total() - before) as f64 / start.elapsed().as_secs_f64();
    let (da, db) = (delivered_by(&api_a), delivered_by(&api_b));
    b.report.row(
        "P2 two nodes, end to end, batches through both, 8 endpoints",
        format!("{rate2:.0} deliveries/s"),
        format!(
            "{:.2}× one node; node a sent {:.0}%, node b {:.0}%",
            rate2 / rate,
            100.0 * da as f64 / (da + db).max(1) as f64,
            100.0 * db as f64 / (da + db).max(1) as f64
        ),
    );
    let (p50, p99, offered) = latency_at(&api_a, &b.receiver, &eight, half, b.sizes.latency_for);
    b.report.row(
        "P2 two nodes, accepted → received at the same load as P1",
        format!("p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)),
        format!("{offered:.0} events/s offered"),
    );
    drop((a, bnode));
    crate::capped::run(b, cluster, dir, cluster_dir);
}

/// A throwaway cluster for `--postgres`, stopped and removed when dropped.
pub struct Cluster {
    pub dir: std::path::PathBuf,
    pub url: String,
}

impl Cluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("webhooks-bench-pg-{}", std::process::id()));
        let out = std::process::Command::new("scripts/pg-cluster")
            .arg("start")
            .arg(&dir)
            .output()
            .expect("scripts/pg-cluster");
        assert!(
            out.status.success(),
            "cannot start a PostgreSQL cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { dir, url }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scripts/pg-cluster")
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// The endpoints' failures by error, if any (a failure pauses an endpoint for a while).
fn failed_note(api: &Api, keys: &[String]) -> String {
    let why: Vec<String> = keys
        .iter()
        .map(|k| api.failures_by_error(k))
        .filter(|w| !w.is_empty())
        .collect();
    if why.is_empty() {
        String::new()
    } else {
        format!("; failed: {}", why.join("; "))
    }
}
