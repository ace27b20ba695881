//! The examples a newcomer copies (`examples/receiver`, `examples/producer`), run as
//! processes against a real server.

use std::path::PathBuf;
use std::process::Command;

use crate::support::TestServer;
use crate::support::{Running, run};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    target.join("examples").join(name)
}

/// `examples/receiver`, a package of its own (it builds without the server's test
/// dependencies): built here into target/receiver the first time.
fn example_receiver() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target").join("receiver");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(root.join("examples/receiver/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("cargo builds examples/receiver");
    assert!(status.success(), "examples/receiver does not build");
    target.join("debug").join("webhooks-example-receiver")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_example_receiver_accepts_a_real_delivery_and_rejects_a_tampered_one() {
    let s = TestServer::start();
    let port = free_port();
    let ep = s.endpoint(&s.key, &format!("http://127.0.0.1:{port}/webhooks"), &["*"]);
    let mut cmd = Command::new(example_receiver());
    cmd.env("WEBHOOK_SECRET", ep["secret"].as_str().unwrap())
        .env("RECEIVER_ADDR", format!("127.0.0.1:{port}"));
    let r = Running::spawn(cmd);
    r.line_with("receiver listening");
    let accepted = s.event(
        &s.default_customer(),
        "transactions.fetched",
        r#"{"consentId":"c1","addedTransactionsCount":"3"}"#,
    );
    let d = &s.finished_deliveries_of(&s.key, accepted["id"].as_str().unwrap(), 1)[0];
    assert_eq!(
        (d["status"].as_str(), d["response_status"].as_u64()),
        (Some("succeeded"), Some(204))
    );
    r.line_with("new transactions for consent \"c1\"");

    // The same request with one byte of the body changed is refused.
    let api = crate::support::Api::new(&format!("http://127.0.0.1:{port}"));
    let ts = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .to_string();
    let (st, _) = api.send_raw(
        "POST",
        "/webhooks",
        "",
        Some(br#"{"event":"transactions.fetched","data":{}}"#),
        &[
            ("webhook-id", "evt_x"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", "v1,AAAA"),
        ],
    );
    assert_eq!(st, 401);
}

#[test]
fn the_example_producer_is_idempotent() {
    let s = TestServer::start();
    let cus = s.default_customer();
    let produce = || {
        let mut cmd = Command::new(example("producer"));
        cmd.arg(&cus)
            .arg("sync-7")
            .env("WEBHOOKS_SERVER", &s.api.base)
            .env("WEBHOOKS_ADMIN_TOKEN", &s.admin);
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let first = produce();
    let second = produce();
    assert_eq!(first["id"], second["id"]);
    let (_, events) = s.api.get("/api/v1/events", &s.key);
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    assert_eq!(events["data"][0]["data"]["consentId"], "cns_51d0e2");
}
