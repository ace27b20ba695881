//! The customer's Webhooks tab: the endpoint list and form, one endpoint's page with its
//! delivery log, and the actions on it (edit, enable, delete, rotate, test, recover, resend).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::log_filter::{self, LogFilter, LogPage};

use super::flash;
use super::forms::{Form, Posted};
use super::views::{
    DeliveryRow, EndpointDetail, EndpointForm, EndpointRow, TypeOption, short_time, still_running,
};
use super::{
    ConfirmPage, CustomerCtx, Layout, PortalError, before, blocking, customer_layout,
    customer_name, html, see_other,
};
use crate::domain::IdKind;
use crate::domain::input::{TargetUrl, validate_text};
use crate::domain::time::now_ms;
use crate::domain::{DeliveryFilter, EndpointPatch, NewEndpoint};
use crate::http::AppState;
use crate::store::{PageQuery, StoreError};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    endpoints: Vec<EndpointRow>,
    next: Option<String>,
    types: Vec<TypeOption>,
    form: EndpointForm,
}

pub async fn webhooks(
    ctx: CustomerCtx,
    st: State,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    render_webhooks(
        &st,
        &ctx,
        before(&req),
        EndpointForm::default(),
        StatusCode::OK,
    )
    .await
}

async fn render_webhooks(
    st: &AppState,
    ctx: &CustomerCtx,
    before: Option<String>,
    form: EndpointForm,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let store = st.store.clone();
    let cid = ctx.customer_id.clone();
    let (name, endpoints, next, types) = blocking(move || {
        let name = customer_name(store.as_ref(), &cid)?;
        let page = store.list_endpoints(
            &cid,
            PageQuery {
                before: before.as_deref(),
                limit: 50,
            },
        )?;
        let mut rows = Vec::with_capacity(page.data.len());
        let now = now_ms();
        for e in &page.data {
            let (health, last) = super::views::endpoint_health(store.as_ref(), &cid, &e.id, now)?;
            rows.push(EndpointRow::new(e, last.as_ref(), &health));
        }
        let types = store.all_event_types()?;
        Ok((name, rows, page.next, types))
    })
    .await?;
    let page = WebhooksPage {
        layout: customer_layout(st, ctx, name, "Webhooks", "webhooks"),
        endpoints,
        next,
        types: types.iter().map(|t| TypeOption::new(t, false)).collect(),
        form,
    };
    Ok(html(status, &page))
}

/// Reads the endpoint form; marks what is wrong without asking the store.
fn read_endpoint_form(
    form: &Form,
    with_rate: bool,
) -> (EndpointForm, Option<TargetUrl>, Option<u32>) {
    let events = form.all("events");
    let all_events = events.iter().any(|e| e == "*");
    let mut f = EndpointForm {
        url: form.get("url").trim().to_owned(),
        description: form.get("description").trim().to_owned(),
        events: if all_events {
            vec!["*".to_owned()]
        } else {
            events
        },
        all_events,
        rate: form.get("rate_limit_per_sec").trim().to_owned(),
        ..Default::default()
    };
    let url = match TargetUrl::parse(&f.url) {
        Ok(u) => Some(u),
        Err(e) => {
            f.place(e.code, e.message);
            None
        }
    };
    if f.events.is_empty() {
        f.events_error = Some("Pick at least one event type.".into());
    }
    if let Err(e) = validate_text("description", &f.description, true) {
        f.description_error = Some(e.message);
    }
    let mut rate = None;
    if with_rate && !f.rate.is_empty() {
        match f.rate.parse::<u32>() {
            Ok(r) if (1..=crate::http::api::endpoints::MAX_RATE_LIMIT).contains(&r) => {
                rate = Some(r)
            }
            _ => {
                f.rate_error =
                    Some("Enter a whole number of requests per second, from 1 to 1000000.".into())
            }
        }
    }
    (f, url, rate)
}

