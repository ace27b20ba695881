//! What the templates show: rows and forms built from the domain's objects.

use crate::domain::time::rfc3339;
use crate::domain::{Delivery, Endpoint, Event, EventType};
use crate::store::Owner;

/// "2026-11-27 14:05:31" (UTC), for tables.
pub fn short_time(ms: i64) -> String {
    let s = rfc3339(ms);
    s.get(..19).unwrap_or(&s).replace('T', " ")
}

pub fn events_label(events: &[String]) -> String {
    if events.iter().any(|e| e == "*") {
        "all event types".to_owned()
    } else {
        events.join(", ")
    }
}

pub fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: String,
    pub enabled: bool,
    /// Paused: its receiver is down, its deliveries wait.
    pub paused: bool,
    pub last_status: Option<&'static str>,
    pub last_time: String,
    /// Succeeded of what ended in the last 24 hours ("97%", "—").
    pub success: String,
    /// Under half succeeded in the last hour (of at least 5), or the last 5 all failed.
    pub failing: bool,
}

/// An endpoint's health, read from its per-minute counters (24 h and the last hour) and its
/// latest deliveries; with its latest delivery.
pub fn endpoint_health(
    store: &dyn crate::store::Store,
    customer_id: &str,
    endpoint_id: &str,
    now: i64,
) -> crate::store::Result<(crate::domain::stats::Health, Option<Delivery>)> {
    use crate::domain::stats::{Counted, Counters, FAILING_MIN, HOUR_MS};
    let latest = store
        .list_deliveries(
            Owner::Customer(customer_id),
            &crate::domain::DeliveryFilter {
                endpoint_id: Some(endpoint_id.to_owned()),
                ..Default::default()
            },
            crate::store::PageQuery {
                before: None,
                limit: FAILING_MIN as usize + 3,
            },
        )?
        .data;
    let (mut day, mut hour) = (Counters::default(), Counters::default());
    let scope = Counted::Endpoint(endpoint_id);
    for (minute, c) in store.minute_counters(scope, now - 24 * HOUR_MS, now + 60_000)? {
        if minute >= now - HOUR_MS {
            hour.merge(&c);
        }
        day.merge(&c);
    }
    let statuses: Vec<_> = latest.iter().map(|d| d.status).collect();
    let health = crate::domain::stats::Health::of(&day, &hour, &statuses);
    Ok((health, latest.into_iter().next()))
}

impl EndpointRow {
    pub fn new(
        e: &Endpoint,
        last: Option<&Delivery>,
        health: &crate::domain::stats::Health,
    ) -> Self {
        Self {
            success: health.success_label(),
            failing: health.failing,
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone().filter(|d| !d.is_empty()),
            events: events_label(&e.events),
            enabled: e.enabled,
            paused: e.enabled && e.pause.is_some(),
            last_status: last.map(|d| d.status.as_str()),
            last_time: last.map(|d| short_time(d.created_at)).unwrap_or_default(),
        }
    }
}

pub struct EndpointDetail {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: String,
    pub enabled: bool,
    pub secret: String,
    pub created: String,
    /// Set while its receiver is down (the page opens with a banner).
    pub pause: Option<PauseView>,
    /// Set while it is failing (and not paused): "N of M failed in the last hour".
    pub failing: Option<String>,
}

/// A pause as the portal shows it.
pub struct PauseView {
    pub since: String,
    pub reason: String,
    pub detail: String,
    pub waiting: usize,
    pub next_check: String,
    /// After a 429: a rate limit that would have kept it under.
    pub suggested_rate: Option<u32>,
}

impl PauseView {
    pub fn new(p: &crate::domain::Pause, waiting: usize) -> Self {
        Self {
            since: short_time(p.since),
            reason: p.reason.replace('_', " "),
            detail: p.detail.clone(),
            waiting,
            next_check: short_time(p.next_check_at),
            suggested_rate: p.suggested_rate_per_sec,
        }
    }
}

