//! Setting up several nodes on one PostgreSQL database (only when the suite runs against a
//! test cluster, `WEBHOOKS_TEST_DATABASE`): `import` of a data file, a newer schema refused,
//! setup mistakes and a node's clock named in one line, three nodes starting at once.

use std::path::Path;

use serde_json::json;

use crate::support::{Api, BIN, Proc, Receiver, database_for, on_postgres, serve_args, wait_for};

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
    api.settled(20);
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
                scope.spawn(move || Proc::node(data, id, "4"))
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
