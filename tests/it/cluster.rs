//! Several nodes on one PostgreSQL database (only when the suite runs against a test cluster,
//! `WEBHOOKS_TEST_DATABASE`): each event delivered once whichever node took it, sessions
//! shared, kill -9, SIGSTOP past the lease and SIGTERM of a node under load, `import` of a
//! data file, a newer schema refused.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::crash::ingest_until;
use crate::lifecycle::Proc;
use crate::support::{Api, Receiver, database_for, on_postgres, serve_args, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_webhooks");

/// A node on the database that stands for `data`, with a short lease so tests see it lapse.
fn node(data: &Path, id: &str, workers: &str) -> Proc {
    Proc::start_with(
        data,
        &[
            "--node-id",
            id,
            "--workers",
            workers,
            "--lease-secs",
            "4",
            "--request-timeout-secs",
            "2",
        ],
    )
}

/// Two nodes on a new database: (a, b, admin token, customer key, customer id).
fn two_nodes(data: &Path, workers: &str) -> (Proc, Proc, String, String, String) {
    let a = node(data, "node-a", workers);
    let b = node(data, "node-b", workers);
    assert!(b.secrets.is_empty(), "only the first node bootstraps");
    let admin = a.secret("admin token:");
    let key = a.secret("api key (customer default):");
    let (_, customers) = b.api.get("/api/v1/customers", &admin);
    let customer = customers["data"][0]["id"].as_str().unwrap().to_owned();
    (a, b, admin, key, customer)
}

fn metric(api: &Api, name: &str) -> Option<u64> {
    let (_, m) = api.send_raw("GET", "/metrics", "", None, &[]);
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Deliveries this node finished, all outcomes together.
fn sent(api: &Api) -> u64 {
    let (_, m) = api.send_raw("GET", "/metrics", "", None, &[]);
    m.lines()
        .filter(|l| l.starts_with("webhooks_deliveries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until no delivery is pending or claimed anywhere in the cluster.
fn settled(api: &Api, secs: u64) {
    wait_for(secs, "every delivery to settle", || {
        let quiet = metric(api, "webhooks_queue_depth") == Some(0)
            && metric(api, "webhooks_deliveries_claimed") == Some(0);
        quiet.then_some(())
    });
}

/// Each accepted event's one delivery: (succeeded, interrupted); fails on a lost event, a
/// delivery sent twice, or any other ending.
fn ledger(api: &Api, key: &str, accepted: &[String], receiver: &Receiver) -> (usize, Vec<String>) {
    let mut succeeded = 0;
    let mut interrupted = Vec::new();
    for id in accepted {
        let (st, e) = api.get(&format!("/api/v1/events/{id}"), key);
        assert_eq!(st, 200, "accepted event {id} was lost");
        let ds = e["deliveries"].as_array().unwrap();
        assert_eq!(ds.len(), 1, "{e}");
        let got = receiver.count(id);
        assert!(got <= 1, "{id} arrived {got} times");
        match ds[0]["status"].as_str().unwrap() {
            "succeeded" => {
                assert_eq!(got, 1, "{id} succeeded but arrived {got} times");
                succeeded += 1;
            }
            "interrupted" => interrupted.push(id.clone()),
            other => panic!("{id} ended {other}: {e}"),
        }
    }
    (succeeded, interrupted)
}

#[test]
fn two_nodes_deliver_each_event_once_and_share_portal_sessions() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::two_nodes_deliver_each_event_once_and_share_portal_sessions",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (a, b, admin, key, customer) = two_nodes(&data, "8");
    let (st, _) = a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/20/"), "events": ["*"]}),
    );
    assert_eq!(st, 201);
    let mut accepted = Vec::new();
    for i in 0..200 {
        let via = if i % 2 == 0 { &a.api } else { &b.api };
        let (st, body) = via.post(
            "/api/v1/events",
            &admin,
            &json!({"customer_id": customer, "event": "transactions.fetched", "data": {"n": i}}),
        );
        assert_eq!(st, 202, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }
    settled(&a.api, 60);
    let (succeeded, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    assert_eq!((succeeded, interrupted.len()), (200, 0));
    let (_, status) = a.api.get("/api/v1/status", &admin);
    assert_eq!(status["nodes"], 2, "{status}");

    // A portal session made through one node works through the other.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let (status, session) = crate::support::portal_sign_in(&a.api.base, &key);
    assert_eq!(status, 303);
    let session = session.unwrap();
    let resp = agent
        .get(format!("{}/webhooks", b.api.base))
        .header("cookie", &session)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "signed in on the other node");

    // The sign-in throttle is shared: guesses spread over both nodes add up.
    let guess = |base: &str| crate::support::portal_sign_in(base, "whk_wrong").0;
    for base in [
        &a.api.base,
        &b.api.base,
        &a.api.base,
        &b.api.base,
        &a.api.base,
    ] {
        assert_eq!(guess(base), 401);
    }
    assert_eq!(guess(&b.api.base), 429, "five failures across the cluster");
}

#[test]
fn a_node_killed_under_ingest_loses_nothing_and_its_claims_turn_interrupted() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_node_killed_under_ingest_loses_nothing_and_its_claims_turn_interrupted",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (mut a, b, admin, key, customer) = two_nodes(&data, "16");
    a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/30/"), "events": ["*"]}),
    );
    let stop_a = AtomicBool::new(false);
    let stop_b = AtomicBool::new(false);
    let accepted = std::thread::scope(|scope| {
        let on_a = scope.spawn(|| ingest_until(&a.api.base, &admin, &customer, 2, &stop_a));
        let on_b = scope.spawn(|| ingest_until(&b.api.base, &admin, &customer, 2, &stop_b));
        wait_for(60, "deliveries to flow through node a", || {
            (sent(&a.api) >= 100).then_some(())
        });
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        stop_a.store(true, Ordering::Release);
        // The survivor keeps taking and delivering events.
        let before = receiver.total();
        wait_for(30, "the survivor to deliver more", || {
            (receiver.total() >= before + 50).then_some(())
        });
        stop_b.store(true, Ordering::Release);
        let mut all = on_a.join().unwrap();
        all.extend(on_b.join().unwrap());
        all
    });
    // Node a's claims are its own until its lease (4 s) lapses, then interrupted.
    settled(&b.api, 60);
    let (succeeded, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    eprintln!(
        "two-node kill -9 ledger: {} accepted, {succeeded} delivered once, {} interrupted, 0 lost, 0 twice",
        accepted.len(),
        interrupted.len()
    );
    // What was interrupted was node a's in flight or claimed ahead: a bounded few.
    assert!(interrupted.len() <= 16 + 64, "{}", interrupted.len());
}

#[test]
fn a_node_paused_past_its_lease_sends_nothing_the_cluster_interrupted() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_node_paused_past_its_lease_sends_nothing_the_cluster_interrupted",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (mut a, b, admin, key, customer) = two_nodes(&data, "4");
    a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/300/"), "events": ["*"]}),
    );
    // Enough work that node a holds claims when it is paused.
    let mut accepted = Vec::new();
    for i in 0..40 {
        let (st, body) = a.api.post(
            "/api/v1/events",
            &admin,
            &json!({"customer_id": customer, "event": "transactions.fetched", "data": {"n": i}}),
        );
        assert_eq!(st, 202);
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }
    wait_for(30, "node a to be sending", || {
        (metric(&a.api, "webhooks_deliveries_in_flight")? > 0).then_some(())
    });
    a.signal("-STOP");
    // Past the lease: node b interrupts a's claims and delivers the rest.
    settled(&b.api, 60);
    let resumed = Instant::now();
    a.signal("-CONT");
    // Node a finds its lease lapsed and stops rather than send what is no longer its own.
    assert_eq!(a.wait_exit(), 1, "a node that lost its lease exits 1");
    let (_, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    assert!(
        !interrupted.is_empty(),
        "node a held claims when it was paused"
    );
    for id in &interrupted {
        if let Some(t) = receiver.first_seen(id) {
            assert!(
                t < resumed,
                "{id} was sent after the cluster interrupted it"
            );
        }
    }
}

#[test]
fn sigterm_of_a_node_under_load_hands_back_what_it_had_not_started() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::sigterm_of_a_node_under_load_hands_back_what_it_had_not_started",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::counting();
    let (mut a, b, admin, key, customer) = two_nodes(&data, "8");
    a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/delay/50/"), "events": ["*"]}),
    );
    let batch: Vec<Value> = (0..300)
        .map(
            |i| json!({"customer_id": customer, "event": "transactions.fetched", "data": {"n": i}}),
        )
        .collect();
    let (st, body) = a
        .api
        .post("/api/v1/events/batch", &admin, &json!({ "events": batch }));
    assert_eq!(st, 202, "{body}");
    let accepted: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    wait_for(30, "node a to be sending", || {
        (metric(&a.api, "webhooks_deliveries_in_flight")? > 0).then_some(())
    });
    a.signal("-TERM");
    assert_eq!(a.wait_exit(), 0);
    settled(&b.api, 60);
    let (succeeded, interrupted) = ledger(&b.api, &key, &accepted, &receiver);
    assert_eq!((succeeded, interrupted.len()), (300, 0), "{interrupted:?}");
}

