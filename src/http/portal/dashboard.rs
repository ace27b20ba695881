//! The operator's dashboard (`/admin/dashboard`): deliveries per minute and per hour by
//! outcome across every customer, queue depth, failure rate and latency, and the endpoints
//! failing most, each with a small chart, and the endpoints paused. Read from the per-minute
//! counters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::chart::Chart;
use super::{AdminCtx, Layout, PortalError, html};
use crate::domain::stats::{self, Bucket, Counters, HOUR_MS};
use crate::domain::time::now_ms;
use crate::http::AppState;
use crate::http::stats::{Scope, buckets};
use crate::store::{Owner, PageQuery, Store};

type State = web::Data<AppState>;

/// Endpoints read for the failing list, at most (a page of the console, not a report).
const MAX_ENDPOINTS: usize = 10_000;
const TOP: usize = 5;

pub struct Failing {
    pub customer_id: String,
    pub customer: String,
    pub endpoint_id: String,
    pub url: String,
    pub failed: u64,
    pub total: u64,
    pub rate: String,
    pub chart: Chart,
    pub paused: bool,
}

/// An endpoint whose receiver is down: its deliveries wait, untried.
pub struct Paused {
    pub customer_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub since: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    pending: u64,
    sending: u64,
    nodes: usize,
    last_hour: Chart,
    day: Chart,
    failing: Vec<Failing>,
    paused: Vec<Paused>,
    endpoints_read: usize,
}

/// An endpoint's id, customer id and URL, with its counts.
type Scored = (String, String, String, Counters);

/// The endpoints with the most failed or interrupted deliveries in [since, until), and the
/// paused ones.
fn failing_most(
    store: &dyn Store,
    since: i64,
    until: i64,
) -> crate::store::Result<(Vec<Scored>, Vec<Paused>, usize)> {
    let mut scored = Vec::new();
    let mut paused = Vec::new();
    let mut before: Option<String> = None;
    let mut read = 0;
    loop {
        let page = store.list_endpoints(
            Owner::Everyone,
            PageQuery {
                before: before.as_deref(),
                limit: 250,
            },
        )?;
        for e in &page.data {
            read += 1;
            if let Some(p) = e.pause.as_ref().filter(|_| e.enabled) {
                paused.push(Paused {
                    customer_id: e.customer_id.clone(),
                    endpoint_id: e.id.clone(),
                    url: e.url.clone(),
                    since: super::views::short_time(p.since),
                    reason: p.reason.replace('_', " "),
                });
            }
            let mut sum = Counters::default();
            for (_, c) in store.minute_counters(stats::Counted::Endpoint(&e.id), since, until)? {
                sum.merge(&c);
            }
            if sum.failed + sum.interrupted > 0 {
                scored.push((e.id.clone(), e.customer_id.clone(), e.url.clone(), sum));
            }
        }
        match page.next {
            Some(n) if read < MAX_ENDPOINTS => before = Some(n),
            _ => break,
        }
    }
    scored.sort_by_key(|(_, _, _, c)| std::cmp::Reverse(c.failed + c.interrupted));
    scored.truncate(TOP);
    Ok((scored, paused, read))
}

pub async fn dashboard(ctx: AdminCtx, st: State) -> Result<HttpResponse, PortalError> {
    let now = now_ms();
    let minute_end = Bucket::Minute.end_of(now);
    let hour_end = Bucket::Hour.end_of(now);
    let (counts, last_hour, day, failing, paused, read) = st
        .run(move |store| -> Result<_, PortalError> {
            let s = store;
            let counts = s.queue_counts()?;
            let last_hour = buckets(
                s,
                &Scope::All,
                minute_end - HOUR_MS,
                minute_end,
                Bucket::Minute,
            )?;
            let day = buckets(
                s,
                &Scope::All,
                hour_end - 24 * HOUR_MS,
                hour_end,
                Bucket::Hour,
            )?;
            let (top, paused, read) = failing_most(s, minute_end - HOUR_MS, minute_end)?;
            let mut failing = Vec::new();
            for (ep, customer_id, url, sum) in top {
                let hours = buckets(
                    s,
                    &Scope::Endpoint(ep.clone()),
                    hour_end - 24 * HOUR_MS,
                    hour_end,
                    Bucket::Hour,
                )?;
                let customer = s
                    .get_customer(&customer_id)?
                    .map(|c| c.name)
                    .unwrap_or_default();
                let bad = sum.failed + sum.interrupted;
                failing.push(Failing {
                    paused: paused.iter().any(|p| p.endpoint_id == ep),
                    rate: format!("{:.0}%", 100.0 * bad as f64 / sum.total().max(1) as f64),
                    failed: bad,
                    total: sum.total(),
                    chart: Chart::new(&format!("{url}, deliveries per hour"), &hours, Bucket::Hour),
                    customer_id,
                    customer,
                    endpoint_id: ep,
                    url,
                });
            }
            Ok((counts, last_hour, day, failing, paused, read))
        })
        .await?;
    let page = DashboardPage {
        layout: Layout::signed_in(
            &st,
            &ctx.token,
            &ctx.csrf,
            "admin",
            "dashboard",
            "Dashboard",
            "operator".into(),
        ),
        pending: counts.pending,
        sending: counts.claimed,
        nodes: st.store.live_nodes(),
        last_hour: Chart::new(
            "Deliveries per minute, last hour",
            &last_hour,
            Bucket::Minute,
        ),
        day: Chart::new("Deliveries per hour, last 24 hours", &day, Bucket::Hour),
        failing,
        paused,
        endpoints_read: read,
    };
    Ok(html(StatusCode::OK, &page))
}
