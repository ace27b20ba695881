//! The database going away under ingest: PostgreSQL stopped for a few seconds, twice, and a
//! primary that crashes while a synchronous standby is promoted. The nodes ride it out.
//! Clients get 503 (never 500), nothing accepted is lost, nothing is sent twice, nothing is
//! left `sending`, and the nodes are alive and delivering afterwards. Each on a throwaway
//! cluster of its own (scripts/pg-cluster), since the outage is the cluster's.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use webhooks::domain::Claim;

use crate::support::Proc;
use crate::support::{Api, Receiver, on_postgres, wait_for};

fn cluster(args: &[&Path], cmd: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");
    let out = Command::new(script).arg(cmd).args(args).output().unwrap();
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

/// What producers posting events until told to stop came away with.
#[derive(Default)]
struct Ledger {
    accepted: Vec<String>,
    unavailable: u64,
    server_errors: u64,
}

/// Four producers post events for `customer` (alternating between the nodes at `bases`)
/// while `during` runs: a 503 is waited out, a 202 noted. Returns what they came away with.
fn under_ingest(bases: &[String], admin: &str, customer: &str, during: impl FnOnce()) -> Ledger {
    let stop = AtomicBool::new(false);
    let (unavailable, server_errors) = (AtomicU64::new(0), AtomicU64::new(0));
    let accepted = std::thread::scope(|scope| {
        let producers: Vec<_> = (0..4)
            .map(|t| {
                let (stop, unavailable, server_errors) = (&stop, &unavailable, &server_errors);
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
                        let base = &bases[(t + i) % bases.len()];
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
        during();
        stop.store(true, Ordering::Release);
        producers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    Ledger {
        accepted,
        unavailable: unavailable.into_inner(),
        server_errors: server_errors.into_inner(),
    }
}

/// Waits for `receiver` to get `n` more deliveries.
fn flowing(receiver: &Receiver, n: u64, secs: u64, what: &str) {
    let before = receiver.total();
    wait_for(secs, what, || {
        (receiver.total() >= before + n).then_some(())
    });
}

/// Everything settles (nothing pending, nothing `sending`), and each accepted event is there
/// and arrived at most once: exactly once if it succeeded, or it is `interrupted`. `logs` are
/// the nodes' logs, shown when it fails. Returns how many were interrupted.
fn settled_once_each(
    api: &Api,
    admin: &str,
    key: &str,
    receiver: &Receiver,
    ledger: &Ledger,
    logs: &[&Path],
) -> usize {
    let show = || {
        logs.iter()
            .map(|p| {
                format!(
                    "{}:\n{}",
                    p.display(),
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let settled = (0..240).any(|_| {
        let (_, s) = api.get("/api/v1/status", admin);
        let done = s["pending"] == 0 && s["sending"] == 0;
        if !done {
            std::thread::sleep(Duration::from_millis(500));
        }
        done
    });
    if !settled {
        let (_, s) = api.get("/api/v1/status", admin);
        let (_, stuck) = api.get("/api/v1/deliveries?status=sending&limit=20", key);
        let (_, waiting) = api.get("/api/v1/deliveries?status=pending&limit=20", key);
        panic!(
            "not settled after 120 s: {s}\nsending: {stuck}\npending: {waiting}\n{}",
            show()
        );
    }
    let mut interrupted = 0;
    for id in &ledger.accepted {
        let (st, e) = api.get(&format!("/api/v1/events/{id}"), key);
        assert_eq!(st, 200, "accepted event {id} was lost\n{}", show());
        let got = receiver.count(id);
        assert!(got <= 1, "{id} arrived {got} times: {e}\n{}", show());
        match e["deliveries"][0]["status"].as_str().unwrap() {
            "succeeded" => assert_eq!(got, 1, "{id}"),
            "interrupted" => interrupted += 1,
            other => panic!("{id} ended {other}: {e}"),
        }
    }
    interrupted
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
    let url = cluster(&[&pg.0], "start");
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

    let ledger = under_ingest(&[p.api.base.clone()], &admin, &customer, || {
        for _ in 0..2 {
            flowing(&receiver, 100, 30, "deliveries to flow");
            cluster(&[&pg.0], "pause");
            // The outage itself: three seconds without a database.
            std::thread::sleep(Duration::from_secs(3));
            cluster(&[&pg.0], "resume");
        }
        flowing(&receiver, 100, 60, "the node to deliver again");
    });
    assert!(p.child.try_wait().unwrap().is_none(), "the node is alive");
    assert_eq!(ledger.server_errors, 0, "no 500 during the outages");
    let log = work.join("server.log");
    let interrupted = settled_once_each(&p.api, &admin, &key, &receiver, &ledger, &[&log]);
    eprintln!(
        "outage ledger: {} accepted, {} answered 503, {interrupted} interrupted, 0 lost, 0 twice",
        ledger.accepted.len(),
        ledger.unavailable
    );
    let _ = p.child.kill();
    let _ = p.child.wait();
}

/// SPEC §7: with a synchronous standby, a primary that crashes under ingest and a standby
/// promoted in its place lose nothing and send nothing twice; nodes given both hosts
/// (`target_session_attrs=read-write`) follow the new primary by themselves. A node given
/// several hosts warns at start when the primary has no synchronous standby.
#[test]
fn a_promoted_synchronous_standby_keeps_every_delivery_at_most_once() {
    if !on_postgres() {
        return crate::support::skipped(
            "outage::a_promoted_synchronous_standby_keeps_every_delivery_at_most_once",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let primary = Cluster(dir.path().join("primary"));
    let url = cluster(&[&primary.0], "start");
    let mut admin_db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin_db.batch_execute("CREATE DATABASE failover").unwrap();
    drop(admin_db);
    let port = |u: &str| {
        u.rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let primary_port = port(&url);
    let node_dir = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };

    // No standby yet: a node given two hosts says what that risks (and makes the secrets).
    let first = node_dir("first");
    let lonely = format!(
        "postgres://webhooks@127.0.0.1:{primary_port},127.0.0.1:1/failover?target_session_attrs=read-write"
    );
    let mut p = Proc::start_in(&first, &["--database", &lonely, "--node-id", "failover-1"]);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    let warning = "no synchronous standby";
    wait_for(
        10,
        "the warning about the missing synchronous standby",
        || {
            std::fs::read_to_string(first.join("server.log"))
                .unwrap()
                .contains(warning)
                .then_some(())
        },
    );
    let _ = p.child.kill();
    let _ = p.child.wait();

    let standby = Cluster(dir.path().join("standby"));
    let standby_url = cluster(&[&primary.0, &standby.0], "standby");
    let both = format!(
        "postgres://webhooks@127.0.0.1:{primary_port},127.0.0.1:{}/failover?target_session_attrs=read-write",
        port(&standby_url)
    );
    let args = |id: &'static str| {
        [
            "--database",
            &both,
            "--node-id",
            id,
            "--workers",
            "16",
            "--request-timeout-secs",
            "2",
        ]
        .map(str::to_owned)
    };
    let (d1, d2) = (node_dir("node-1"), node_dir("node-2"));
    let a1 = args("failover-1");
    let a2 = args("failover-2");
    let mut n1 = Proc::start_in(&d1, &a1.iter().map(String::as_str).collect::<Vec<_>>());
    let mut n2 = Proc::start_in(&d2, &a2.iter().map(String::as_str).collect::<Vec<_>>());
    let receiver = Receiver::counting();
    let (st, _) = n1.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/5/"), "events": ["*"]}),
    );
    assert_eq!(st, 201);
    let (_, customers) = n1.api.get("/api/v1/customers", &admin);
    let customer = customers["data"][0]["id"].as_str().unwrap().to_owned();

    let bases = [n1.api.base.clone(), n2.api.base.clone()];
    let ledger = under_ingest(&bases, &admin, &customer, || {
        flowing(&receiver, 200, 30, "deliveries to flow");
        cluster(&[&primary.0], "crash");
        cluster(&[&standby.0], "promote");
        flowing(
            &receiver,
            200,
            60,
            "the nodes to deliver again, on the new primary",
        );
    });
    for n in [&mut n1, &mut n2] {
        assert!(n.child.try_wait().unwrap().is_none(), "the nodes are alive");
    }
    assert_eq!(ledger.server_errors, 0, "no 500 during the failover");
    let (l1, l2) = (d1.join("server.log"), d2.join("server.log"));
    for log in [&l1, &l2] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(
            !text.contains(warning),
            "a synchronous standby: no warning\n{text}"
        );
    }
    let interrupted = settled_once_each(&n2.api, &admin, &key, &receiver, &ledger, &[&l1, &l2]);
    eprintln!(
        "failover ledger: {} accepted, {} answered 503, {interrupted} interrupted, 0 lost, 0 twice",
        ledger.accepted.len(),
        ledger.unavailable
    );
    for mut n in [n1, n2] {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
}

/// A claim group that fails (its commit unconfirmed) may have asked again for a delivery that
/// an earlier group claimed and a worker has under way; handing the failed group back must
/// leave that delivery alone. Before claims carried their group's tag, the hand-back went by
/// delivery id, put the delivery under way back to `pending`, and it was sent twice (caught
/// once by the outage test above, in CI).
#[test]
fn a_failed_claim_group_never_hands_back_a_delivery_under_way() {
    if !on_postgres() {
        return crate::support::skipped(
            "outage::a_failed_claim_group_never_hands_back_a_delivery_under_way",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    use webhooks::domain::input::{Headers, TargetUrl};
    use webhooks::domain::{DeliveryStatus, NewEndpoint, NewEvent};
    use webhooks::store::postgres::{PgOptions, PgStore};
    use webhooks::store::prelude::*;

    let dir = tempfile::tempdir().unwrap();
    let url = crate::support::database_for(&dir.path().join("claims")).unwrap();
    let store = PgStore::open(
        &url,
        PgOptions {
            node_id: "claims-1".into(),
            lease: Duration::from_secs(30),
            request_timeout: Duration::from_secs(2),
        },
    )
    .unwrap_or_else(|e| panic!("open: {e}"));
    let customer = store.create_customer("claims".into()).unwrap().customer;
    let endpoint = NewEndpoint {
        url: TargetUrl::parse("http://127.0.0.1:9/never").unwrap(),
        events: vec!["*".into()],
        description: None,
        enabled: true,
        rate_limit_per_sec: None,
        headers: Headers::new(),
        max_hold_secs: None,
    };
    store.create_endpoint(&customer.id, endpoint, 10).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new = |n: u32| NewEvent {
        customer_id: customer.id.clone(),
        event: "transactions.fetched".into(),
        data: format!("{{\"n\":{n}}}"),
    };
    let accepted = match rt
        .block_on(store.ingest(vec![new(1), new(2)], None))
        .unwrap()
    {
        webhooks::store::Ingested::New(a) => a,
        webhooks::store::Ingested::Replayed(_) => unreachable!("no idempotency key"),
    };
    // After the cut, each pooled connection fails once before it is replaced.
    let delivery_of = |event: &str| {
        let (_, ds) = (0..20)
            .find_map(|_| store.get_event(&customer.id, event).ok())
            .expect("the store reads again once reconnected")
            .unwrap();
        ds.into_iter().next().unwrap()
    };
    let (d1, d2) = (delivery_of(&accepted[0].id), delivery_of(&accepted[1].id));
    let pair = |d: &webhooks::domain::Delivery| vec![Claim::new(&d.endpoint_id, &d.id)];
    let claim = |ids: Vec<Claim>| {
        let (tx, rx) = std::sync::mpsc::channel();
        store.claim_then(
            ids,
            Box::new(move |r| {
                let _ = tx.send(r.map_err(|e| e.to_string()));
            }),
        );
        rx.recv_timeout(Duration::from_secs(60)).unwrap()
    };

    assert_eq!(
        claim(pair(&d1)).unwrap(),
        pair(&d1),
        "d1 claimed: under way"
    );
    // Every connection of the node is cut: its next group fails.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    // A stale second ask for d1 (a lane re-read while its first claim was being committed),
    // in a group that fails.
    assert!(
        claim(pair(&d1)).is_err(),
        "the group on a cut connection fails"
    );
    // The next group hands the failed one back, then claims d2.
    let got = (0..20)
        .find_map(|_| claim(pair(&d2)).ok())
        .expect("the node claims again once reconnected");
    assert_eq!(got, pair(&d2));
    let status = |d: &webhooks::domain::Delivery| delivery_of(&d.event_id).status;
    assert_eq!(
        status(&d1),
        DeliveryStatus::Sending,
        "d1 is under way: the failed group's hand-back must not make it pending again"
    );
    assert_eq!(
        claim(pair(&d1)).unwrap(),
        vec![],
        "d1 cannot be claimed twice"
    );
    store.close();
}