#[test]
fn import_copies_a_data_file_with_every_object_and_key() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::import_copies_a_data_file_with_every_object_and_key",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one-box.redb");
    let receiver = Receiver::counting();
    // A deployment on one box…
    let mut args = serve_args(file.clone());
    args.database = None;
    let one = webhooks::serve::Server::start(&args).unwrap();
    let first = one.first_start.as_ref().unwrap();
    let (admin, key) = (first.admin_token.clone(), first.api_key.clone());
    let api = Api::new(&format!("http://{}", one.addr));
    let (_, acme) = api.post("/api/v1/customers", &admin, &json!({"name": "acme"}));
    let acme_key = acme["api_key"].as_str().unwrap().to_owned();
    let (_, ep) = api.post(
        "/api/v1/endpoints",
        &acme_key,
        &json!({"url": receiver.url("/"), "events": ["*"]}),
    );
    let (st, _) = api.post(
        "/api/v1/event-types",
        &admin,
        &json!({"name": "acme.custom", "description": "ours", "example": {"a": 1}}),
    );
    assert_eq!(st, 201);
    let (_, evt) = api.post(
        "/api/v1/events",
        &admin,
        &json!({"customer_id": acme["id"], "event": "acme.custom", "data": {"a": 2}}),
    );
    let evt_id = evt["id"].as_str().unwrap().to_owned();
    wait_for(20, "the delivery", || {
        (receiver.count(&evt_id) == 1).then_some(())
    });
    settled(&api, 20);
    one.shutdown();

    // …grows: its file goes into a new database.
    let target = dir.path().join("cluster");
    let url = database_for(&target).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["import", "--from"])
        .arg(&file)
        .args(["--database", &url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("imported 2 customers, 1 endpoints, 1 events and 1 deliveries"),
        "{said}"
    );

    let pg = webhooks::serve::Server::start(&serve_args(target)).unwrap();
    assert!(pg.first_start.is_none(), "the imported admin token stands");
    let api = Api::new(&format!("http://{}", pg.addr));
    assert_eq!(api.get("/api/v1/customers", &admin).0, 200);
    assert_eq!(api.get("/api/v1/endpoints", &key).0, 200);
    let (st, eps) = api.get("/api/v1/endpoints", &acme_key);
    assert_eq!(st, 200);
    assert_eq!(eps["data"][0]["id"], ep["id"]);
    assert_eq!(eps["data"][0]["secret"], ep["secret"]);
    let (st, e) = api.get(&format!("/api/v1/events/{evt_id}"), &acme_key);
    assert_eq!(st, 200);
    assert_eq!(e["data"]["a"], 2);
    assert_eq!(e["deliveries"][0]["status"], "succeeded");
    let (_, types) = api.get("/api/v1/event-types?limit=100", &admin);
    assert!(
        types["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "acme.custom"),
        "{types}"
    );
    pg.shutdown();

    // A database that has data is never merged into.
    let again = std::process::Command::new(BIN)
        .args(["import", "--from"])
        .arg(&file)
        .args(["--database", &url])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn a_database_migrated_by_a_newer_release_is_refused_in_one_line() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_database_migrated_by_a_newer_release_is_refused_in_one_line",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let url = database_for(&data).unwrap();
    let mut p = Proc::start(&data);
    p.signal("-TERM");
    assert_eq!(p.wait_exit(), 0);
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         VALUES (999, 'future', '2030-01-01T00:00:00Z', '0')",
        &[],
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer webhooks (schema 999)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("password"), "{err}");
}

