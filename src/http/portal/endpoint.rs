//! One endpoint's page: its settings and health, its pause banner, its charts and its
//! delivery log with filters; and the edit form's answer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::log_filter::{self, LogFilter, LogPage};

use super::flash;
use super::forms::Posted;
use super::views::{
    DeliveryRow, EndpointDetail, EndpointForm, TypeOption, short_time, still_running,
};
use super::webhooks::read_endpoint_form;
use super::{
    CustomerCtx, Layout, PortalError, before, customer_layout, customer_name, html, see_other,
};
use crate::domain::IdKind;
use crate::domain::time::now_ms;
use crate::domain::{DeliveryFilter, EndpointPatch};
use crate::http::AppState;
use crate::store::StoreError;

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "endpoint.html")]
struct EndpointPage {
    layout: Layout,
    ep: EndpointDetail,
    types: Vec<TypeOption>,
    test_types: Vec<TypeOption>,
    form: EndpointForm,
    deliveries: Vec<DeliveryRow>,
    next: Option<String>,
    refresh: bool,
    can_resend: bool,
    show_url: bool,
    back: String,
    empty_hint: &'static str,
    recover_default: String,
    recover_error: Option<String>,
    chart: super::chart::Chart,
    /// `24h` or `7d`.
    range: &'static str,
    filter: LogFilter,
    filter_action: String,
    statuses: [&'static str; 5],
}

/// What the endpoint page's query asks for: the log's page and filters, the chart's range.
#[derive(Default)]
pub(super) struct EndpointQuery {
    before: Option<String>,
    range: &'static str,
    filter: LogFilter,
}

pub async fn endpoint(
    ctx: CustomerCtx,
    st: State,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let range = if super::query_param(&req, "range").as_deref() == Some("7d") {
        "7d"
    } else {
        "24h"
    };
    let q = EndpointQuery {
        before: before(&req),
        range,
        filter: LogFilter::from_request(&req),
    };
    render_endpoint(&st, &ctx, id, q, None, None, StatusCode::OK).await
}

pub(super) async fn render_endpoint(
    st: &AppState,
    ctx: &CustomerCtx,
    id: String,
    q: EndpointQuery,
    form: Option<EndpointForm>,
    recover_error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let cid = ctx.customer_id.clone();
    let EndpointQuery {
        before,
        range,
        mut filter,
    } = q;
    let range = if range.is_empty() { "24h" } else { range };
    let hours = if range == "7d" { 7 * 24 } else { 24 };
    let until = crate::domain::stats::Bucket::Hour.end_of(now_ms());
    let since = until - hours * crate::domain::stats::HOUR_MS;
    let (name, ep, log, types, buckets, filter, waiting, health) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = customer_name(store, &cid)?;
            let ep = store
                .get_endpoint(&cid, &id)?
                .ok_or(PortalError::NotFound)?;
            let waiting = match ep.pause {
                Some(_) if ep.enabled => {
                    store.waiting(&id, crate::http::api::endpoints::WAITING_CAP)?
                }
                _ => 0,
            };
            let base = DeliveryFilter {
                endpoint_id: Some(id.clone()),
                ..Default::default()
            };
            let (health, _) = super::views::endpoint_health(store, &cid, &id, now_ms())?;
            let log = log_filter::load(store, &cid, base, &mut filter, before.as_deref(), 25)?;
            let buckets = crate::http::stats::buckets(
                store,
                &crate::http::stats::Scope::Endpoint(id.clone()),
                since,
                until,
                crate::domain::stats::Bucket::Hour,
            )?;
            Ok((
                name,
                ep,
                log,
                store.all_event_types()?,
                buckets,
                filter,
                waiting,
                health,
            ))
        })
        .await?;
    let (deliveries, next) = match log {
        LogPage::Event(evt) => return Ok(see_other(&format!("/events/{evt}"))),
        LogPage::Rows { data, next } => (data, next),
    };
    let first = ep.events.first().filter(|e| *e != "*").cloned();
    let page = EndpointPage {
        layout: customer_layout(st, ctx, name, &ep.url, "webhooks"),
        types: types.iter().map(|t| TypeOption::new(t, false)).collect(),
        test_types: types
            .iter()
            .map(|t| TypeOption::new(t, first.as_deref() == Some(t.name.as_str())))
            .collect(),
        form: form.unwrap_or_else(|| EndpointForm::from_endpoint(&ep)),
        refresh: still_running(&deliveries),
        deliveries: deliveries.iter().map(DeliveryRow::from).collect(),
        next: next.map(|n| format!("{n}{}", filter.query())),
        can_resend: true,
        show_url: false,
        back: format!("/webhooks/{}", ep.id),
        empty_hint: if filter.is_active() {
            "No delivery of this endpoint matches these filters."
        } else {
            "Send a test event above, or wait for the next event of a type this endpoint receives."
        },
        recover_default: short_time(now_ms() - 24 * 3600 * 1000).replace(' ', "T")[..16].to_owned(),
        recover_error,
        chart: super::chart::Chart::new(
            "Deliveries per hour",
            &buckets,
            crate::domain::stats::Bucket::Hour,
        ),
        range,
        filter_action: format!("/webhooks/{}", ep.id),
        filter,
        statuses: log_filter::STATUSES,
        ep: EndpointDetail {
            pause: ep
                .pause
                .as_ref()
                .filter(|_| ep.enabled)
                .map(|p| super::views::PauseView::new(p, waiting)),
            failing: (health.failing && ep.enabled && ep.pause.is_none()).then(|| {
                if health.total_hour > 0 {
                    format!(
                        "{} of {} deliveries in the last hour failed",
                        health.failed_hour, health.total_hour
                    )
                } else {
                    "its last 5 deliveries failed".to_owned()
                }
            }),
            ..EndpointDetail::from(&ep)
        },
    };
    Ok(html(status, &page))
}

pub async fn edit_endpoint(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let (mut f, url, rate) = read_endpoint_form(&form, true);
    if f.has_errors() {
        return render_endpoint(
            &st,
            &ctx,
            id,
            EndpointQuery::default(),
            Some(f),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let patch = EndpointPatch {
        url,
        events: Some(f.events.clone()),
        description: Some(Some(f.description.clone()).filter(|d| !d.is_empty())),
        rate_limit_per_sec: Some(rate),
        ..Default::default()
    };
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    match st.run(move |s| s.update_endpoint(&cid, &eid, patch)).await {
        Ok(_) => {
            flash(&st, &ctx.token, "Changes saved.", None);
            Ok(see_other(&format!("/webhooks/{id}")))
        }
        Err(StoreError::Invalid(v)) => {
            f.place(v.code, v.message);
            render_endpoint(
                &st,
                &ctx,
                id,
                EndpointQuery::default(),
                Some(f),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
