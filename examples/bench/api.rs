//! A small admin client for the benchmark: customers, endpoints, events and metrics.

use std::time::Duration;

use serde_json::{Value, json};

use crate::DATA;

/// A small admin client.
#[derive(Clone)]
pub struct Api {
    base: String,
    admin: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base: &str, admin: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(64)
            .build()
            .new_agent();
        Self {
            base: base.to_owned(),
            admin: admin.to_owned(),
            agent,
        }
    }

    pub fn get(&self, path: &str) -> Option<String> {
        let mut r = self.agent.get(format!("{}{path}", self.base)).call().ok()?;
        r.body_mut().read_to_string().ok()
    }

    /// A GET with a bearer token, as JSON.
    pub fn get_as(&self, path: &str, token: &str) -> Value {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .expect("the server answers");
        let text = r.body_mut().read_to_string().unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The customer's failed deliveries counted by error (the newest 250).
    pub fn failures_by_error(&self, key: &str) -> String {
        let page = self.get_as("/api/v1/deliveries?status=failed&limit=250", key);
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for d in page["data"].as_array().into_iter().flatten() {
            let e = d["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("http_{}", d["response_status"]));
            *counts.entry(e).or_default() += 1;
        }
        counts
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn post(&self, path: &str, token: &str, body: &str) -> Value {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .send(body)
            .expect("the server answers");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        assert!((200..300).contains(&status), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Deletes every endpoint of the key's customer (its pending deliveries go too).
    pub fn delete_endpoints(&self, key: &str) {
        let mut r = self
            .agent
            .get(format!("{}/api/v1/endpoints", self.base))
            .header("authorization", format!("Bearer {key}"))
            .call()
            .expect("the server answers");
        let list: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        for ep in list["data"].as_array().unwrap() {
            self.agent
                .delete(format!(
                    "{}/api/v1/endpoints/{}",
                    self.base,
                    ep["id"].as_str().unwrap()
                ))
                .header("authorization", format!("Bearer {key}"))
                .call()
                .expect("the server answers");
        }
    }

    /// (customer id, api key)
    pub fn customer(&self, name: &str) -> (String, String) {
        let c = self.post(
            "/api/v1/customers",
            &self.admin,
            &json!({ "name": name }).to_string(),
        );
        (
            c["id"].as_str().unwrap().to_owned(),
            c["api_key"].as_str().unwrap().to_owned(),
        )
    }

    pub fn endpoint(&self, key: &str, url: &str) {
        self.post(
            "/api/v1/endpoints",
            key,
            &json!({ "url": url, "events": ["*"] }).to_string(),
        );
    }

    pub fn customer_with_endpoint(&self, name: &str, url: &str) -> (String, String) {
        let c = self.customer(name);
        self.endpoint(&c.1, url);
        c
    }

    pub fn event(&self, customer: &str) -> Value {
        let body = format!(
            r#"{{"customer_id":"{customer}","event":"transactions.fetched","data":{DATA}}}"#
        );
        self.post("/api/v1/events", &self.admin, &body)
    }

    /// A batch of `n` events spread round-robin over `customers`.
    pub fn batch(&self, customers: &[String], n: usize) -> Value {
        let events: Vec<String> = (0..n)
            .map(|i| {
                let c = &customers[i % customers.len()];
                format!(r#"{{"customer_id":"{c}","event":"transactions.fetched","data":{DATA}}}"#)
            })
            .collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        self.post("/api/v1/events/batch", &self.admin, &body)
    }

    pub fn metric(&self, name: &str) -> u64 {
        let text = self.get("/metrics").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or(0)
    }
}
