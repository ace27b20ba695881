//! Scale shown by simulation (SPEC §7): each node under its own CPU cap (a cgroup `cpu` quota
//! of 0.3 CPU), one, two and three nodes on one database, with PostgreSQL's own CPU time and
//! what each delivery costs it. On a small box the nodes, PostgreSQL and the load share the
//! same cores, so nodes without caps cannot show what a second machine adds; capped, each
//! node is a small machine of its own and the database is shared as in production.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::measure::{batched, ingest_batches};
use crate::server::Server;
use crate::{Api, Bench};

/// Each node's share of a CPU.
pub const CAP: f64 = 0.3;
const PERIOD_US: u64 = 100_000;

/// A cgroup limiting the CPU of the processes put in it; removed when dropped.
pub struct CpuCap {
    dir: PathBuf,
}

impl CpuCap {
    /// A new cgroup capped at `share` of one CPU: cgroup v1's `cpu` controller, or v2's
    /// `cpu.max`. Says why not where cgroups cannot be written (no privilege, a read-only
    /// /sys/fs/cgroup, no cpu controller).
    pub fn new(name: &str, share: f64) -> Result<Self, String> {
        let quota = (share * PERIOD_US as f64) as u64;
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, files) = if v1.join("cpu.cfs_quota_us").exists() {
            (
                v1.join(name),
                vec![
                    ("cpu.cfs_period_us", PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        } else if std::fs::read_to_string(v2)
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"))
        {
            (
                Path::new("/sys/fs/cgroup").join(name),
                vec![("cpu.max", format!("{quota} {PERIOD_US}"))],
            )
        } else {
            return Err("no cgroup cpu controller is mounted at /sys/fs/cgroup".into());
        };
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cap = Self { dir };
        for (file, value) in files {
            std::fs::write(cap.dir.join(file), value)
                .map_err(|e| format!("cannot write {}: {e}", cap.dir.join(file).display()))?;
        }
        Ok(cap)
    }

    /// Moves a process (all its threads, and those it starts later) into the cgroup.
    pub fn add(&self, pid: u32) -> Result<(), String> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("cannot move process {pid} into {}: {e}", self.dir.display()))
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        // Empty once its processes ended; a few tries while the kernel lets them go.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// CPU seconds used so far by a local cluster's server processes (the postmaster named in
/// `data/postmaster.pid` and its children), from /proc.
fn postgres_cpu(cluster_dir: &Path) -> Option<f64> {
    let pid: u32 = std::fs::read_to_string(cluster_dir.join("data/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid, …, utime (14), stime (15).
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let own: u32 = head
            .split('(')
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .unwrap_or(0);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid: u32 = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if own == pid || ppid == pid {
            let ticks: f64 =
                f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
            total += ticks / tick;
        }
    }
    Some(total)
}

/// One, two and three capped nodes on fresh databases of `cluster`: deliveries/s end to end
/// (batches ingested through every node, 8 endpoints on instant receivers), each against one
/// node; PostgreSQL's CPU per delivery where the cluster is local (`cluster_dir`).
pub fn run(b: &mut Bench, cluster: &str, dir: &Path, cluster_dir: Option<&Path>) {
    let probe = CpuCap::new(&format!("webhooks-bench-{}-probe", std::process::id()), CAP);
    if let Err(why) = probe {
        b.report.row(
            "P3 capped nodes (0.3 CPU each)",
            "not measured".into(),
            format!("cgroups cannot be written here: {why}"),
        );
        return;
    }
    drop(probe);
    let n = if b.quick { 4_000 } else { 40_000 };
    let mut one = None;
    for nodes in 1..=3usize {
        let url =
            super::postgres::fresh_database(cluster, &format!("webhooks_bench_capped_{nodes}"));
        let mut servers: Vec<Server> = Vec::new();
        let mut caps = Vec::new();
        for i in 0..nodes {
            let admin = servers.first().map(|s: &Server| s.admin.clone());
            let s =
                super::postgres::node(dir, &url, &format!("capped-{nodes}-{i}"), admin.as_deref());
            let cap = CpuCap::new(
                &format!("webhooks-bench-{}-{nodes}-{i}", std::process::id()),
                CAP,
            )
            .and_then(|c| c.add(s.pid()).map(|()| c));
            match cap {
                Ok(c) => caps.push(c),
                Err(why) => {
                    b.report
                        .row("P3 capped nodes (0.3 CPU each)", "not measured".into(), why);
                    return;
                }
            }
            servers.push(s);
        }
        let apis: Vec<Api> = servers
            .iter()
            .map(|s| Api::new(&s.base, &servers[0].admin))
            .collect();
        let eight: Vec<String> = (0..8)
            .map(|i| {
                apis[0]
                    .customer_with_endpoint(
                        &format!("capped-{nodes}-{i}"),
                        &b.receiver.url(&format!("/fast/capped{nodes}/{i}")),
                    )
                    .0
            })
            .collect();
        let (tx0, rows0) = super::postgres::db_counters(&url);
        let pg0 = cluster_dir.and_then(postgres_cpu);
        let cpu0: Vec<f64> = servers.iter().map(Server::cpu_secs).collect();
        let before = b.receiver.total();
        let share = n / nodes;
        let want = (nodes * batched(share)) as u64;
        let start = Instant::now();
        std::thread::scope(|s| {
            for api in &apis {
                let eight = &eight;
                s.spawn(move || ingest_batches(api, eight, share, 1));
            }
            let deadline = start + Duration::from_secs(900);
            while b.receiver.total() - before < want {
                assert!(Instant::now() < deadline, "deliveries stalled");
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let took = start.elapsed().as_secs_f64();
        let rate = want as f64 / took;
        let pg1 = cluster_dir.and_then(postgres_cpu);
        let node_cpu: f64 = servers
            .iter()
            .zip(&cpu0)
            .map(|(s, c0)| s.cpu_secs() - c0)
            .sum();
        let (tx1, rows1) = super::postgres::db_counters(&url);
        let base = *one.get_or_insert(rate);
        let pg = match (pg0, pg1) {
            (Some(a), Some(z)) => format!(
                "PostgreSQL {:.0}% of a CPU, {:.0} µs per delivery",
                100.0 * (z - a) / took,
                1e6 * (z - a) / want as f64
            ),
            _ => "PostgreSQL's CPU not measured (not a local cluster)".into(),
        };
        b.report.row(
            &format!("P3 {nodes} capped node{} (0.3 CPU each), end to end, 8 endpoints", if nodes > 1 { "s" } else { "" }),
            format!("{rate:.0} deliveries/s"),
            format!(
                "{:.2}× one capped node; nodes {:.0}% of their caps; {pg}; per delivery {:.2} transactions, {:.1} rows written",
                rate / base,
                100.0 * node_cpu / (took * CAP * nodes as f64),
                (tx1 - tx0) as f64 / want as f64,
                (rows1 - rows0) as f64 / want as f64,
            ),
        );
        drop(servers);
        drop(caps);
    }
}
