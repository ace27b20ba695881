//! PostgreSQL stopped for a few seconds under ingest, twice: the node rides it out. Clients
//! get 503 (never 500), nothing accepted is lost, nothing is sent twice, nothing is left
//! `sending`, and the node is alive and delivering afterwards. On a throwaway cluster of its
//! own (scripts/pg-cluster), since the outage is the cluster's.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::lifecycle::Proc;
use crate::support::{Receiver, on_postgres, wait_for};

fn cluster(cmd: &str, dir: &Path) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");
    let out = Command::new(script).arg(cmd).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "pg-cluster {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Cluster(std::path::PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
            .arg("stop")
            .arg(&self.0)
            .output();
    }
}

#[test]
fn postgresql_stopped_under_ingest_loses_nothing_and_answers_503_not_500() {
    if !on_postgres() {
        return crate::support::skipped(
            "outage::postgresql_stopped_under_ingest_loses_nothing_and_answers_503_not_500",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = Cluster(dir.path().join("pg"));
    let url = cluster("start", &pg.0);
    let work = dir.path().join("node");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd_args = vec!["--database", url.as_str(), "--node-id", "outage-1"];
    cmd_args.extend(["--workers", "16", "--request-timeout-secs", "2"]);
    // Proc names the database after the data path; this one is given directly.
    let mut p = Proc::start_in(&work, &cmd_args);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    let receiver = Receiver::counting();
    let (st, _) = p.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/5/"), "events": ["*"]}),
    );
    assert_eq!(st, 201);
    let (_, customers) = p.api.get("/api/v1/customers", &admin);
    let customer = customers["data"][0]["id"].as_str().unwrap().to_owned();

    let stop = AtomicBool::new(false);
    let server_errors = AtomicU64::new(0);
    let unavailable = AtomicU64::new(0);
    let base = p.api.base.clone();
    let accepted: Vec<String> = std::thread::scope(|scope| {
        let producers: Vec<_> = (0..4)
            .map(|t| {
                let (stop, server_errors, unavailable) = (&stop, &server_errors, &unavailable);
                let (base, admin, customer) = (&base, &admin, &customer);
                scope.spawn(move || {
                    let agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(15)))
                        .build()
                        .new_agent();
                    let mut accepted = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Acquire) {
                        i += 1;
                        let body = json!({"customer_id": customer, "event": "transactions.fetched",
                                          "data": {"producer": t, "n": i}});
                        let sent = agent
                            .post(format!("{base}/api/v1/events"))
                            .header("authorization", format!("Bearer {admin}"))
                            .header("content-type", "application/json")
                            .send(body.to_string());
                        match sent {
                            Ok(mut r) => match r.status().as_u16() {
                                202 => {
                                    let v: serde_json::Value = serde_json::from_str(
                                        &r.body_mut().read_to_string().unwrap(),
                                    )
                                    .unwrap();
                                    accepted.push(v["id"].as_str().unwrap().to_owned());
                                }
                                503 => {
                                    unavailable.fetch_add(1, Ordering::Relaxed);
                                    std::thread::sleep(Duration::from_millis(50));
                                }
                                s if s >= 500 => {
                                    server_errors.fetch_add(1, Ordering::Relaxed);
                                }
                                _ => {}
                            },
                            Err(_) => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                    accepted
                })
            })
            .collect();
        for _ in 0..2 {
            let before = receiver.total();
            wait_for(30, "deliveries to flow", || {
                (receiver.total() >= before + 100).then_some(())
            });
            cluster("pause", &pg.0);
            // The outage itself: three seconds without a database.
            std::thread::sleep(Duration::from_secs(3));
            cluster("resume", &pg.0);
        }
        let before = receiver.total();
        wait_for(60, "the node to deliver again", || {
            (receiver.total() >= before + 100).then_some(())
        });
        stop.store(true, Ordering::Release);
        producers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(p.child.try_wait().unwrap().is_none(), "the node is alive");
    assert_eq!(
        server_errors.load(Ordering::Relaxed),
        0,
        "no 500 during the outages"
    );
    // Everything settles: nothing pending, nothing left `sending`.
    let settled = (0..240).any(|_| {
        let (_, s) = p.api.get("/api/v1/status", &admin);
        let done = s["pending"] == 0 && s["sending"] == 0;
        if !done {
            std::thread::sleep(Duration::from_millis(500));
        }
        done
    });
    if !settled {
        let (_, s) = p.api.get("/api/v1/status", &admin);
        let (_, stuck) = p
            .api
            .get("/api/v1/deliveries?status=sending&limit=20", &key);
        let (_, waiting) = p
            .api
            .get("/api/v1/deliveries?status=pending&limit=20", &key);
        panic!("not settled after 120 s: {s}\nsending: {stuck}\npending: {waiting}");
    }
    let mut interrupted = 0;
    for id in &accepted {
        let (st, e) = p.api.get(&format!("/api/v1/events/{id}"), &key);
        assert_eq!(st, 200, "accepted event {id} was lost");
        let got = receiver.count(id);
        assert!(got <= 1, "{id} arrived {got} times");
        match e["deliveries"][0]["status"].as_str().unwrap() {
            "succeeded" => assert_eq!(got, 1, "{id}"),
            "interrupted" => interrupted += 1,
            other => panic!("{id} ended {other}: {e}"),
        }
    }
    eprintln!(
        "outage ledger: {} accepted, {} answered 503, {interrupted} interrupted, 0 lost, 0 twice",
        accepted.len(),
        unavailable.load(Ordering::Relaxed)
    );
    let _ = p.child.kill();
    let _ = p.child.wait();
}
