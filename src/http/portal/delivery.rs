//! The page of one delivery, for the customer and in the operator's support view: the request
//! as it was sent (headers kept with the result, custom values masked; the body pretty and
//! raw), the receiver's answer, its times and resend lineage, Resend, and "Copy as curl": the
//! same body and `webhook-id`, signed afresh, for a URL the reader types.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::views::{pretty_json, short_time};
use super::{AdminCtx, CustomerCtx, Layout, PortalError, customer_layout, customer_name};
use crate::domain::signing::webhook_headers;
use crate::domain::time::now_ms;
use crate::domain::{Delivery, Endpoint, Event, IdKind};
use crate::http::AppState;

type State = web::Data<AppState>;

/// Where "Copy as curl" points when the reader has not typed a URL yet.
const CURL_DEFAULT_TO: &str = "http://localhost:9000/webhooks";

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    layout: Layout,
    d: Delivery,
    status: &'static str,
    created: String,
    started: Option<String>,
    finished: Option<String>,
    /// The customer's name, on the operator's console.
    customer: Option<String>,
    /// `/admin/customers/cus_…` on the operator's console, "" for the customer.
    prefix: String,
    event_link: String,
    endpoint_link: String,
    back_link: String,
    headers: Option<Vec<(String, String)>>,
    body_pretty: String,
    body_raw: String,
    response_pretty: Option<String>,
    error: Option<&'static str>,
    resend_back: String,
    can_resend: bool,
    curl_to: String,
    curl: Option<String>,
    curl_error: Option<String>,
    custom_headers: usize,
}

/// What the page is drawn from, read in one blocking call.
struct Read {
    delivery: Delivery,
    event: Option<Event>,
    endpoint: Option<Endpoint>,
    headers: Option<Vec<(String, String)>>,
}

fn read(store: &dyn crate::store::Store, customer_id: &str, id: &str) -> Result<Read, PortalError> {
    let delivery = store
        .get_delivery(customer_id, id)?
        .ok_or(PortalError::NotFound)?;
    let event = store
        .get_event(customer_id, &delivery.event_id)?
        .map(|(e, _)| e);
    let endpoint = store.get_endpoint(customer_id, &delivery.endpoint_id)?;
    let headers = store.delivery_request(id)?;
    Ok(Read {
        delivery,
        event,
        endpoint,
        headers,
    })
}

/// The customer's page of one of its deliveries (404 for anyone else's).
pub async fn customer_delivery(
    ctx: CustomerCtx,
    st: State,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Delivery
        .check(path.into_inner())
        .map_err(|_| PortalError::NotFound)?;
    let cid = ctx.customer_id.clone();
    let (name, r) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = customer_name(store, &cid)?;
            Ok((name, read(store, &cid, &id)?))
        })
        .await?;
    let layout = customer_layout(&st, &ctx, name, "Delivery", "webhooks");
    page(layout, None, String::new(), r, &req)
}

/// The same page in the operator's support view of a customer.
pub async fn admin_delivery(
    ctx: AdminCtx,
    st: State,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let (cid, id) = path.into_inner();
    let cid = IdKind::Customer
        .check(cid)
        .map_err(|_| PortalError::NotFound)?;
    let id = IdKind::Delivery
        .check(id)
        .map_err(|_| PortalError::NotFound)?;
    let c = cid.clone();
    let (name, r) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = store.get_customer(&c)?.ok_or(PortalError::NotFound)?.name;
            Ok((name, read(store, &c, &id)?))
        })
        .await?;
    let layout = super::admin::layout(&st, &ctx, "Delivery");
    page(
        layout,
        Some(name),
        format!("/admin/customers/{cid}"),
        r,
        &req,
    )
}

fn page(
    layout: Layout,
    customer: Option<String>,
    prefix: String,
    r: Read,
    req: &HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let d = r.delivery;
    let admin = customer.is_some();
    let (event_link, endpoint_link, back_link, resend_back) = if admin {
        (
            format!("/admin/events/{}", d.event_id),
            format!("{prefix}?endpoint={}#log", d.endpoint_id),
            format!("{prefix}#log"),
            format!("{prefix}#log"),
        )
    } else {
        (
            format!("/events/{}", d.event_id),
            format!("/webhooks/{}", d.endpoint_id),
            format!("/webhooks/{}#log", d.endpoint_id),
            format!("/webhooks/{}", d.endpoint_id),
        )
    };
    let body_raw = r.event.as_ref().map(|e| e.body.clone()).unwrap_or_default();
    let curl_to = super::query_param(req, "to")
        .filter(|t| !t.is_empty())
        .unwrap_or_default();
    let (curl, curl_error) = match (&r.event, &r.endpoint) {
        (Some(event), Some(endpoint)) if !curl_to.is_empty() => match curl_target(&curl_to) {
            Ok(to) => (Some(curl_command(&to, event, endpoint, now_ms())), None),
            Err(why) => (None, Some(why)),
        },
        (_, None) => (
            None,
            Some("The endpoint is gone: there is no secret to sign with.".into()),
        ),
        _ => (None, None),
    };
    let response_pretty = d.response_body.as_deref().map(pretty_json);
    super::ok_page(&DeliveryPage {
        layout,
        status: d.status.as_str(),
        created: short_time(d.created_at),
        started: d.started_at.map(short_time),
        finished: d.finished_at.map(short_time),
        customer,
        prefix,
        event_link,
        endpoint_link,
        back_link,
        headers: r.headers,
        body_pretty: pretty_json(&body_raw),
        body_raw,
        response_pretty,
        error: d.error.map(|e| e.as_str()),
        resend_back,
        can_resend: d.finished_at.is_some(),
        curl_to: if curl_to.is_empty() {
            CURL_DEFAULT_TO.to_owned()
        } else {
            curl_to
        },
        curl,
        curl_error,
        custom_headers: r.endpoint.as_ref().map_or(0, |e| e.headers.len()),
        d,
    })
}

/// The URL typed for "Copy as curl": http or https, at most 2,048 characters. It is only
/// written into the command, never fetched.
fn curl_target(to: &str) -> Result<String, String> {
    crate::domain::TargetUrl::parse(to.trim())
        .map(|_| to.trim().to_owned())
        .map_err(|e| format!("That URL cannot be used: {}.", e.message))
}

/// A curl command that POSTs the event's body with its `webhook-id`, signed now with the
/// endpoint's secret (a receiver refuses a timestamp older than five minutes), to `to`; each
/// argument quoted for POSIX shells.
pub fn curl_command(to: &str, event: &Event, endpoint: &Endpoint, now: i64) -> String {
    let header = |k: &str, v: &str| format!("  -H {} \\\n", sh_quote(&format!("{k}: {v}")));
    let mut cmd = format!("curl -X POST {} \\\n", sh_quote(to));
    cmd.push_str(&header("content-type", "application/json"));
    for (k, v) in webhook_headers(event, endpoint, now) {
        cmd.push_str(&header(k, &v));
    }
    cmd.push_str(&format!("  --data-binary {}", sh_quote(&event.body)));
    cmd
}

/// One argument for a POSIX shell: in single quotes, where nothing is special but the quote
/// itself, which is closed, escaped and reopened.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn quoting_keeps_quotes_substitutions_and_newlines_literal() {
        assert_eq!(sh_quote("plain"), "'plain'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(sh_quote("a\nb"), "'a\nb'");
        // Run through a real shell, each comes back unchanged.
        for s in ["it's", "$(echo hi) `echo hi` $HOME", "a\nb\n", "'''", "\\"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }
}
