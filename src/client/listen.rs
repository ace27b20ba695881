//! `webhooks listen`: a receiver for a developer's terminal. It can register itself as an
//! endpoint, verifies every request's signature, prints it, and answers as told.

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::{Client, ClientError};
use crate::domain::signing::verify;
use crate::domain::time::{now_ms, rfc3339};

pub struct ListenOptions {
    pub listen: SocketAddr,
    pub server: String,
    pub server_ca_file: Option<std::path::PathBuf>,
    pub api_key: Option<String>,
    pub events: String,
    pub secret: Option<String>,
    pub status: u16,
    pub delay_ms: u64,
}

struct Shared {
    secret: Option<String>,
    status: actix_web::http::StatusCode,
    delay: Duration,
    colour: bool,
}

pub fn run(opts: ListenOptions) -> Result<(), ClientError> {
    let status = actix_web::http::StatusCode::from_u16(opts.status)
        .ok()
        .filter(|s| (200..600).contains(&s.as_u16()))
        .ok_or_else(|| {
            ClientError::Usage("--status must be an HTTP status from 200 to 599".into())
        })?;
    let listener = TcpListener::bind(opts.listen)
        .map_err(|e| ClientError::Failed(format!("cannot listen on {}: {e}", opts.listen)))?;
    let mut addr = listener
        .local_addr()
        .map_err(|e| ClientError::Failed(e.to_string()))?;
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    let url = format!("http://{addr}/");
    let secret = match &opts.api_key {
        Some(key) => {
            let client = Client::new(
                &opts.server,
                opts.server_ca_file.as_deref(),
                Some(key.clone()),
                "--api-key / WEBHOOKS_API_KEY",
            );
            let events = parse_events(&opts.events);
            let (id, secret, reused) = register(&client, &url, &events)?;
            println!(
                "{} endpoint {id} → {url} (events: {})",
                if reused { "reusing" } else { "registered" },
                events.join(",")
            );
            println!("secret: {secret}");
            Some(secret)
        }
        None => opts.secret.clone(),
    };
    if secret.is_none() {
        println!("no --api-key or --secret: signatures will not be verified");
    }
    println!(
        "listening on {url} (answering {}) — Ctrl-C to stop",
        status.as_u16()
    );
    let shared = Arc::new(Shared {
        secret,
        status,
        delay: Duration::from_millis(opts.delay_ms),
        colour: std::io::stdout().is_terminal(),
    });
    let sys = actix_web::rt::System::new();
    sys.block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)?
        .run();
        server.await
    })
    .map_err(|e| ClientError::Failed(format!("the receiver stopped: {e}")))
}

/// The text with control characters (but line breaks) shown as `�`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn parse_events(events: &str) -> Vec<String> {
    events
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Finds this URL's endpoint (or creates it) and makes it match `events`.
fn register(
    client: &Client,
    url: &str,
    events: &[String],
) -> Result<(String, String, bool), ClientError> {
    let existing = client
        .get_all("/api/v1/endpoints")?
        .into_iter()
        .find(|e| e["url"] == url);
    let ep = match existing {
        Some(e) => {
            let id = e["id"].as_str().unwrap_or_default().to_owned();
            let body = json!({ "events": events, "enabled": true });
            (
                client.patch(&format!("/api/v1/endpoints/{id}"), &body.to_string())?,
                true,
            )
        }
        None => {
            let body = json!({ "url": url, "events": events, "description": "webhooks listen" });
            (client.post("/api/v1/endpoints", &body.to_string())?, false)
        }
    };
    let (ep, reused) = ep;
    Ok((
        ep["id"].as_str().unwrap_or_default().to_owned(),
        ep["secret"].as_str().unwrap_or_default().to_owned(),
        reused,
    ))
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Arc<Shared>>,
) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let verdict = match &shared.secret {
        Some(secret) => match verify(
            secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
            now_ms() / 1000,
        ) {
            Ok(()) => Ok("signature verified".to_owned()),
            Err(e) => Err(format!("signature NOT verified: {e}")),
        },
        None => Err("signature NOT verified: no secret (pass --api-key or --secret)".to_owned()),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    // Whoever reaches this port chooses these bytes: no terminal control sequences pass.
    let event = printable(
        parsed
            .as_ref()
            .and_then(|v| v["event"].as_str())
            .unwrap_or("(no event name)"),
    );
    let pretty = printable(
        &parsed
            .as_ref()
            .and_then(|v| serde_json::to_string_pretty(v).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
    );
    let id = printable(header("webhook-id").unwrap_or("(no webhook-id)"));
    let paint = |code: &str, text: &str| {
        if shared.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let verdict_line = match &verdict {
        Ok(v) => paint("32", v),
        Err(v) => paint("31", v),
    };
    println!(
        "\n{} {} {} {}\n{}\n{}",
        paint("2", &rfc3339(now_ms())),
        req.method(),
        paint("1", &event),
        id,
        verdict_line,
        pretty
    );
    if !shared.delay.is_zero() {
        actix_web::rt::time::sleep(shared.delay).await;
    }
    HttpResponse::build(shared.status).finish()
}
