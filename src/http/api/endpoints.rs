//! The customer's endpoints: create, read, change, delete, rotate the secret, test, recover.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{EndpointView, FailedWaiting, List, Recovered, SecretView, TestSent};
use super::{ListParams, State, resource};
use crate::domain::input::{TargetUrl, validate_headers, validate_text};
use crate::domain::time::parse_rfc3339;
use crate::domain::{Endpoint, EndpointPatch, NewEndpoint};
use crate::domain::{Headers, IdKind};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{Customer, Lister};
use crate::http::body::{Json, OptionalJson, double_option};
use crate::store::{Store, StoreError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// With the admin token: the customer the endpoint is for (or `?customer_id=`, which wins).
    /// Refused (422 `unknown_field`) with a customer key.
    #[schema(min_length = 1, max_length = 64)]
    pub customer_id: Option<String>,
    /// Absolute http(s) URL, at most 2048 bytes.
    #[schema(
        min_length = 8,
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://"
    )]
    pub url: String,
    /// Distinct catalog event types, or `["*"]` for every type (also ones added later).
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<String>,
    /// At most 1024 bytes.
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Spaces this endpoint's sends: 1–1000000 a second, or null for none.
    #[schema(minimum = 1, maximum = 1000000)]
    pub rate_limit_per_sec: Option<u32>,
    /// At most 20 extra request headers.
    pub headers: Option<Headers>,
    /// How long a delivery may wait while the endpoint is paused (its receiver down), counted
    /// from its creation: 0–2592000 s, 0 = never hold (fail fast); null or absent: the
    /// server's `--max-hold-hours` (24 h by default).
    #[schema(minimum = 0, maximum = 2592000)]
    pub max_hold_secs: Option<u64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    #[schema(
        min_length = 8,
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://"
    )]
    pub url: Option<String>,
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// 1–1000000 a second, or null for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    pub rate_limit_per_sec: Option<Option<u32>>,
    pub headers: Option<Headers>,
    /// 0–2592000 s, or null for the server's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 2592000)]
    pub max_hold_secs: Option<Option<u64>>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps signing too (0–604800 s, default 0).
    #[schema(minimum = 0, maximum = 604800)]
    pub keep_old_for_secs: Option<u64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SendTest {
    /// Default: the endpoint's first subscribed type.
    #[schema(min_length = 1, max_length = 128)]
    pub event: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub since: String,
    /// RFC 3339; default now.
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

/// The most sends a second an endpoint's rate limit may allow.
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

fn check_rate(rate: Option<u32>) -> Result<(), ApiError> {
    if rate.is_some_and(|r| !(1..=MAX_RATE_LIMIT).contains(&r)) {
        return Err(ApiError::invalid(
            "invalid_rate_limit",
            format!("rate_limit_per_sec must be from 1 to {MAX_RATE_LIMIT}, or null for none"),
        ));
    }
    Ok(())
}

/// Waiting deliveries are counted up to this many.
pub const WAITING_CAP: usize = 100_000;

/// The endpoint as answered: what waits behind its pause is counted.
fn view(s: &dyn Store, e: Endpoint) -> crate::store::Result<EndpointView> {
    let waiting = match e.pause {
        Some(_) if e.enabled => s.waiting(&e.id, WAITING_CAP)?,
        _ => 0,
    };
    Ok(EndpointView::of(e, waiting))
}

#[utoipa::path(post, path = "/api/v1/endpoints/{id}/resume", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The endpoint, active again: its waiting deliveries go, from the small start", body = EndpointView),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn resume(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    let v = st
        .run(move |s| {
            s.get_endpoint(&who.id, &id)?.ok_or(StoreError::NotFound)?;
            let e = s
                .change_pause(&id, Box::new(|_| None))?
                .ok_or(StoreError::NotFound)?;
            view(s, e)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(post, path = "/api/v1/endpoints/{id}/fail-waiting", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "How many waiting deliveries failed (`receiver_unavailable`, never sent); the pause goes on", body = FailedWaiting),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn fail_waiting(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    let n = st
        .run(move |s| {
            let e = s.get_endpoint(&who.id, &id)?.ok_or(StoreError::NotFound)?;
            if e.pause.is_none() {
                return Ok(0);
            }
            s.fail_all_waiting(&id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(FailedWaiting { deliveries: n }))
}

/// The longest `max_hold_secs`: 30 days.
pub const MAX_HOLD_SECS: u64 = 30 * 24 * 3600;

fn check_hold(secs: Option<u64>) -> Result<(), ApiError> {
    if secs.is_some_and(|s| s > MAX_HOLD_SECS) {
        return Err(ApiError::invalid(
            "invalid_max_hold",
            format!(
                "max_hold_secs must be from 0 to {MAX_HOLD_SECS}, or null for the server's default"
            ),
        ));
    }
    Ok(())
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    if let Some(d) = d {
        validate_text("description", d, true)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/endpoints", tag = "customer", security(("bearer" = [])),
    params(ListParams, super::OwnerParam),
    responses((status = 200, body = List<EndpointView>), (status = 401, body = ErrorBody),
        (status = 422, description = "A customer key named a customer", body = ErrorBody),
        (status = 404, description = "With the admin token: no such customer", body = ErrorBody)))]
pub async fn list_endpoints(
    who: Lister,
    st: State,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = q
        .into_inner()
        .read(&st, move |s, page| {
            let page = s.list_endpoints(who.owner(), page)?;
            let data = page
                .data
                .into_iter()
                .map(|e| view(s, e))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(crate::store::Page {
                data,
                next: page.next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |v| v)))
}

#[utoipa::path(post, path = "/api/v1/endpoints", tag = "customer", security(("bearer" = [])),
    request_body = CreateEndpoint, params(super::OwnerParam),
    responses((status = 201, body = EndpointView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "With the admin token: no such customer", body = ErrorBody)))]
pub async fn create_endpoint(
    who: Lister,
    st: State,
    body: Json<CreateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let b = body.value;
    // A customer key: its own. The operator: `?customer_id=`, else the body's `customer_id`.
    if who.by_key && b.customer_id.is_some() {
        return Err(crate::http::auth::not_for_a_key());
    }
    let owner = match (who.customer, b.customer_id.filter(|c| !c.is_empty())) {
        (Some(c), _) => c,
        (None, Some(c)) => IdKind::Customer.check(c)?,
        (None, None) => {
            return Err(ApiError::invalid(
                "customer_id_required",
                "with the admin token, name the customer: customer_id in the body or ?customer_id=cus_…",
            ));
        }
    };
    let url = TargetUrl::parse(&b.url)?;
    check_description(&b.description)?;
    check_rate(b.rate_limit_per_sec)?;
    check_hold(b.max_hold_secs)?;
    let headers = validate_headers(&b.headers.unwrap_or_default())?;
    let new = NewEndpoint {
        url,
        events: b.events,
        description: b.description,
        enabled: b.enabled.unwrap_or(true),
        rate_limit_per_sec: b.rate_limit_per_sec,
        headers,
        max_hold_secs: b.max_hold_secs,
    };
    let max = st.limits.max_endpoints_per_customer;
    let e = st.run(move |s| s.create_endpoint(&owner, new, max)).await?;
    Ok(HttpResponse::Created().json(EndpointView::of(e, 0)))
}

#[utoipa::path(get, path = "/api/v1/endpoints/{id}", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = ErrorBody)))]
pub async fn get_endpoint(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    let v = st
        .run(move |s| {
            s.get_endpoint(&who.id, &id)?
                .map(|e| view(s, e))
                .transpose()
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(patch, path = "/api/v1/endpoints/{id}", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateEndpoint,
    responses((status = 200, body = EndpointView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_endpoint(
    who: Customer,
    st: State,
    id: web::Path<String>,
    body: Json<UpdateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    let b = body.value;
    let url = b.url.as_deref().map(TargetUrl::parse).transpose()?;
    if let Some(d) = &b.description {
        check_description(d)?;
    }
    if let Some(r) = b.rate_limit_per_sec {
        check_rate(r)?;
    }
    if let Some(h) = b.max_hold_secs {
        check_hold(h)?;
    }
    let headers = b.headers.as_ref().map(validate_headers).transpose()?;
    let patch = EndpointPatch {
        url,
        events: b.events,
        description: b.description,
        enabled: b.enabled,
        rate_limit_per_sec: b.rate_limit_per_sec,
        headers,
        max_hold_secs: b.max_hold_secs,
    };
    let v = st
        .run(move |s| view(s, s.update_endpoint(&who.id, &id, patch)?))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(delete, path = "/api/v1/endpoints/{id}", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_endpoint(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    st.run(move |s| s.delete_endpoint(&who.id, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/endpoints/{id}/rotate-secret", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RotateSecret,
    responses((status = 200, body = SecretView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rotate_secret(
    who: Customer,
    st: State,
    id: web::Path<String>,
    body: OptionalJson<RotateSecret>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    let keep = body.0.keep_old_for_secs.unwrap_or(0);
    if keep > 604_800 {
        return Err(ApiError::invalid(
            "invalid_keep_old_for_secs",
            "keep_old_for_secs must be from 0 to 604800",
        ));
    }
    let e = st.run(move |s| s.rotate_secret(&who.id, &id, keep)).await?;
    Ok(HttpResponse::Ok().json(SecretView { secret: e.secret }))
}

#[utoipa::path(post, path = "/api/v1/endpoints/{id}/test", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SendTest,
    responses((status = 202, body = TestSent), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_test(
    who: Customer,
    st: State,
    id: web::Path<String>,
    body: OptionalJson<SendTest>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    st.charge_send(&who.id).await?;
    let event = body.0.event;
    let sent = st.run(move |s| s.send_test(&who.id, &id, event)).await?;
    Ok(HttpResponse::Accepted().json(TestSent {
        event_id: sent.event_id,
        delivery_id: sent.delivery_id,
    }))
}

#[utoipa::path(post, path = "/api/v1/endpoints/{id}/recover", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Recover,
    responses((status = 202, body = Recovered), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "The customer's send budget is spent; `Retry-After` says when it has room", body = ErrorBody)))]
pub async fn recover(
    who: Customer,
    st: State,
    id: web::Path<String>,
    body: Json<Recover>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Endpoint.check(id.into_inner())?;
    let time = |field: &str, s: &str| {
        parse_rfc3339(s).ok_or_else(|| {
            ApiError::invalid("invalid_time", format!("{field} must be an RFC 3339 time"))
        })
    };
    let since = time("since", &body.value.since)?;
    let until = body
        .value
        .until
        .as_deref()
        .map(|u| time("until", u))
        .transpose()?;
    // As many as the send budget allows now, the oldest first; the rest on a later call.
    let r = st.recover(&who.id, id, since, until).await?;
    Ok(HttpResponse::Accepted().json(Recovered {
        deliveries: r.made,
        left: r.left,
    }))
}

/// The endpoint routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post};
    cfg.service(
        resource("/api/v1/endpoints")
            .route(get().to(list_endpoints))
            .route(post().to(create_endpoint)),
    )
    .service(
        resource("/api/v1/endpoints/{id}")
            .route(get().to(get_endpoint))
            .route(patch().to(update_endpoint))
            .route(delete().to(delete_endpoint)),
    )
    .service(resource("/api/v1/endpoints/{id}/rotate-secret").route(post().to(rotate_secret)))
    .service(resource("/api/v1/endpoints/{id}/test").route(post().to(send_test)))
    .service(resource("/api/v1/endpoints/{id}/recover").route(post().to(recover)))
    .service(resource("/api/v1/endpoints/{id}/resume").route(post().to(resume)))
    .service(resource("/api/v1/endpoints/{id}/fail-waiting").route(post().to(fail_waiting)));
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_endpoints,
    create_endpoint,
    get_endpoint,
    update_endpoint,
    delete_endpoint,
    rotate_secret,
    send_test,
    recover,
    resume,
    fail_waiting
))]
pub struct Doc;
