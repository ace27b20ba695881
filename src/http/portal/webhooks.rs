//! The customer's Webhooks tab: the endpoint list and the form that adds one (one endpoint's
//! page is `endpoint.rs`, the actions on it `actions.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::flash;
use super::forms::{Form, Posted};
use super::views::{EndpointForm, EndpointRow, TypeOption};
use super::{
    CustomerCtx, Layout, PortalError, before, customer_layout, customer_name, html, see_other,
};
use crate::domain::NewEndpoint;
use crate::domain::input::{TargetUrl, validate_text};
use crate::domain::time::now_ms;
use crate::http::AppState;
use crate::store::{Owner, PageQuery, StoreError};

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
    let cid = ctx.customer_id.clone();
    let (name, endpoints, next, types) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = customer_name(store, &cid)?;
            let page = store.list_endpoints(
                Owner::Customer(&cid),
                PageQuery {
                    before: before.as_deref(),
                    limit: 50,
                },
            )?;
            let mut rows = Vec::with_capacity(page.data.len());
            let now = now_ms();
            for e in &page.data {
                let (health, last) = super::views::endpoint_health(store, &cid, &e.id, now)?;
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
pub(super) fn read_endpoint_form(
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
    let cid = ctx.customer_id.clone();
    let max = st.limits.max_endpoints_per_customer;
    match st.run(move |s| s.create_endpoint(&cid, new, max)).await {
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