#[test]
fn a_pause_made_by_one_node_holds_on_the_other_with_one_probe_a_step() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_pause_made_by_one_node_holds_on_the_other_with_one_probe_a_step",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    // A receiver that is up but unwell: 503 with `Retry-After: 2`.
    let receiver = Receiver::start(crate::support::Reply::RetryAfter(503, 2));
    let (a, b, admin, key, customer) = two_nodes(&data, "8");
    let (st, ep) = a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/"), "events": ["*"]}),
    );
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    let mut accepted = Vec::new();
    for (i, api) in [&a.api, &b.api].into_iter().cycle().take(40).enumerate() {
        let (st, e) = api.post(
            "/api/v1/events",
            &admin,
            &json!({"customer_id": customer, "event": "transactions.fetched", "data": {"i": i}}),
        );
        assert_eq!(st, 202, "{e}");
        accepted.push(e["id"].as_str().unwrap().to_owned());
    }
    let state = |api: &Api| {
        let (_, e) = api.get(&format!("/api/v1/endpoints/{id}"), &key);
        e["state"].clone()
    };
    let on_a = wait_for(30, "the endpoint to pause", || {
        let s = state(&a.api);
        (s["status"] == "paused").then_some(s)
    });
    assert_eq!(on_a["reason"], "http_503");
    // Both nodes hold it: the same stored pause, whichever node answers.
    assert_eq!(state(&b.api)["since"], on_a["since"]);
    // What was under way when it paused arrives at once; then one probe a step, from one
    // node or the other, never one from each: each 2 s (its Retry-After) after the last.
    for _ in 0..3 {
        receiver.next(30);
    }
    receiver.drain();
    let mut probes = Vec::new();
    for _ in 0..3 {
        receiver.next(30);
        probes.push(Instant::now());
    }
    for w in probes.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap.as_millis() >= 1500,
            "two probes {gap:?} apart: one a step"
        );
    }
    // The receiver recovers: the rest goes, each once, through both nodes.
    let tried = receiver.total();
    receiver.set_reply(crate::support::Reply::Status(204, ""));
    settled(&a.api, 60);
    let mut failed = 0;
    for e in &accepted {
        let (_, ev) = b.api.get(&format!("/api/v1/events/{e}"), &key);
        match ev["deliveries"][0]["status"].as_str().unwrap() {
            "succeeded" => assert_eq!(receiver.count(e), 1, "{e}"),
            "failed" => failed += 1,
            other => panic!("{e} ended {other}"),
        }
        assert!(receiver.count(e) <= 1, "{e} arrived twice");
    }
    // Only what was tried while it answered 503 failed (one more if a probe crossed the
    // change of answer); the rest waited.
    assert!(failed as u64 <= tried + 1, "{failed} failed, {tried} tried");
    assert!(failed < 40, "{failed} failed");
    assert_eq!(state(&b.api)["status"], "active");
    assert_eq!(state(&a.api)["status"], "active");
}

