//! `webhooks backup` while the server runs: a consistent copy that restores everything, and
//! never the live data file.

use std::process::Command;

use crate::support::TestServer;
use crate::support::{BIN, run, webhooks};

#[test]
fn a_backup_taken_while_serving_restores_everything() {
    let s = TestServer::start();
    if crate::support::on_postgres() {
        // PostgreSQL's backups are its own: the route and the command say so.
        let (st, body) = s
            .api
            .post("/api/v1/backup", &s.admin, &serde_json::json!({}));
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (409, Some("not_supported")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("pg_dump")
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("backup.redb");
        let (code, _, err) = run(webhooks(&s, &["backup", "--out", out.to_str().unwrap()]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!out.exists());
        return;
    }
    let r = crate::support::Receiver::start(crate::support::Reply::Status(200, "ok"));
    let ep = s.endpoint(&s.key, &r.url("/"), &["*"]);
    let evt = s.event(
        &s.default_customer(),
        "transactions.fetched",
        r#"{"n":"1"}"#,
    );
    let evt_id = evt["id"].as_str().unwrap();
    s.finished_deliveries_of(&s.key, evt_id, 1);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup.redb");
    let (code, stdout, err) = run(webhooks(&s, &["backup", "--out", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("wrote "), "{stdout}");

    // Restoring is starting a server on the copy: same keys, same objects.
    let restored = webhooks::serve::Server::start(&crate::support::serve_args(out)).unwrap();
    assert!(restored.first_start.is_none());
    let api = crate::support::Api::new(&format!("http://{}", restored.addr));
    let (st, eps) = api.get("/api/v1/endpoints", &s.key);
    assert_eq!(st, 200);
    assert_eq!(eps["data"][0]["id"], ep["id"]);
    assert_eq!(eps["data"][0]["secret"], ep["secret"]);
    let (st, e) = api.get(&format!("/api/v1/events/{evt_id}"), &s.key);
    assert_eq!(st, 200);
    assert_eq!(e["data"]["n"], "1");
    assert_eq!(e["deliveries"][0]["status"], "succeeded");
    assert_eq!(api.get("/api/v1/customers", &s.admin).0, 200);
    restored.shutdown();

    let (code, _, err) = run(webhooks(
        &s,
        &["backup", "--out", "/nonexistent-dir/x.redb"],
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot write"), "{err}");
}

#[test]
fn a_backup_never_replaces_the_live_data_file_and_asks_before_overwriting() {
    use std::os::unix::fs::PermissionsExt;
    if crate::support::on_postgres() {
        return crate::support::skipped(
            "backup::a_backup_never_replaces_the_live_data_file_and_asks_before_overwriting",
            "a data file's test (no data file to protect; the 409 is tested above); not on PostgreSQL",
        );
    }
    let mut s = TestServer::start();
    let live = s.data.clone();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&live), 0o600, "the data file holds secrets");

    // The live file, by its own name, through a symlink and through a hard link: refused,
    // with --force too.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link.redb");
    std::os::unix::fs::symlink(&live, &link).unwrap();
    let hard = live.with_file_name("hard.redb");
    std::fs::hard_link(&live, &hard).unwrap();
    for target in [&live, &link, &hard] {
        for extra in [&[][..], &["--force"][..]] {
            let mut args = vec!["backup", "--out", target.to_str().unwrap()];
            args.extend_from_slice(extra);
            let (code, _, err) = run(webhooks(&s, &args));
            assert_eq!(code, 2, "{target:?} {extra:?}: {err}");
            assert!(
                err.contains("live data file") || err.contains("--force"),
                "{err}"
            );
        }
    }
    std::fs::remove_file(&hard).unwrap();

    // A later write survives a restart: the live file was left alone.
    let customer = s.default_customer();
    let evt = s.event(&customer, "transactions.fetched", r#"{"after":"backup"}"#);
    let evt_id = evt["id"].as_str().unwrap().to_owned();
    let (key, admin) = (s.key.clone(), s.admin.clone());
    s.stop();
    let again = crate::support::restart_on(live.clone());
    let api = crate::support::Api::new(&format!("http://{}", again.addr));
    let (st, e) = api.get(&format!("/api/v1/events/{evt_id}"), &key);
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["data"]["after"], "backup");

    // An ordinary target: written owner-only; a second time only with --force.
    let out = dir.path().join("copy.redb");
    let backup = |extra: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["backup", "--out", out.to_str().unwrap()])
            .args(extra)
            .env("WEBHOOKS_SERVER", &api.base)
            .env("WEBHOOKS_ADMIN_TOKEN", &admin);
        run(cmd)
    };
    let (code, _, err) = backup(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&out), 0o600);
    let (code, _, err) = backup(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, _, err) = backup(&["--force"]);
    assert_eq!(code, 0, "{err}");
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    again.shutdown();
}
