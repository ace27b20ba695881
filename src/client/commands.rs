//! The one-shot client commands: `trigger` (and its `--wait`), `customers add|list`,
//! `event-types`, `status`, `health`, `operator-sessions end` and `backup`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Client, ClientError};

/// `webhooks trigger`: posts one event (data: the catalog example unless given).
pub fn trigger(
    client: &Client,
    event: &str,
    customer: &str,
    data: Option<&str>,
    wait: bool,
    json: bool,
) -> Result<(), ClientError> {
    let types = client.get_all("/api/v1/event-types")?;
    let Some(found) = types.iter().find(|t| t["name"] == event) else {
        let names: Vec<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
        return Err(ClientError::Usage(format!(
            "unknown event type {event:?}; valid ones: {}",
            names.join(", ")
        )));
    };
    let data = match data {
        None => found["example"].to_string(),
        Some(spec) => read_data(spec)?,
    };
    let customer_id = resolve_customer(client, customer)?;
    let body = format!(
        r#"{{"customer_id":{},"event":{},"data":{}}}"#,
        Value::from(customer_id),
        Value::from(event),
        data
    );
    let accepted = client.post("/api/v1/events", &body)?;
    let n = accepted["deliveries"].as_u64().unwrap_or(0);
    if json {
        say!("{accepted}");
        if wait && n > 0 {
            return wait_for_outcomes(client, accepted["id"].as_str().unwrap_or_default(), n, true);
        }
        return Ok(());
    }
    say!(
        "{} {} → {} {}",
        accepted["id"].as_str().unwrap_or("?"),
        event,
        n,
        if n == 1 { "delivery" } else { "deliveries" }
    );
    if n == 0 {
        say!(
            "no enabled endpoint of customer {customer} subscribes to {event}: nothing is sent \
             (register one in the portal, or run `webhooks listen --api-key …`)"
        );
    }
    if wait && n > 0 {
        return wait_for_outcomes(
            client,
            accepted["id"].as_str().unwrap_or_default(),
            n,
            false,
        );
    }
    Ok(())
}

/// `trigger --wait`: prints each delivery's outcome once all `n` have one; fails (exit 1) if
/// one did not succeed.
fn wait_for_outcomes(
    client: &Client,
    event_id: &str,
    n: u64,
    json: bool,
) -> Result<(), ClientError> {
    // Long enough for a receiver that times out (15 s by default), bounded all the same.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let deliveries = loop {
        let e = client.get(&format!("/api/v1/events/{event_id}"))?;
        let ds = e["deliveries"].as_array().cloned().unwrap_or_default();
        let done = ds
            .iter()
            .filter(|d| !matches!(d["status"].as_str(), Some("pending" | "sending")))
            .count() as u64;
        if done >= n {
            break ds;
        }
        if std::time::Instant::now() >= deadline {
            return Err(ClientError::Failed(format!(
                "{done} of {n} deliveries finished within 2 minutes"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut failed = 0;
    for d in &deliveries {
        let status = d["status"].as_str().unwrap_or("?");
        if status != "succeeded" {
            failed += 1;
        }
        if json {
            say!("{d}");
            continue;
        }
        let why = match (d["response_status"].as_u64(), d["error"].as_str()) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(e)) => e.to_owned(),
            (None, None) => String::new(),
        };
        say!(
            "{}  {}  {status}  {why}  {} ms  {}",
            d["id"].as_str().unwrap_or("?"),
            d["endpoint_id"].as_str().unwrap_or("?"),
            d["duration_ms"],
            d["url"].as_str().unwrap_or("")
        );
    }
    if failed > 0 {
        return Err(ClientError::Failed(format!(
            "{failed} of {n} deliveries did not succeed"
        )));
    }
    Ok(())
}

/// `--data '{…}'`, `--data @file.json` or `--data -` (stdin): a JSON object, as text.
fn read_data(spec: &str) -> Result<String, ClientError> {
    let text = if spec == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| ClientError::Usage(format!("cannot read --data from stdin: {e}")))?;
        s
    } else if let Some(path) = spec.strip_prefix('@') {
        std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("cannot read --data file {path}: {e}")))?
    } else {
        spec.to_owned()
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => Ok(text.trim().to_owned()),
        Ok(_) => Err(ClientError::Usage("--data must be a JSON object".into())),
        Err(e) => Err(ClientError::Usage(format!("--data is not valid JSON: {e}"))),
    }
}