#[test]
fn postgresql_setup_mistakes_are_named_with_what_to_do() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::postgresql_setup_mistakes_are_named_with_what_to_do",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let base = crate::support::pg_base().unwrap();
    let (root, _) = base.rsplit_once('/').unwrap();
    let host = root.rsplit_once('@').map_or(root, |(_, h)| h);
    let mut su = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    // A role with no rights on schema public (PostgreSQL 15+), in a database it does not own.
    let _ = su.batch_execute("DROP DATABASE IF EXISTS wh_setup_weak");
    let _ = su.batch_execute("DROP ROLE IF EXISTS wh_weak");
    su.batch_execute("CREATE ROLE wh_weak LOGIN").unwrap();
    su.batch_execute("CREATE DATABASE wh_setup_weak").unwrap();
    let start = |url: &str| {
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", url])
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cases = [
        (
            format!("postgres://wh_weak@{host}/wh_setup_weak"),
            "SQLSTATE 42501",
        ),
        (
            format!("postgres://wh_weak@{host}/wh_no_such_db"),
            "SQLSTATE 3D000",
        ),
        (
            format!("postgres://wh_nobody@{host}/postgres"),
            "SQLSTATE 28000",
        ),
        (
            "postgres://webhooks@127.0.0.1:9/x".to_owned(),
            "is PostgreSQL running",
        ),
    ];
    for (url, says) in cases {
        let (code, err) = start(&url);
        assert_eq!(code, Some(1), "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains("db error"), "{err}");
    }
    let (_, err) = start(&format!("postgres://wh_weak@{host}/wh_setup_weak"));
    assert!(err.contains("GRANT CREATE ON SCHEMA public"), "{err}");
}

/// A node whose clock is off the database's by more than a second is refused at start, in one
/// line that says what to do: its lease and every time it writes are judged against the
/// database's clock. The node's clock is moved by libfaketime (Debian's `libfaketime`, which
/// scripts/test installs).
#[test]
fn a_node_whose_clock_is_off_the_databases_is_refused_in_one_line() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_node_whose_clock_is_off_the_databases_is_refused_in_one_line",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let Some(faketime) = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        .iter()
        .map(|arch| format!("/usr/lib/{arch}/faketime/libfaketime.so.1"))
        .find(|p| Path::new(p).exists())
    else {
        return crate::support::skipped(
            "cluster::a_node_whose_clock_is_off_the_databases_is_refused_in_one_line",
            "needs Debian's libfaketime (scripts/test installs it)",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let url = crate::support::database_for(&dir.path().join("skew")).unwrap();
    let start = |offset: &str| {
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
            .args(["--node-id", "skewed"])
            .current_dir(dir.path())
            .env("LD_PRELOAD", &faketime)
            .env("FAKETIME", offset)
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for offset in ["+10s", "-10s"] {
        let (code, err) = start(offset);
        assert_eq!(code, Some(1), "{offset}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{offset}: one line: {err}");
        assert!(err.contains("clock is"), "{offset}: {err}");
        assert!(err.contains("off the database's"), "{offset}: {err}");
        assert!(err.contains("NTP"), "{offset}: says what to do: {err}");
    }
    // Nothing was made on the database by a refused node: it checks the clock first.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a refused node migrates nothing");
}

#[test]
fn a_key_made_on_one_node_works_on_the_other_at_once() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::a_key_made_on_one_node_works_on_the_other_at_once",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let (a, b, admin, _, _) = two_nodes(&data, "4");
    for (i, (maker, user)) in [(&a, &b), (&b, &a)].into_iter().enumerate() {
        // A provisioning script: create a customer through one node, use its key through
        // the other at once (no wait for the NOTIFY).
        let (st, c) = maker.api.post(
            "/api/v1/customers",
            &admin,
            &json!({"name": format!("provisioned-{i}")}),
        );
        assert_eq!(st, 201, "{c}");
        let key = c["api_key"].as_str().unwrap();
        let (st, eps) = user.api.get("/api/v1/endpoints", key);
        assert_eq!(st, 200, "{eps}");
        let (st, made) = user.api.post(
            "/api/v1/endpoints",
            key,
            &json!({"url": "http://127.0.0.1:9/", "events": ["*"]}),
        );
        assert_eq!(st, 201, "{made}");
        // A deleted key stops working on every node once the NOTIFY arrives.
        let cid = c["id"].as_str().unwrap();
        let (_, keys) = maker
            .api
            .get(&format!("/api/v1/customers/{cid}/api-keys"), &admin);
        let key_id = keys["data"][0]["id"].as_str().unwrap();
        let (st, _) = maker.api.delete(
            &format!("/api/v1/customers/{cid}/api-keys/{key_id}"),
            &admin,
        );
        assert_eq!(st, 204);
        wait_for(
            10,
            "the deleted key to stop working on the other node",
            || (user.api.get("/api/v1/endpoints", key).0 == 401).then_some(()),
        );
    }
    // A wrong key is still 401 (after the database said no), not an error.
    let (st, _) = b
        .api
        .get("/api/v1/endpoints", "whk_not_a_key_anywhere_0000000000");
    assert_eq!(st, 401);
}

#[test]
fn three_nodes_starting_at_once_on_an_empty_database_migrate_and_bootstrap_once() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::three_nodes_starting_at_once_on_an_empty_database_migrate_and_bootstrap_once",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let nodes: Vec<Proc> = std::thread::scope(|scope| {
        let started: Vec<_> = ["n1", "n2", "n3"]
            .into_iter()
            .map(|id| {
                let data = &data;
                scope.spawn(move || node(data, id, "4"))
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bootstrapped: Vec<&Proc> = nodes.iter().filter(|n| !n.secrets.is_empty()).collect();
    assert_eq!(bootstrapped.len(), 1, "exactly one node prints the secrets");
    let admin = bootstrapped[0].secret("admin token:");
    for n in &nodes {
        let (st, status) = n.api.get("/api/v1/status", &admin);
        assert_eq!(st, 200, "{status}");
        let (_, customers) = n.api.get("/api/v1/customers", &admin);
        assert_eq!(
            customers["data"].as_array().unwrap().len(),
            1,
            "one default customer"
        );
        let (_, types) = n.api.get("/api/v1/event-types", &admin);
        assert_eq!(
            types["data"].as_array().unwrap().len(),
            7,
            "the catalog seeded once"
        );
    }
}

#[test]
fn the_send_budget_is_one_for_the_cluster_not_one_per_node() {
    if !on_postgres() {
        return crate::support::skipped(
            "cluster::the_send_budget_is_one_for_the_cluster_not_one_per_node",
            "needs PostgreSQL; scripts/test runs it in its PostgreSQL pass",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let flags = |id: &'static str| {
        vec![
            "--node-id",
            id,
            "--workers",
            "4",
            "--max-sends-per-customer-per-min",
            "5",
        ]
    };
    let a = Proc::start_with(&data, &flags("budget-a"));
    let b = Proc::start_with(&data, &flags("budget-b"));
    let key = a.secret("api key (customer default):");
    let (st, ep) = a.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "max_hold_secs": 0}),
    );
    assert_eq!(st, 201, "{ep}");
    let test = format!("/api/v1/endpoints/{}/test", ep["id"].as_str().unwrap());
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..8 {
        let api = if i % 2 == 0 { &a.api } else { &b.api };
        match api.send("POST", &test, &key, None, &[]).0 {
            202 => ok += 1,
            429 => refused += 1,
            other => panic!("test send answered {other}"),
        }
    }
    assert_eq!((ok, refused), (5, 3), "five a minute across both nodes");
}
