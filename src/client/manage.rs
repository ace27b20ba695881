//! `webhooks endpoints …` and `webhooks deliveries …`: a customer's endpoints and delivery log
//! from the terminal, with the customer's API key. Text for people; with `--json`, one JSON
//! object per line for scripts.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Client, ClientError};

/// How the output is written, and (for the operator) whose objects a list shows.
#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    /// The operator (admin token) is asking: lists show whose each row is.
    pub operator: bool,
    /// `--customer`, by name or id.
    pub customer: Option<String>,
}

/// `customer_id=…&` for a list, when the operator named a customer.
fn scope(client: &Client, out: &Output) -> Result<String, ClientError> {
    match &out.customer {
        None => Ok(String::new()),
        Some(c) => {
            let id = super::resolve_customer(client, c)?;
            Ok(format!("customer_id={id}&"))
        }
    }
}

impl Output {
    fn line(&self, v: &Value, text: impl FnOnce(&Value) -> String) {
        if self.json {
            say!("{v}");
        } else {
            say!("{}", text(v));
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

fn endpoint_line(e: &Value) -> String {
    let events: Vec<&str> = e["events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{:<30}  {}  {}  {}",
        s(e, "id"),
        state_word(e),
        s(e, "url"),
        events.join(",")
    )
}

/// `enabled`, `paused` (enabled, its receiver down) or `disabled`, padded to one width.
fn state_word(e: &Value) -> String {
    let word = if e["enabled"] != true {
        "disabled"
    } else if e["state"]["status"] == "paused" {
        "paused"
    } else {
        "enabled"
    };
    format!("{word:<8}")
}

/// The pause in a line, when there is one.
fn pause_line(e: &Value) -> String {
    let st = &e["state"];
    if st["status"] != "paused" {
        return String::new();
    }
    format!(
        "\npaused:      since {} ({}: {}); {} waiting; next check at {}",
        s(st, "since"),
        s(st, "reason"),
        s(st, "detail"),
        st["waiting"],
        s(st, "next_check_at"),
    )
}

/// Ends a pause at once: what waits goes, from the small start.
pub fn endpoints_resume(client: &Client, out: &Output, ep: &str) -> Result<(), ClientError> {
    let path = format!("/api/v1/endpoints/{}/resume", id("an endpoint", "ep_", ep)?);
    let e = client.post(&path, "{}")?;
    out.line(&e, endpoint_line);
    Ok(())
}

/// Fails what waits behind a pause (`receiver_unavailable`, never sent).
pub fn endpoints_fail_waiting(client: &Client, out: &Output, ep: &str) -> Result<(), ClientError> {
    let path = format!(
        "/api/v1/endpoints/{}/fail-waiting",
        id("an endpoint", "ep_", ep)?
    );
    let n = client.post(&path, "{}")?;
    out.line(&n, |n| {
        format!("{} waiting deliveries failed, never sent", n["deliveries"])
    });
    Ok(())
}

/// The column heads of `delivery_line`.
fn delivery_header(out: &Output) -> String {
    let customer = if out.operator {
        "CUSTOMER                      "
    } else {
        ""
    };
    format!(
        "{customer}{:<30}  {:<24}  {:<11}  {:>4}  {:<32}  ENDPOINT",
        "DELIVERY", "CREATED", "STATUS", "CODE", "EVENT"
    )
}

fn delivery_line(d: &Value, out: &Output) -> String {
    let outcome = match (d["response_status"].as_u64(), d["error"].as_str()) {
        (Some(code), _) => code.to_string(),
        (None, Some(e)) => e.to_owned(),
        (None, None) => "-".to_owned(),
    };
    let customer = if out.operator {
        format!("{:<30}", s(d, "customer_id"))
    } else {
        String::new()
    };
    format!(
        "{customer}{:<30}  {:<24}  {:<11}  {:>4}  {:<32}  {}",
        s(d, "id"),
        s(d, "created_at"),
        s(d, "status"),
        outcome,
        s(d, "event"),
        s(d, "endpoint_id"),
    )
}

/// Refuses an id that cannot be one (so that a typo is not a path of its own).
fn id(kind: &str, prefix: &str, v: &str) -> Result<String, ClientError> {
    let ok = v.starts_with(prefix)
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ClientError::Usage(format!(
            "{v:?} is not {kind} id ({prefix}…)"
        )))
    }
}

pub fn endpoints_list(client: &Client, out: &Output) -> Result<(), ClientError> {
    let path = match scope(client, out)?.trim_end_matches('&') {
        "" => "/api/v1/endpoints".to_owned(),
        q => format!("/api/v1/endpoints?{q}"),
    };
    let all = client.get_all(&path)?;
    if !out.json {
        let customer = if out.operator {
            "CUSTOMER                        "
        } else {
            ""
        };
        say!(
            "{customer}{:<30}  {:<8}  {}  EVENTS",
            "ENDPOINT",
            "STATE",
            "URL"
        );
        if all.is_empty() {
            say!("(none)");
        }
    }
    for e in all {
        out.line(&e, |e| {
            if out.operator {
                format!("{:<30}  {}", s(e, "customer_id"), endpoint_line(e))
            } else {
                endpoint_line(e)
            }
        });
    }
    Ok(())
}

pub fn endpoints_show(client: &Client, out: &Output, ep: &str) -> Result<(), ClientError> {
    let e = client.get(&format!(
        "/api/v1/endpoints/{}",
        id("an endpoint", "ep_", ep)?
    ))?;
    out.line(&e, |e| {
        format!(
            "id:          {}\nurl:         {}\nstate:       {}{}\nevents:      {}\ndescription: {}\nrate limit:  {}\nsecret:      {}\ncreated:     {}",
            s(e, "id"),
            s(e, "url"),
            state_word(e).trim_end(),
            pause_line(e),
            e["events"],
            s(e, "description"),
            e["rate_limit_per_sec"],
            s(e, "secret"),
            s(e, "created_at"),
        )
    });
    Ok(())
}

pub fn endpoints_set_enabled(
    client: &Client,
    out: &Output,
    ep: &str,
    enabled: bool,
) -> Result<(), ClientError> {
    let path = format!("/api/v1/endpoints/{}", id("an endpoint", "ep_", ep)?);
    let e = client.patch(&path, &json!({ "enabled": enabled }).to_string())?;
    out.line(&e, endpoint_line);
    Ok(())
}

pub fn endpoints_delete(client: &Client, out: &Output, ep: &str) -> Result<(), ClientError> {
    let ep = id("an endpoint", "ep_", ep)?;
    client.delete(&format!("/api/v1/endpoints/{ep}"))?;
    out.line(&json!({ "deleted": ep }), |_| format!("deleted {ep}"));
    Ok(())
}

/// The filter of `deliveries list` as a query string.
fn query(endpoint: Option<&str>, status: Option<&str>) -> Result<String, ClientError> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(ep) = endpoint {
        q.append_pair("endpoint_id", &id("an endpoint", "ep_", ep)?);
    }
    if let Some(st) = status {
        q.append_pair("status", st);
    }
    Ok(q.finish())
}