impl From<&Endpoint> for EndpointDetail {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone().filter(|d| !d.is_empty()),
            events: events_label(&e.events),
            enabled: e.enabled,
            secret: e.secret.clone(),
            created: short_time(e.created_at),
            pause: None,
            failing: None,
        }
    }
}

pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub customer_id: String,
    pub time: String,
    pub event: String,
    pub url: String,
    pub status: &'static str,
    pub http: String,
    pub duration: String,
    pub excerpt: String,
    pub error: Option<&'static str>,
    pub error_detail: Option<String>,
    pub resend: bool,
    /// Finished deliveries can be resent.
    pub finished: bool,
}

impl From<&Delivery> for DeliveryRow {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            customer_id: d.customer_id.clone(),
            time: short_time(d.created_at),
            event: d.event.clone(),
            url: d.url.clone(),
            status: d.status.as_str(),
            http: d
                .response_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "—".into()),
            duration: d
                .duration_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "—".into()),
            excerpt: d
                .response_body
                .as_deref()
                .map(|b| b.chars().take(300).collect())
                .unwrap_or_default(),
            error: d.error.map(|e| e.as_str()),
            error_detail: d.error_detail.clone(),
            resend: d.resend_of.is_some(),
            finished: d.finished_at.is_some(),
        }
    }
}

pub fn still_running(ds: &[Delivery]) -> bool {
    use crate::domain::DeliveryStatus::{Pending, Sending};
    ds.iter().any(|d| matches!(d.status, Pending | Sending))
}

pub struct DeliveryBadge {
    pub status: &'static str,
    pub url: String,
}

pub struct EventRow {
    pub id: String,
    pub time: String,
    pub event: String,
    pub test: bool,
    pub payload: String,
    pub deliveries: Vec<DeliveryBadge>,
}

impl EventRow {
    pub fn new(e: &Event, deliveries: &[Delivery]) -> Self {
        Self {
            id: e.id.clone(),
            time: short_time(e.created_at),
            event: e.event.clone(),
            test: e.test,
            payload: pretty_json(e.data()),
            deliveries: deliveries
                .iter()
                .map(|d| DeliveryBadge {
                    status: d.status.as_str(),
                    url: d.url.clone(),
                })
                .collect(),
        }
    }
}

pub struct TypeOption {
    pub name: String,
    pub description: String,
    /// Pretty example data, for the trigger form.
    pub example: String,
    pub checked: bool,
}

impl TypeOption {
    pub fn new(t: &EventType, checked: bool) -> Self {
        Self {
            name: t.name.clone(),
            description: t.description.clone(),
            example: pretty_json(&t.example),
            checked,
        }
    }
}

/// The endpoint form as typed, with a message next to each field that was wrong.
#[derive(Default)]
pub struct EndpointForm {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub all_events: bool,
    pub rate: String,
    pub url_error: Option<String>,
    pub events_error: Option<String>,
    pub description_error: Option<String>,
    pub rate_error: Option<String>,
    pub general_error: Option<String>,
}

impl EndpointForm {
    pub fn has(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }

    pub fn from_endpoint(e: &Endpoint) -> Self {
        Self {
            url: e.url.clone(),
            description: e.description.clone().unwrap_or_default(),
            all_events: e.events.iter().any(|x| x == "*"),
            events: e.events.clone(),
            rate: e
                .rate_limit_per_sec
                .map(|r| r.to_string())
                .unwrap_or_default(),
            ..Self::default()
        }
    }

    pub fn has_errors(&self) -> bool {
        self.url_error.is_some()
            || self.events_error.is_some()
            || self.description_error.is_some()
            || self.rate_error.is_some()
            || self.general_error.is_some()
    }

    /// Puts a rule's message next to the field it is about.
    pub fn place(&mut self, code: &str, message: String) {
        match code {
            "invalid_url" => self.url_error = Some(message),
            "invalid_events" | "unknown_event_type" => self.events_error = Some(message),
            "invalid_field" => self.description_error = Some(message),
            "invalid_rate_limit" => self.rate_error = Some(message),
            _ => self.general_error = Some(message),
        }
    }
}
