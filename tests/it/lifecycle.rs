//! Black-box tests of the real binary: first start, restart, kill -9 mid-delivery, SIGTERM,
//! a second process on the same file, a newer data file, bad flags.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{BIN, Proc, Receiver, Reply, wait_for};

#[test]
fn a_killed_in_flight_delivery_is_interrupted_and_pending_ones_are_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::start(Reply::Hang);

    // One worker: exactly one delivery in flight (an endpoint starts with 4 otherwise).
    let mut p = Proc::start_with(&data, &["--workers", "1"]);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    let (_, customers) = p.api.get("/api/v1/customers", &admin);
    let cus = customers["data"][0]["id"].as_str().unwrap().to_owned();
    let (st, _) = p.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/"), "events": ["*"]}),
    );
    assert_eq!(st, 201);
    // 4 workers: an endpoint not yet known to answer has its share (one) in flight and
    // claims nothing ahead while it cannot send; the rest waits in the store.
    let events: Vec<String> = (0..4)
        .map(|i| {
            let (st, e) = p.api.post(
                "/api/v1/events",
                &admin,
                &json!({"customer_id": cus, "event": "transactions.fetched", "data": {"n": i}}),
            );
            assert_eq!(st, 202);
            e["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let in_flight = receiver.next(10);
    let in_flight_id = in_flight.header("webhook-id").unwrap().to_owned();
    assert_eq!(in_flight_id, events[0]);
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();

    receiver.set_reply(Reply::Status(200, "ok"));
    let p = Proc::start(&data);
    assert_eq!(
        p.banner.len(),
        1,
        "later starts print no secrets: {:?}",
        p.banner
    );
    let mut got: Vec<String> = (0..3)
        .map(|_| receiver.next(10).header("webhook-id").unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, events[1..].to_vec());
    let statuses: Vec<String> = events
        .iter()
        .map(|id| {
            wait_for(20, "the deliveries to finish", || {
                let (_, e) = p.api.get(&format!("/api/v1/events/{id}"), &key);
                let s = e["deliveries"][0]["status"].as_str()?.to_owned();
                (s != "pending" && s != "sending").then_some(s)
            })
        })
        .collect();
    // The one in flight is interrupted; what was still pending is sent.
    assert_eq!(
        statuses,
        ["interrupted", "succeeded", "succeeded", "succeeded"]
    );
    let (_, e) = p.api.get(&format!("/api/v1/events/{}", events[0]), &key);
    assert_eq!(e["deliveries"][0]["error"], "interrupted");
    // The interrupted one is never sent again by itself.
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.drain().is_empty());
    // The data survived: the endpoint, the events and the old secrets.
    let (st, eps) = p.api.get("/api/v1/endpoints", &key);
    assert_eq!((st, eps["data"].as_array().unwrap().len()), (200, 1));
}

#[test]
fn sigterm_and_sigint_stop_the_server_with_exit_code_zero() {
    for sig in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Proc::start(&dir.path().join("w.redb"));
        assert_eq!(p.api.get("/healthz", "").0, 200);
        p.signal(sig);
        assert_eq!(p.wait_exit(), 0, "{sig}");
    }
}

#[test]
fn a_second_process_on_the_same_data_file_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let _first = Proc::start(&data);
    let mut second = Command::new(BIN);
    second.args(["serve", "--listen", "127.0.0.1:0"]);
    let expected = match crate::support::database_for(&data) {
        // On PostgreSQL the same node id (the host name) is what is in use.
        Some(url) => {
            second.args(["--database", &url]);
            "is held by a live webhooks process"
        }
        None => {
            second.arg("--data").arg(&data);
            "already in use by another webhooks process"
        }
    };
    let out = second.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(expected), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_data_file_from_a_newer_version_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    {
        let db = redb::Database::create(&data).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        tx.open_table(meta)
            .unwrap()
            .insert("schema_version", 999u64.to_le_bytes().as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer webhooks (schema 999)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        vec!["serve", "--workers", "0"],
        vec!["serve", "--listen", "not-an-address"],
        vec!["serve", "--request-timeout-secs", "0"],
        vec!["no-such-command"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    // Two stores named at once: one line, nothing started.
    let out = Command::new(BIN)
        .args(["serve", "--data", "w.redb"])
        .env("WEBHOOKS_DATABASE", "postgres://nobody@127.0.0.1:9/none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("two different stores"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The lease is PostgreSQL's: a long request timeout on the data file is fine.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--request-timeout-secs",
            "30",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--data", "/proc/no-such-dir/w.redb"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the data file"), "{err}");
}

#[test]
fn sigterm_leaves_what_was_not_started_pending() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let receiver = Receiver::start(Reply::Hang);
    // One worker: exactly one delivery in flight (an endpoint starts with 4 otherwise).
    let mut p = Proc::start_with(&data, &["--workers", "1"]);
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    let (_, customers) = p.api.get("/api/v1/customers", &admin);
    let cus = customers["data"][0]["id"].as_str().unwrap().to_owned();
    p.api.post(
        "/api/v1/endpoints",
        &key,
        &json!({"url": receiver.url("/"), "events": ["*"]}),
    );
    let events: Vec<String> = (0..3)
        .map(|_| {
            let (_, e) = p.api.post(
                "/api/v1/events",
                &admin,
                &json!({"customer_id": cus, "event": "consent.status.updated", "data": {}}),
            );
            e["id"].as_str().unwrap().to_owned()
        })
        .collect();
    receiver.next(10); // one in flight (one worker), hanging
    p.signal("-TERM");
    assert_eq!(p.wait_exit(), 0);

    receiver.set_reply(Reply::Status(200, ""));
    let p = Proc::start(&data);
    let statuses: Vec<String> = events
        .iter()
        .map(|id| {
            wait_for(20, "the deliveries to finish", || {
                let (_, e) = p.api.get(&format!("/api/v1/events/{id}"), &key);
                let s = e["deliveries"][0]["status"].as_str()?.to_owned();
                (s != "pending" && s != "sending").then_some(s)
            })
        })
        .collect();
    assert_eq!(statuses, ["interrupted", "succeeded", "succeeded"]);
}

#[test]
fn an_unusable_data_path_is_one_clear_line() {
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/proc/no-such-dir/w.redb",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the data file /proc/no-such-dir/w.redb"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_first_start_without_a_terminal_leaves_its_secrets_in_an_owner_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.redb");
    let p = Proc::start(&data);
    // stdout is a pipe (a service's journal, say): no secret on it, only where they are.
    assert_eq!(p.banner.len(), 2, "{:?}", p.banner);
    assert!(
        !p.banner
            .iter()
            .any(|l| l.contains("wha_") || l.contains("whk_"))
    );
    let file = if crate::support::on_postgres() {
        dir.path().join("webhooks.first-start.txt") // the working directory's
    } else {
        dir.path().join("w.redb.first-start.txt")
    };
    assert!(
        p.banner[1].contains(file.to_str().unwrap()),
        "{:?}",
        p.banner
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The secrets in it work.
    let admin = p.secret("admin token:");
    let key = p.secret("api key (customer default):");
    assert!(admin.starts_with("wha_") && key.starts_with("whk_"));
    assert_eq!(p.api.get("/api/v1/customers", &admin).0, 200);
    assert_eq!(p.api.get("/api/v1/endpoints", &key).0, 200);
}
