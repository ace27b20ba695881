//! A webhook receiver as a customer would write it: it verifies every request's signature
//! over the raw body with a Standard Webhooks library before it trusts or parses anything.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_… cargo run --manifest-path examples/receiver/Cargo.toml
//! ```
//! (listening on 127.0.0.1:9002, or `RECEIVER_ADDR`), then register
//! `http://127.0.0.1:9002/webhooks` as an endpoint. Answers 204 to a verified
//! webhook and 401 to anything else.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use standardwebhooks::Webhook;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let secret = std::env::var("WEBHOOK_SECRET")
        .expect("set WEBHOOK_SECRET to the endpoint's whsec_… signing secret");
    let addr = std::env::var("RECEIVER_ADDR").unwrap_or_else(|_| "127.0.0.1:9002".into());
    let webhook = web::Data::new(Webhook::new(&secret).expect("a whsec_… secret"));
    println!("receiver listening on http://{addr}/webhooks");
    HttpServer::new(move || {
        App::new()
            .app_data(webhook.clone())
            .route("/webhooks", web::post().to(receive))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}

async fn receive(req: HttpRequest, body: web::Bytes, webhook: web::Data<Webhook>) -> HttpResponse {
    // The library wants the `http` crate's header map.
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    // Verify the bytes exactly as received: parsing and re-serialising the JSON first would
    // change them, and the signature would (rightly) no longer match.
    if let Err(e) = webhook.verify(&body, &headers) {
        println!("rejected a request: {e}");
        return HttpResponse::Unauthorized().finish();
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    match payload["event"].as_str() {
        Some("transactions.fetched") => println!(
            "new transactions for consent {}: {}",
            payload["data"]["consentId"], payload["data"]["addedTransactionsCount"]
        ),
        Some(other) => println!("{other}: {}", payload["data"]),
        None => return HttpResponse::BadRequest().finish(),
    }
    // Answer fast; do slow work after answering. The sender does not retry.
    HttpResponse::NoContent().finish()
}
