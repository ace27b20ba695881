//! Prometheus metrics: events ingested, deliveries by outcome, delivery durations, queue depth
//! and deliveries in flight, rendered as text for `GET /metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::delivery::limit::Decrease;
use crate::domain::Outcome;
use crate::store::QueueCounts;

type Labels = Vec<(&'static str, &'static str)>;

pub struct Metrics {
    registry: Registry,
    pub events_ingested: Counter,
    deliveries: Family<Labels, Counter>,
    duration: Histogram,
    pub in_flight: Gauge,
    pending: Gauge,
    claimed: Gauge,
    rows_written: Family<Labels, Gauge>,
    limits: Histogram,
    limit_decreases: Family<Labels, Counter>,
    /// Endpoints this node holds paused (their receivers down).
    pub endpoints_paused: Gauge,
    /// Deliveries waiting behind those pauses, as their last checks counted them.
    pub deliveries_held: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("webhooks");
        let events_ingested = Counter::default();
        let deliveries = Family::<Labels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let in_flight = Gauge::default();
        let pending = Gauge::default();
        let claimed = Gauge::default();
        let rows_written = Family::<Labels, Gauge>::default();
        let limits = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let limit_decreases = Family::<Labels, Counter>::default();
        let endpoints_paused = Gauge::default();
        let deliveries_held = Gauge::default();
        registry.register(
            "deliveries_held",
            "Deliveries waiting, untried, behind paused endpoints (counted at each check, up to 100,000 an endpoint), as this node sees them",
            deliveries_held.clone(),
        );
        registry.register(
            "endpoints_paused",
            "Endpoints paused because their receivers are down (deliveries wait, untried), as this node sees them",
            endpoints_paused.clone(),
        );
        registry.register(
            "endpoint_limit",
            "The in-flight limit of the endpoint at each finished POST (all endpoints together)",
            limits.clone(),
        );
        registry.register(
            "endpoint_limit_decreases",
            "Times an endpoint's in-flight limit went down, by cause (error: a connection-level failure or a timeout; latency: delivery times rose)",
            limit_decreases.clone(),
        );
        registry.register(
            "events_ingested",
            "Events accepted (202) since start",
            events_ingested.clone(),
        );
        registry.register(
            "deliveries",
            "Deliveries finished since start, by outcome and error",
            deliveries.clone(),
        );
        registry.register(
            "delivery_duration_seconds",
            "Time from connect to the end of the response of each POST",
            duration.clone(),
        );
        registry.register(
            "deliveries_in_flight",
            "POSTs under way right now",
            in_flight.clone(),
        );
        registry.register(
            "queue_depth",
            "Deliveries pending in the store, not yet handed to a worker",
            pending.clone(),
        );
        registry.register(
            "deliveries_claimed",
            "Deliveries handed to workers and not yet finished",
            claimed.clone(),
        );
        registry.register(
            "store_rows_written",
            "Rows the store's writer has written since start (embedded engine): for events, deliveries, claims and results, and for queue counters and statistics",
            rows_written.clone(),
        );
        Self {
            registry,
            events_ingested,
            deliveries,
            duration,
            in_flight,
            pending,
            claimed,
            rows_written,
            limits,
            limit_decreases,
            endpoints_paused,
            deliveries_held,
        }
    }

    /// An endpoint's limit after a finished POST, and its decrease if it went down. Only in
    /// aggregate: `/metrics` is public, so no endpoint or host is named.
    pub fn limit_sample(&self, limit: Option<usize>, decrease: Option<Decrease>) {
        if let Some(l) = limit {
            self.limits.observe(l as f64);
        }
        if let Some(d) = decrease {
            self.limit_decreases
                .get_or_create(&vec![("cause", d.as_str())])
                .inc();
        }
    }

    pub fn record(&self, outcome: &Outcome) {
        let status = outcome.status().as_str();
        let error = outcome.error.map_or("none", |e| e.as_str());
        self.deliveries
            .get_or_create(&vec![("outcome", status), ("error", error)])
            .inc();
        self.duration.observe(outcome.duration_ms as f64 / 1000.0);
    }

    /// The text exposition, with the queue gauges set from the store's counts.
    pub fn render(&self, queue: QueueCounts, rows: Option<(u64, u64)>) -> String {
        self.pending.set(queue.pending as i64);
        self.claimed.set(queue.claimed as i64);
        if let Some((deliveries, counters)) = rows {
            for (kind, n) in [("deliveries", deliveries), ("counters", counters)] {
                self.rows_written
                    .get_or_create(&vec![("kind", kind)])
                    .set(n as i64);
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
