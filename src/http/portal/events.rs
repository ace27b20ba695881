//! The Events tab, and the page of one event with its deliveries, which the operator's
//! console shows too.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::views::{DeliveryRow, EventRow, still_running};
use super::{CustomerCtx, Layout, PortalError, before, customer_layout, customer_name};
use crate::domain::{Delivery, Event, IdKind};
use crate::http::AppState;
use crate::store::{Owner, PageQuery};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    layout: Layout,
    events: Vec<EventRow>,
    next: Option<String>,
    base: &'static str,
    refresh: bool,
}

pub async fn events(
    ctx: CustomerCtx,
    st: State,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let cid = ctx.customer_id.clone();
    let before = before(&req);
    let (name, rows, next, refresh) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = customer_name(store, &cid)?;
            let page = store.list_events(
                Owner::Customer(&cid),
                PageQuery {
                    before: before.as_deref(),
                    limit: 25,
                },
            )?;
            let mut rows = Vec::new();
            let mut refresh = false;
            for e in &page.data {
                let ds = store
                    .get_event(&cid, &e.id)?
                    .map(|(_, d)| d)
                    .unwrap_or_default();
                refresh |= still_running(&ds);
                rows.push(EventRow::new(e, &ds));
            }
            Ok((name, rows, page.next, refresh))
        })
        .await?;
    super::ok_page(&EventsPage {
        layout: customer_layout(&st, &ctx, name, "Events", "events"),
        events: rows,
        next,
        base: "/events",
        refresh,
    })
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    layout: Layout,
    event: EventRow,
    pub customer: Option<String>,
    pub deliveries: Vec<DeliveryRow>,
    pub refresh: bool,
    pub can_resend: bool,
    pub show_url: bool,
    pub back: String,
    pub back_link: &'static str,
    pub empty_hint: &'static str,
}

/// The page of one event with its deliveries, as both consoles show it.
pub(super) struct EventView {
    pub layout: Layout,
    /// The customer's name, shown on the operator's console.
    pub customer: Option<String>,
    /// Where a Resend comes back to.
    pub resend_back: Option<String>,
    pub back_link: &'static str,
    pub empty_hint: &'static str,
}

pub(super) fn event_page(
    view: EventView,
    event: &Event,
    ds: &[Delivery],
) -> Result<HttpResponse, PortalError> {
    super::ok_page(&EventPage {
        layout: view.layout,
        event: EventRow::new(event, ds),
        customer: view.customer,
        refresh: still_running(ds),
        deliveries: ds.iter().map(DeliveryRow::from).collect(),
        can_resend: view.resend_back.is_some(),
        show_url: true,
        back: view.resend_back.unwrap_or_default(),
        back_link: view.back_link,
        empty_hint: view.empty_hint,
    })
}

pub async fn event(
    ctx: CustomerCtx,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Event.check(path.into_inner())?;
    let cid = ctx.customer_id.clone();
    let (name, (event, ds)) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = customer_name(store, &cid)?;
            Ok((
                name,
                store.get_event(&cid, &id)?.ok_or(PortalError::NotFound)?,
            ))
        })
        .await?;
    event_page(
        EventView {
            layout: customer_layout(&st, &ctx, name, &event.event, "events"),
            customer: None,
            resend_back: Some(format!("/events/{}", event.id)),
            back_link: "/events",
            empty_hint: "No endpoint of yours subscribes to this event type.",
        },
        &event,
        &ds,
    )
}
