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
    /// `--customer` and the admin token: register for that customer as the operator.
    pub operator: Option<(String, Option<String>)>,
    pub events: String,
    pub secret: Option<String>,
    pub status: u16,
    pub delay_ms: u64,
    /// Relay each verified request to this URL and answer what it answers.
    pub forward_to: Option<String>,
    /// One JSON object per request on stdout; everything else on stderr.
    pub json: bool,
}

struct Shared {
    secret: Option<String>,
    status: actix_web::http::StatusCode,
    delay: Duration,
    colour: bool,
    json: bool,
    forward: Option<(String, ureq::Agent)>,
}

/// A line for people: on stdout, or on stderr when stdout carries JSON.
fn note(json: bool, text: &str) {
    if json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// Most of an app's answer that is passed back (and shown).
const FORWARDED_BODY: u64 = 64 * 1024;

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
    let forward = match opts.forward_to.as_deref().map(str::trim) {
        None => None,
        Some(to) if to.starts_with("http://") || to.starts_with("https://") => {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .new_agent();
            Some((to.to_owned(), agent))
        }
        Some(to) => {
            return Err(ClientError::Usage(format!(
                "--forward-to must be an http:// or https:// URL, not {to:?}"
            )));
        }
    };
    // Who registers the endpoint: the customer's key, or the operator for a named customer.
    let registrar = match (&opts.api_key, &opts.operator) {
        (Some(key), _) => Some((
            Client::new(
                &opts.server,
                opts.server_ca_file.as_deref(),
                Some(key.clone()),
                "--api-key / WEBHOOKS_API_KEY",
            ),
            String::new(),
        )),
        (None, Some((customer, token))) => {
            let client = Client::new(
                &opts.server,
                opts.server_ca_file.as_deref(),
                token.clone(),
                "--token / WEBHOOKS_ADMIN_TOKEN",
            );
            let id = super::resolve_customer(&client, customer)?;
            Some((client, format!("?customer_id={id}")))
        }
        (None, None) => None,
    };
    let secret = match registrar {
        Some((client, scope)) => {
            let events = parse_events(&opts.events);
            let (id, secret, reused) = register(&client, &scope, &url, &events)?;
            note(
                opts.json,
                &format!(
                    "{} endpoint {id} → {url} (events: {})",
                    if reused { "reusing" } else { "registered" },
                    events.join(",")
                ),
            );
            note(opts.json, &format!("secret: {secret}"));
            Some(secret)
        }
        None => opts.secret.clone(),
    };
    if secret.is_none() {
        note(
            opts.json,
            "no --api-key (or --customer with the admin token) or --secret: signatures will not be verified",
        );
    }
    match &forward {
        Some((to, _)) => note(
            opts.json,
            &format!("listening on {url} (forwarding verified requests to {to}) — Ctrl-C to stop"),
        ),
        None => note(
            opts.json,
            &format!(
                "listening on {url} (answering {}) — Ctrl-C to stop",
                status.as_u16()
            ),
        ),
    }
    let shared = Arc::new(Shared {
        secret,
        status,
        delay: Duration::from_millis(opts.delay_ms),
        colour: std::io::stdout().is_terminal() && !opts.json,
        json: opts.json,
        forward,
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
    scope: &str,
    url: &str,
    events: &[String],
) -> Result<(String, String, bool), ClientError> {
    let existing = client
        .get_all(&format!("/api/v1/endpoints{scope}"))?
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
            (
                client.post(&format!("/api/v1/endpoints{scope}"), &body.to_string())?,
                false,
            )
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
    if shared.json {
        // Exact JSON: strings carry any control character escaped.
        let line = serde_json::json!({
            "time": rfc3339(now_ms()),
            "event": parsed.as_ref().and_then(|v| v["event"].as_str()),
            "id": header("webhook-id"),
            "verified": verdict.is_ok(),
            "detail": match &verdict { Ok(v) | Err(v) => v },
            "body": parsed.clone().unwrap_or_else(|| Value::from(String::from_utf8_lossy(&body).into_owned())),
        });
        println!("{line}");
    } else {
        println!(
            "\n{} {} {} {}\n{}\n{}",
            paint("2", &rfc3339(now_ms())),
            req.method(),
            paint("1", &event),
            id,
            verdict_line,
            pretty
        );
    }
    if !shared.delay.is_zero() {
        actix_web::rt::time::sleep(shared.delay).await;
    }
    if let Some((to, agent)) = &shared.forward {
        if verdict.is_err() {
            note(
                shared.json,
                &paint("31", "not forwarded: the signature was not verified"),
            );
            return HttpResponse::Unauthorized().finish();
        }
        let headers: Vec<(String, String)> = [
            "content-type",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ]
        .iter()
        .filter_map(|h| header(h).map(|v| ((*h).to_owned(), v.to_owned())))
        .collect();
        let (to, agent) = (to.clone(), agent.clone());
        let started = std::time::Instant::now();
        let answered = web::block(move || -> Result<(u16, Vec<u8>), String> {
            let mut req = agent.post(&to);
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            let mut resp = req.send(&body[..]).map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .body_mut()
                .with_config()
                .limit(FORWARDED_BODY)
                .read_to_vec()
                .unwrap_or_default();
            Ok((status, body))
        })
        .await;
        let took = started.elapsed().as_millis();
        return match answered {
            Ok(Ok((status, body))) => {
                let text = printable(&String::from_utf8_lossy(&body));
                let line = format!("→ your app answered {status} in {took} ms");
                note(
                    shared.json,
                    &format!(
                        "{}{}",
                        paint(if status < 300 { "32" } else { "31" }, &line),
                        if text.is_empty() {
                            String::new()
                        } else {
                            format!("\n{text}")
                        }
                    ),
                );
                let code = actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
                HttpResponse::build(code).body(body)
            }
            Ok(Err(e)) => {
                note(
                    shared.json,
                    &paint("31", &format!("→ your app did not answer: {e}")),
                );
                HttpResponse::BadGateway().finish()
            }
            Err(e) => {
                note(shared.json, &paint("31", &format!("→ cannot forward: {e}")));
                HttpResponse::BadGateway().finish()
            }
        };
    }
    HttpResponse::build(shared.status).finish()
}
