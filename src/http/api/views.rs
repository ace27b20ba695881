//! What the API answers: the wire shape of each object, built from store records.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::domain::Accepted;
use crate::domain::time::rfc3339;
use crate::domain::{ApiKeyRecord, Customer, Delivery, Endpoint, Event, EventType};
use crate::domain::{DeliveryError, DeliveryStatus, Headers};
use crate::store::Page;

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// One page of a list; pass `next` as `before` for the following page (`null` at the end).
#[derive(Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
    pub next: Option<String>,
}

impl<T: ToSchema> List<T> {
    pub fn from_page<R>(page: Page<R>, f: impl Fn(R) -> T) -> Self {
        Self {
            data: page.data.into_iter().map(f).collect(),
            next: page.next,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id,
            name: c.name,
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomerCreated {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// Shown only here.
    pub api_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            prefix: k.prefix,
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    /// Shown only here.
    pub api_key: String,
    pub created_at: String,
}

/// A one-time portal sign-in link: open it, press Continue, and the customer is signed in.
#[derive(Serialize, ToSchema)]
pub struct PortalLink {
    /// Shown only here; single use.
    pub url: String,
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct EventTypeView {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub example: Box<RawValue>,
}

impl From<EventType> for EventTypeView {
    fn from(e: EventType) -> Self {
        Self {
            name: e.name,
            description: e.description,
            example: raw(&e.example),
        }
    }
}

/// The whole catalog (it is small): `next` is always `null`.
#[derive(Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeView>,
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    /// Whose endpoint it is (the operator's lists span customers).
    pub customer_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub secret: String,
    pub rate_limit_per_sec: Option<u32>,
    pub headers: Headers,
    pub created_at: String,
    pub updated_at: String,
    /// How long a delivery may wait while the endpoint is paused; `null`: the server's
    /// `--max-hold-hours`.
    pub max_hold_secs: Option<u64>,
    pub state: EndpointState,
}

/// Whether an endpoint sends, waits for its receiver, or is off.
#[derive(Serialize, ToSchema)]
pub struct EndpointState {
    /// `active`; `paused`: its receiver is down and its deliveries wait, untried, while the
    /// server checks it; `disabled`.
    #[schema(example = "paused")]
    pub status: &'static str,
    /// When the pause began.
    pub since: Option<String>,
    /// Why: a delivery error code (`connection_refused`, `timeout`, …) or `http_503` and the
    /// like.
    pub reason: Option<String>,
    /// What the failure said.
    pub detail: Option<String>,
    /// Deliveries waiting behind the pause (0 unless paused).
    pub waiting: usize,
    /// When the receiver is checked next (or, after a 429/5xx, one delivery goes).
    pub next_check_at: Option<String>,
    /// After a 429: half the rate at which it answered 429. The endpoint reopens at this
    /// rate for 10 minutes; setting it as `rate_limit_per_sec` keeps it there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_rate_limit_per_sec: Option<u32>,
}

impl EndpointView {
    /// The endpoint as answered, with the deliveries `waiting` behind its pause.
    pub fn of(e: Endpoint, waiting: usize) -> Self {
        let state = match (&e.pause, e.enabled) {
            (_, false) => EndpointState {
                status: "disabled",
                since: None,
                reason: None,
                detail: None,
                waiting: 0,
                next_check_at: None,
                suggested_rate_limit_per_sec: None,
            },
            (Some(p), true) => EndpointState {
                status: "paused",
                since: Some(rfc3339(p.since)),
                reason: Some(p.reason.clone()),
                detail: Some(p.detail.clone()),
                waiting,
                next_check_at: Some(rfc3339(p.next_check_at)),
                suggested_rate_limit_per_sec: p.suggested_rate_per_sec,
            },
            (None, true) => EndpointState {
                status: "active",
                since: None,
                reason: None,
                detail: None,
                waiting: 0,
                next_check_at: None,
                suggested_rate_limit_per_sec: None,
            },
        };
        Self {
            id: e.id,
            customer_id: e.customer_id,
            url: e.url,
            events: e.events,
            description: e.description,
            enabled: e.enabled,
            secret: e.secret,
            rate_limit_per_sec: e.rate_limit_per_sec,
            headers: e.headers,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
            max_hold_secs: e.max_hold_secs,
            state,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SecretView {
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedView {
    pub id: String,
    pub event: String,
    pub customer_id: String,
    pub created_at: String,
    /// How many deliveries the event made (0 is fine).
    pub deliveries: usize,
}

impl From<&Accepted> for AcceptedView {
    fn from(a: &Accepted) -> Self {
        Self {
            id: a.id.clone(),
            event: a.event.clone(),
            customer_id: a.customer_id.clone(),
            created_at: rfc3339(a.created_at),
            deliveries: a.deliveries,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedList {
    pub data: Vec<AcceptedView>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub event: String,
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    pub test: bool,
    pub created_at: String,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        Self {
            data: raw(e.data()),
            id: e.id,
            event: e.event,
            test: e.test,
            created_at: rfc3339(e.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// Whose delivery it is (the operator's lists span customers).
    pub customer_id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub event: String,
    pub url: String,
    pub status: DeliveryStatus,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<DeliveryError>,
    pub error_detail: Option<String>,
    pub duration_ms: Option<u64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub resend_of: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            customer_id: d.customer_id,
            event_id: d.event_id,
            endpoint_id: d.endpoint_id,
            event: d.event,
            url: d.url,
            status: d.status,
            response_status: d.response_status,
            response_body: d.response_body,
            error: d.error,
            error_detail: d.error_detail,
            duration_ms: d.duration_ms,
            created_at: rfc3339(d.created_at),
            started_at: d.started_at.map(rfc3339),
            finished_at: d.finished_at.map(rfc3339),
            resend_of: d.resend_of,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TestSent {
    pub event_id: String,
    pub delivery_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Recovered {
    /// How many deliveries were sent again (the oldest first, as many as the customer's send
    /// budget allowed).
    pub deliveries: usize,
    /// How many more would be sent again: call again (when the budget has refilled) to go on.
    pub left: usize,
}

/// What "fail the waiting ones" did.
#[derive(Serialize, ToSchema)]
pub struct FailedWaiting {
    /// How many waiting deliveries failed (`receiver_unavailable`), never sent.
    pub deliveries: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the store cannot be written.
    pub status: String,
    pub version: String,
    /// Why it is degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /api/v1/status`: what runs, and how much waits.
#[derive(Serialize, ToSchema)]
pub struct StatusView {
    pub version: String,
    /// `redb` or `postgres`.
    pub engine: String,
    pub node_id: String,
    /// Deliveries waiting in the store.
    pub pending: u64,
    /// Deliveries claimed and not finished (in flight, or about to be).
    pub sending: u64,
    /// Serving nodes (1 on the data file).
    pub nodes: u64,
}

/// One bucket of `GET /api/v1/stats/deliveries`.
#[derive(Serialize, ToSchema)]
pub struct StatsBucketView {
    /// When the bucket starts (RFC 3339); it lasts one `bucket`.
    pub start: String,
    pub succeeded: u64,
    pub failed: u64,
    pub interrupted: u64,
    /// Median POST duration of the bucket's sent deliveries (from a histogram: within its
    /// bucket's bounds); `null` when none was sent.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

/// `GET /api/v1/stats/deliveries`: deliveries finished per bucket, by outcome.
#[derive(Serialize, ToSchema)]
pub struct DeliveryStatsView {
    /// `minute` or `hour`.
    pub bucket: String,
    pub since: String,
    pub until: String,
    pub data: Vec<StatsBucketView>,
}

impl StatsBucketView {
    pub fn of(start: i64, c: &crate::domain::stats::Counters) -> Self {
        StatsBucketView {
            start: rfc3339(start),
            succeeded: c.succeeded,
            failed: c.failed,
            interrupted: c.interrupted,
            p50_ms: c.percentile_ms(0.5),
            p95_ms: c.percentile_ms(0.95),
        }
    }
}