/// The newest `limit` deliveries, oldest first (saying when more exist); with `follow`, then
/// every new one once it has finished, until interrupted.
pub fn deliveries_list(
    client: &Client,
    out: &Output,
    endpoint: Option<&str>,
    status: Option<&str>,
    follow: bool,
    limit: usize,
) -> Result<(), ClientError> {
    let q = format!("{}{}", scope(client, out)?, query(endpoint, status)?);
    let mut shown: Vec<Value> = Vec::new();
    let mut before: Option<String> = None;
    let mut more = false;
    while shown.len() < limit {
        let want = (limit - shown.len()).min(250);
        let cursor = before
            .as_deref()
            .map_or(String::new(), |b| format!("&before={b}"));
        let page = client.get(&format!("/api/v1/deliveries?limit={want}&{q}{cursor}"))?;
        shown.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => before = Some(n.to_owned()),
            None => break,
        }
        more = shown.len() >= limit;
    }
    shown.reverse(); // oldest first, as a log reads
    if !out.json {
        say!("{}", delivery_header(out));
        if shown.is_empty() && !follow {
            say!("(none)");
        }
    }
    for d in &shown {
        out.line(d, |d| delivery_line(d, out));
    }
    if more && !out.json {
        say!("(more, older: raise --limit, now {limit}, or filter with --endpoint / --status)");
    }
    if !follow {
        return Ok(());
    }
    follow_deliveries(client, out, &q, &shown)
}

