//! The operator's read-only view of one customer (`/admin/customers/{id}`), to help them:
//! its endpoints, its deliveries per hour, its recent events and its delivery log (filters,
//! find by id, Resend); and what the operator does for it: end its portal sessions, make a
//! one-time sign-in link.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::chart::Chart;
use super::flash;
use super::forms::Posted;
use super::log_filter::{self, LogFilter, LogPage};
use super::views::{DeliveryRow, EndpointRow, TypeOption, short_time, still_running};
use super::{AdminCtx, Layout, PortalError, html, see_other};
use crate::domain::stats::{Bucket, HOUR_MS};
use crate::domain::time::now_ms;
use crate::domain::{DeliveryFilter, IdKind};
use crate::http::AppState;
use crate::http::stats::{Scope, buckets};
use crate::store::{Owner, PageQuery};

type State = web::Data<AppState>;

pub struct RecentEvent {
    pub id: String,
    pub time: String,
    pub event: String,
}

#[derive(Template)]
#[template(path = "support.html")]
struct SupportPage {
    layout: Layout,
    customer_id: String,
    name: String,
    created: String,
    endpoints: Vec<EndpointRow>,
    events: Vec<RecentEvent>,
    chart: Chart,
    deliveries: Vec<DeliveryRow>,
    next: Option<String>,
    refresh: bool,
    can_resend: bool,
    show_url: bool,
    back: String,
    empty_hint: &'static str,
    filter: LogFilter,
    filter_action: String,
    statuses: [&'static str; 5],
    types: Vec<TypeOption>,
}

pub async fn customer(
    ctx: AdminCtx,
    st: State,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Customer
        .check(path.into_inner())
        .map_err(|_| PortalError::NotFound)?;
    let before = super::query_param(&req, "before").filter(|b| IdKind::Delivery.matches(b));
    let mut filter = LogFilter::from_request(&req);
    // `?endpoint=ep_…`: the log of that endpoint only (from its row above).
    let only = super::query_param(&req, "endpoint").filter(|e| IdKind::Endpoint.matches(e));
    let now = now_ms();
    let until = Bucket::Hour.end_of(now);
    let cid = id.clone();
    let (customer, endpoints, events, hours, log, types, filter) = st
        .run(move |store| -> Result<_, PortalError> {
            let s = store;
            let customer = s.get_customer(&cid)?.ok_or(PortalError::NotFound)?;
            let endpoints = s
                .list_endpoints(
                    Owner::Customer(&cid),
                    PageQuery {
                        before: None,
                        limit: 250,
                    },
                )?
                .data;
            // Each endpoint with its health, as the customer's list shows it.
            let now = crate::domain::time::now_ms();
            let mut rows = Vec::with_capacity(endpoints.len());
            for e in &endpoints {
                let (health, last) = super::views::endpoint_health(s, &cid, &e.id, now)?;
                rows.push(EndpointRow::new(e, last.as_ref(), &health));
            }
            let endpoints = rows;
            let events = s
                .list_events(
                    Owner::Customer(&cid),
                    PageQuery {
                        before: None,
                        limit: 10,
                    },
                )?
                .data;
            let hours = buckets(
                s,
                &Scope::Customer(cid.clone()),
                until - 24 * HOUR_MS,
                until,
                Bucket::Hour,
            )?;
            let log = log_filter::load(
                s,
                &cid,
                DeliveryFilter {
                    endpoint_id: only,
                    ..Default::default()
                },
                &mut filter,
                before.as_deref(),
                25,
            )?;
            Ok((
                customer,
                endpoints,
                events,
                hours,
                log,
                s.all_event_types()?,
                filter,
            ))
        })
        .await?;
    let (deliveries, next) = match log {
        LogPage::Event(evt) => return Ok(see_other(&format!("/admin/events/{evt}"))),
        LogPage::Rows { data, next } => (data, next),
    };
    let page = SupportPage {
        layout: Layout::signed_in(
            &st,
            &ctx.token,
            &ctx.csrf,
            "admin",
            "console",
            &customer.name,
            "operator".into(),
        ),
        name: customer.name.clone(),
        created: short_time(customer.created_at),
        endpoints,
        events: events
            .iter()
            .map(|e| RecentEvent {
                id: e.id.clone(),
                time: short_time(e.created_at),
                event: e.event.clone(),
            })
            .collect(),
        chart: Chart::new("Deliveries per hour, last 24 hours", &hours, Bucket::Hour),
        refresh: still_running(&deliveries),
        deliveries: deliveries.iter().map(DeliveryRow::from).collect(),
        next: next.map(|n| format!("{n}{}", filter.query())),
        can_resend: true,
        show_url: true,
        back: format!("/admin/customers/{id}"),
        empty_hint: if filter.is_active() {
            "No delivery of this customer matches these filters."
        } else {
            "None of this customer's endpoints has received an event yet."
        },
        filter_action: format!("/admin/customers/{id}"),
        filter,
        statuses: log_filter::STATUSES,
        types: types.iter().map(|t| TypeOption::new(t, false)).collect(),
        customer_id: id,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The operator's Resend: a new delivery of the same event, as the customer's own would be.
pub async fn resend(
    Posted { ctx, form }: Posted<AdminCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Delivery
        .check(path.into_inner())
        .map_err(|_| PortalError::NotFound)?;
    let d = st
        .run(move |s| {
            let owner = s.owner_of(&id)?.ok_or(crate::store::StoreError::NotFound)?;
            s.resend_delivery(&owner, &id)
        })
        .await?;
    flash(&st, &ctx.token, "Delivery sent again.", None);
    // Back only to one of the console's own pages.
    let back = form.get("back");
    let known =
        |prefix: &str, kind: IdKind| back.strip_prefix(prefix).is_some_and(|id| kind.matches(id));
    let back =
        if known("/admin/customers/", IdKind::Customer) || known("/admin/events/", IdKind::Event) {
            back.to_owned()
        } else {
            format!("/admin/customers/{}", d.customer_id)
        };
    Ok(see_other(&format!("{back}#log")))
}

/// Ends every portal session of the customer: whoever is signed in signs in again.
pub async fn end_sessions(
    Posted { ctx, .. }: Posted<AdminCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Customer
        .check(path.into_inner())
        .map_err(|_| PortalError::NotFound)?;
    let cid = id.clone();
    let name = st
        .run(move |s| -> crate::store::Result<_> {
            let c = s
                .get_customer(&cid)?
                .ok_or(crate::store::StoreError::NotFound)?;
            s.end_customer_sessions(&cid)?;
            Ok(c.name)
        })
        .await?;
    flash(
        &st,
        &ctx.token,
        format!("Every portal session of {name} has ended."),
        None,
    );
    Ok(see_other(&format!("/admin/customers/{id}")))
}

/// A one-time sign-in link to the customer's portal, shown once to the operator to pass on.
pub async fn portal_link(
    Posted { ctx, .. }: Posted<AdminCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Customer
        .check(path.into_inner())
        .map_err(|_| PortalError::NotFound)?;
    let (url, _) = super::links::issue(&st, id.clone()).await?;
    flash(
        &st,
        &ctx.token,
        "A sign-in link to their portal, usable once within 15 minutes, shown only now:",
        Some(url),
    );
    Ok(see_other(&format!("/admin/customers/{id}")))
}
