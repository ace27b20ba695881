//! How EnableNow's side posts an event: the admin token, the customer's id, the event, and an
//! Idempotency-Key made from the business fact, so that retrying after a network error can
//! never create the event twice.
//!
//! ```sh
//! WEBHOOKS_ADMIN_TOKEN=wha_… cargo run --example producer -- cus_…
//! ```

use std::time::Duration;

fn main() {
    let server =
        std::env::var("WEBHOOKS_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("WEBHOOKS_ADMIN_TOKEN").expect("set WEBHOOKS_ADMIN_TOKEN");
    let customer = std::env::args()
        .nth(1)
        .expect("usage: producer CUSTOMER_ID [SYNC_RUN]");
    let sync_run = std::env::args().nth(2).unwrap_or_else(|| "run-1".into());

    // The business fact: this consent's transactions were fetched by this sync run.
    let consent = "cns_51d0e2";
    let body = serde_json::json!({
        "customer_id": customer,
        "event": "transactions.fetched",
        "data": {
            "userId": "usr_7f3a9c",
            "externalUserId": "customer-42",
            "consentId": consent,
            "addedTransactionsCount": "17"
        }
    })
    .to_string();
    let idempotency_key = format!("transactions.fetched/{consent}/{sync_run}");

    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    for attempt in 1..=3 {
        let sent = agent
            .post(format!("{server}/api/v1/events"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", &idempotency_key)
            .send(body.as_bytes());
        match sent {
            Ok(mut resp) if resp.status().is_success() => {
                println!("{}", resp.body_mut().read_to_string().unwrap_or_default());
                return;
            }
            Ok(mut resp) if resp.status().is_client_error() => {
                eprintln!(
                    "refused ({}): {}",
                    resp.status(),
                    resp.body_mut().read_to_string().unwrap_or_default()
                );
                std::process::exit(2);
            }
            // A 5xx or a network error: the same key makes a retry safe.
            Ok(resp) => eprintln!("attempt {attempt}: server answered {}", resp.status()),
            Err(e) => eprintln!("attempt {attempt}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200 * attempt));
    }
    std::process::exit(1);
}