/// A customer id from a name or an id.
pub(crate) fn resolve_customer(client: &Client, name_or_id: &str) -> Result<String, ClientError> {
    if name_or_id.starts_with("cus_") {
        return match client.get(&format!("/api/v1/customers/{name_or_id}")) {
            Ok(c) => Ok(c["id"].as_str().unwrap_or(name_or_id).to_owned()),
            Err(ClientError::Rejected(_)) => Err(ClientError::Usage(format!(
                "no customer has id {name_or_id}"
            ))),
            Err(e) => Err(e),
        };
    }
    client
        .get_all("/api/v1/customers")?
        .into_iter()
        .find(|c| c["name"] == name_or_id)
        .and_then(|c| c["id"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            ClientError::Usage(format!(
                "no customer named {name_or_id:?} (see `webhooks customers list`)"
            ))
        })
}

pub fn customers_add(client: &Client, name: &str, json: bool) -> Result<(), ClientError> {
    let c = client.post(
        "/api/v1/customers",
        &serde_json::json!({ "name": name }).to_string(),
    )?;
    if json {
        say!("{c}");
        return Ok(());
    }
    say!("customer: {}", c["id"].as_str().unwrap_or("?"));
    say!("name: {}", c["name"].as_str().unwrap_or("?"));
    say!("api key: {}", c["api_key"].as_str().unwrap_or("?"));
    Ok(())
}

pub fn customers_list(client: &Client, json: bool) -> Result<(), ClientError> {
    let all = client.get_all("/api/v1/customers")?;
    if !json {
        say!("{:<30}  {:<24}  NAME", "CUSTOMER", "CREATED");
        if all.is_empty() {
            say!("(none)");
        }
    }
    for c in all {
        if json {
            say!("{c}");
            continue;
        }
        say!(
            "{:<30}  {:<24}  {}",
            c["id"].as_str().unwrap_or("?"),
            c["created_at"].as_str().unwrap_or("?"),
            c["name"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// `webhooks status`: the server answers, and how it is doing.
pub fn status(client: &Client, json: bool) -> Result<(), ClientError> {
    let s = client.get("/api/v1/status")?;
    if json {
        say!("{s}");
        return Ok(());
    }
    say!("server:  {} (reachable)", client.server());
    say!("version: {}", s["version"].as_str().unwrap_or("?"));
    say!("engine:  {}", s["engine"].as_str().unwrap_or("?"));
    say!(
        "node:    {} ({} serving)",
        s["node_id"].as_str().unwrap_or("?"),
        s["nodes"]
    );
    say!(
        "queue:   {} pending, {} sending",
        s["pending"],
        s["sending"]
    );
    Ok(())
}

/// `webhooks health`: the server's `/healthz`, no credentials needed.
pub fn health(client: &Client) -> Result<(), ClientError> {
    let url = format!("{}/healthz", client.server());
    let mut resp = client
        .agent
        .get(&url)
        .call()
        .map_err(|e| client.transport_error(e, &url))?;
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap_or_default())
        .unwrap_or(Value::Null);
    match status {
        200 => {
            say!(
                "{}: {}",
                client.server(),
                body["status"].as_str().unwrap_or("ok")
            );
            Ok(())
        }
        s => Err(ClientError::Failed(format!(
            "{} is not healthy ({s}): {}",
            client.server(),
            body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
        ))),
    }
}

/// `webhooks operator-sessions end`: signs every operator out of the portal.
pub fn end_operator_sessions(client: &Client, json: bool) -> Result<(), ClientError> {
    client.delete("/api/v1/operator-sessions")?;
    if json {
        say!("{}", serde_json::json!({"ended": true}));
    } else {
        say!("every operator session ended: sign in at /admin again");
    }
    Ok(())
}

/// `webhooks backup --out FILE`: a consistent copy of the running server's data file.
pub fn backup(client: &Client, out: &Path, force: bool, json: bool) -> Result<(), ClientError> {
    let n = client.download_backup(out, force)?;
    if json {
        say!(
            "{}",
            serde_json::json!({ "wrote": out.display().to_string(), "bytes": n })
        );
        return Ok(());
    }
    say!("wrote {} ({n} bytes)", out.display());
    Ok(())
}

pub fn event_types(client: &Client, json: bool) -> Result<(), ClientError> {
    let all = client.get_all("/api/v1/event-types")?;
    if json {
        for t in &all {
            say!("{t}");
        }
        return Ok(());
    }
    let width = all
        .iter()
        .filter_map(|t| t["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    for t in all {
        say!(
            "{:width$}  {}",
            t["name"].as_str().unwrap_or("?"),
            t["description"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