/// `--follow`: reads what is new with `after=<id>` (oldest first, every page, so a burst is
/// never skipped) and prints each delivery once it has finished. Deliveries still under way
/// wait in order, each with the id before it; one request a tick reads the oldest of them
/// again.
fn follow_deliveries(
    client: &Client,
    out: &Output,
    q: &str,
    shown: &[Value],
) -> Result<(), ClientError> {
    const TICK: Duration = Duration::from_millis(500);
    let mut cursor = match shown.last() {
        Some(d) => s(d, "id").to_owned(),
        // Nothing shown: start after the newest there is.
        None => client.get(&format!("/api/v1/deliveries?limit=1&{q}"))?["data"][0]["id"]
            .as_str()
            .unwrap_or("dlv_")
            .to_owned(),
    };
    // (the id before it, id) of each shown delivery still under way, oldest first.
    let mut waiting: std::collections::VecDeque<(String, String)> = Default::default();
    let mut prev = String::from("dlv_");
    for d in shown {
        if unfinished(d) {
            waiting.push_back((prev.clone(), s(d, "id").to_owned()));
        }
        prev = s(d, "id").to_owned();
    }
    let show = |d: &Value| {
        out.line(d, |d| delivery_line(d, out));
        use std::io::Write;
        let _ = std::io::stdout().flush();
    };
    loop {
        std::thread::sleep(TICK);
        // What is new, every page of it.
        loop {
            let page = client.get(&format!("/api/v1/deliveries?after={cursor}&limit=250&{q}"))?;
            let mut prev = cursor.clone();
            for d in page["data"].as_array().into_iter().flatten() {
                let id = s(d, "id").to_owned();
                if unfinished(d) {
                    waiting.push_back((prev, id.clone()));
                } else {
                    show(d);
                }
                prev = id;
            }
            cursor = prev;
            if page["next"].is_null() {
                break;
            }
        }
        // The oldest still under way: one request.
        if let Some((after, _)) = waiting.front().cloned() {
            let page = client.get(&format!("/api/v1/deliveries?after={after}&limit=250&{q}"))?;
            for d in page["data"].as_array().into_iter().flatten() {
                if !unfinished(d)
                    && let Some(i) = waiting.iter().position(|(_, id)| id == s(d, "id"))
                {
                    waiting.remove(i);
                    show(d);
                }
            }
        }
    }
}

fn unfinished(d: &Value) -> bool {
    matches!(d["status"].as_str(), Some("pending" | "sending"))
}

pub fn deliveries_resend(client: &Client, out: &Output, dlv: &str) -> Result<(), ClientError> {
    let dlv = id("a delivery", "dlv_", dlv)?;
    let d = client.post(&format!("/api/v1/deliveries/{dlv}/resend"), "{}")?;
    out.line(&d, |d| {
        format!("resent as {} ({})", s(d, "id"), s(d, "status"))
    });
    Ok(())
}

pub fn deliveries_recover(
    client: &Client,
    out: &Output,
    ep: &str,
    since: &str,
    until: Option<&str>,
) -> Result<(), ClientError> {
    let ep = id("an endpoint", "ep_", ep)?;
    let mut body = json!({ "since": since });
    if let Some(u) = until {
        body["until"] = json!(u);
    }
    let r = client.post(
        &format!("/api/v1/endpoints/{ep}/recover"),
        &body.to_string(),
    )?;
    out.line(&r, |r| match r["left"].as_u64() {
        Some(left) if left > 0 => format!(
            "{} deliveries resent; {left} more wait for the send budget: run this again in a minute",
            r["deliveries"]
        ),
        _ => format!("{} deliveries resent", r["deliveries"]),
    });
    Ok(())
}