pub async fn create_endpoint(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
) -> Result<HttpResponse, PortalError> {
    let (mut f, url, _) = read_endpoint_form(&form, false);
    let (Some(url), false) = (url, f.has_errors()) else {
        return render_webhooks(&st, &ctx, None, f, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let new = NewEndpoint {
        url,
        events: f.events.clone(),
        description: Some(f.description.clone()).filter(|d| !d.is_empty()),
        enabled: true,
        rate_limit_per_sec: None,
        headers: Default::default(),
        max_hold_secs: None,
    };
    let store = st.store.clone();
    let cid = ctx.customer_id.clone();
    let max = st.limits.max_endpoints_per_customer;
    match web::block(move || store.create_endpoint(&cid, new, max)).await? {
        Ok(e) => {
            flash(
                &st,
                &ctx.token,
                "Endpoint added. Send it a test event to check your receiver.",
                None,
            );
            Ok(see_other(&format!("/webhooks/{}", e.id)))
        }
        Err(StoreError::Invalid(v)) => {
            f.place(v.code, v.message);
            render_webhooks(&st, &ctx, None, f, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

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
struct EndpointQuery {
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

async fn render_endpoint(
    st: &AppState,
    ctx: &CustomerCtx,
    id: String,
    q: EndpointQuery,
    form: Option<EndpointForm>,
    recover_error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let store = st.store.clone();
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
    let (name, ep, log, types, buckets, filter, waiting, health) = blocking(move || {
        let name = customer_name(store.as_ref(), &cid)?;
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
        let (health, _) = super::views::endpoint_health(store.as_ref(), &cid, &id, now_ms())?;
        let log = log_filter::load(
            store.as_ref(),
            &cid,
            base,
            &mut filter,
            before.as_deref(),
            25,
        )?;
        let buckets = crate::http::stats::buckets(
            store.as_ref(),
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
    let store = st.store.clone();
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    match web::block(move || store.update_endpoint(&cid, &eid, patch)).await? {
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

pub async fn toggle_endpoint(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let store = st.store.clone();
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let e = blocking(move || {
        let e = store
            .get_endpoint(&cid, &eid)?
            .ok_or(PortalError::NotFound)?;
        let patch = EndpointPatch {
            enabled: Some(!e.enabled),
            ..Default::default()
        };
        Ok(store.update_endpoint(&cid, &eid, patch)?)
    })
    .await?;
    let msg = if e.enabled {
        "Endpoint enabled: it receives new events again."
    } else {
        "Endpoint disabled: it receives nothing until you enable it; deliveries that were waiting are marked failed."
    };
    flash(&st, &ctx.token, msg, None);
    Ok(see_other(&format!("/webhooks/{id}")))
}

/// "Resume now" on a paused endpoint: what waits goes, from a small start.
pub async fn resume(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let store = st.store.clone();
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    blocking(move || {
        store
            .get_endpoint(&cid, &eid)?
            .ok_or(PortalError::NotFound)?;
        store.change_pause(&eid, Box::new(|_| None))?;
        Ok(())
    })
    .await?;
    flash(
        &st,
        &ctx.token,
        "Endpoint resumed: the deliveries that waited go now, a few at a time at first.",
        None,
    );
    Ok(see_other(&format!("/webhooks/{id}")))
}

/// "Fail the waiting ones" on a paused endpoint: never sent, `receiver_unavailable`.
pub async fn fail_waiting(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let store = st.store.clone();
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let n = blocking(move || {
        let e = store
            .get_endpoint(&cid, &eid)?
            .ok_or(PortalError::NotFound)?;
        if e.pause.is_none() {
            return Ok(0);
        }
        Ok(store.fail_all_waiting(&eid)?)
    })
    .await?;
    let msg = format!(
        "{n} waiting deliveries marked failed (receiver unavailable); they were never sent. The endpoint stays paused until its receiver answers."
    );
    flash(&st, &ctx.token, &msg, None);
    Ok(see_other(&format!("/webhooks/{id}")))
}

pub async fn confirm_delete(
    ctx: CustomerCtx,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let store = st.store.clone();
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let (name, ep) = blocking(move || {
        let name = customer_name(store.as_ref(), &cid)?;
        Ok((
            name,
            store
                .get_endpoint(&cid, &eid)?
                .ok_or(PortalError::NotFound)?,
        ))
    })
    .await?;
    super::ok_page(&ConfirmPage {
        layout: customer_layout(&st, &ctx, name, "Delete endpoint", "webhooks"),
        heading: "Delete this endpoint?".into(),
        message: format!(
            "{} will receive nothing more. Its delivery log goes too, and deliveries not yet sent are dropped. This cannot be undone.",
            ep.url
        ),
        action: format!("/webhooks/{id}/delete"),
        button: "Delete endpoint",
        cancel: format!("/webhooks/{id}"),
        fields: Vec::new(),
    })
}

pub async fn delete_endpoint(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let cid = ctx.customer_id.clone();
    st.run(move |s| s.delete_endpoint(&cid, &id)).await?;
    flash(&st, &ctx.token, "Endpoint deleted.", None);
    Ok(see_other("/webhooks"))
}

pub async fn rotate(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let keep: u64 = form
        .get("keep_old_for_secs")
        .parse()
        .ok()
        .filter(|k| *k <= 604_800)
        .ok_or_else(|| PortalError::BadForm("Pick how long to keep the old secret.".into()))?;
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let e = st.run(move |s| s.rotate_secret(&cid, &eid, keep)).await?;
    let msg = if keep > 0 {
        "Secret rotated. Requests are signed with both secrets until the old one expires. The new secret:"
    } else {
        "Secret rotated; the old one no longer signs. The new secret:"
    };
    flash(&st, &ctx.token, msg, Some(e.secret));
    Ok(see_other(&format!("/webhooks/{id}")))
}

pub async fn send_test(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let event = Some(form.get("event").to_owned()).filter(|e| !e.is_empty());
    st.charge_send(&ctx.customer_id).await?;
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    st.run(move |s| s.send_test(&cid, &eid, event)).await?;
    flash(
        &st,
        &ctx.token,
        "Test event sent. Its delivery shows in the log below.",
        None,
    );
    Ok(see_other(&format!("/webhooks/{id}#log")))
}

pub async fn recover(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let raw = form.get("since").trim();
    let since = log_filter::parse_local(raw);
    let Some(since) = since else {
        let msg = "Enter a date and time, like 2026-11-27T09:30.".to_owned();
        return render_endpoint(
            &st,
            &ctx,
            id,
            EndpointQuery::default(),
            None,
            Some(msg),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    if form.get("confirm") != "1" {
        // First say how many, and ask.
        let count = st
            .run(move |s| s.recover(&cid, &eid, since, None, 0))
            .await?
            .left;
        if count == 0 {
            let msg = "No failed deliveries since then: nothing to resend.";
            flash(&st, &ctx.token, msg, None);
            return Ok(see_other(&format!("/webhooks/{id}#log")));
        }
        let per_min = st.limits.sends_per_min();
        let store = st.store.clone();
        let cid = ctx.customer_id.clone();
        let name = blocking(move || customer_name(store.as_ref(), &cid)).await?;
        let many = if count == 1 {
            "1 failed delivery".to_owned()
        } else {
            format!("{count} failed deliveries")
        };
        return super::ok_page(&ConfirmPage {
            layout: customer_layout(&st, &ctx, name, "Resend failed", "webhooks"),
            heading: format!("Resend {many}?"),
            message: format!(
                "{many} since {raw} did not succeed: each goes once more, the oldest first. Resends count toward your limit of {per_min} a minute; what it leaves for now stays failed until you resend again."
            ),
            action: format!("/webhooks/{id}/recover"),
            button: "Resend",
            cancel: format!("/webhooks/{id}#log"),
            fields: vec![("since", raw.to_owned()), ("confirm", "1".to_owned())],
        });
    }
    let r = st.recover(&cid, eid, since, None).await?;
    let mut msg = match r.made {
        0 => "No failed deliveries since then: nothing to resend.".to_owned(),
        1 => "1 failed delivery sent again.".to_owned(),
        n => format!("{n} failed deliveries sent again."),
    };
    if r.left > 0 {
        msg.push_str(&format!(
            " {} more wait for your send limit to refill: resend again in a minute.",
            r.left
        ));
    }
    flash(&st, &ctx.token, msg, None);
    Ok(see_other(&format!("/webhooks/{id}#log")))
}

pub async fn resend(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Delivery.check(path.into_inner())?;
    st.charge_send(&ctx.customer_id).await?;
    let cid = ctx.customer_id.clone();
    let d = st.run(move |s| s.resend_delivery(&cid, &id)).await?;
    flash(&st, &ctx.token, "Delivery sent again.", None);
    // Only back to one of the customer's own pages: never anywhere a crafted value points.
    let back = form.get("back");
    let known =
        |prefix: &str, kind: IdKind| back.strip_prefix(prefix).is_some_and(|id| kind.matches(id));
    let back = if known("/webhooks/", IdKind::Endpoint) || known("/events/", IdKind::Event) {
        back.to_owned()
    } else {
        format!("/webhooks/{}", d.endpoint_id)
    };
    Ok(see_other(&format!("{back}#log")))
}
