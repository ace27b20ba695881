//! TLS both ways: HTTPS deliveries to a receiver behind a private CA (`--ca-file`), and the
//! API and portal served over HTTPS (`--tls-cert`/`--tls-key`) with a `Secure` cookie.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::pki::Pki;
use crate::support::{Receiver, Reply, TestServer};

fn https_receiver_delivery(ca_file: Option<&Path>, pki: &Pki) -> serde_json::Value {
    let ca = ca_file.map(Path::to_path_buf);
    let s = TestServer::start_with(move |a| a.ca_file = ca);
    let r = Receiver::start_tls(Reply::Status(200, "secure"), pki.server_config());
    s.endpoint(
        &s.key,
        &format!("https://localhost:{}/hook", r.port),
        &["*"],
    );
    let e = s.event(&s.default_customer(), "transactions.fetched", "{}");
    s.finished_deliveries_of(&s.key, e["id"].as_str().unwrap(), 1)[0].clone()
}

#[test]
fn https_deliveries_trust_a_private_ca_only_when_told() {
    let pki = Pki::new();
    let d = https_receiver_delivery(Some(&pki.ca), &pki);
    assert_eq!(
        (d["status"].as_str(), d["response_body"].as_str()),
        (Some("succeeded"), Some("secure"))
    );
    let d = https_receiver_delivery(None, &pki);
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("failed"), Some("tls")),
        "{d}"
    );
}

#[test]
fn the_api_and_portal_are_served_over_https() {
    let pki = Pki::new();
    let (cert, key) = (pki.cert.clone(), pki.key.clone());
    let s = TestServer::start_with(move |a| {
        a.tls_cert = Some(cert);
        a.tls_key = Some(key);
    });
    let port = s.api.base.rsplit(':').next().unwrap().to_owned();
    let ca = std::fs::read(&pki.ca).unwrap();
    let roots: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&ca)
        .filter_map(|i| match i.unwrap() {
            ureq::tls::PemItem::Certificate(c) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
                .build(),
        )
        .build()
        .new_agent();
    let base = format!("https://localhost:{port}");
    let mut health = agent.get(format!("{base}/healthz")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        health.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="),
        "HSTS over TLS"
    );
    assert!(
        health
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("\"ok\"")
    );
    let login = agent.get(format!("{base}/")).call().unwrap();
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // The client commands: a private CA is named as the TLS failure it is, and trusted when
    // given.
    let webhooks = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_webhooks"))
            .args(["status", "--server", &base])
            .args(extra)
            .env("WEBHOOKS_ADMIN_TOKEN", &s.admin)
            .env_remove("WEBHOOKS_SERVER_CA_FILE")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = webhooks(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: TLS:"), "{err}");
    assert!(err.contains("--server-ca-file"), "{err}");
    let (code, out, err) = webhooks(&["--server-ca-file", pki.ca.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(reachable)"), "{out}");
    // Plain HTTP to the HTTPS port gets nowhere.
    let plain = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .call();
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);
}
