//! The customer's delivery log, and resending one delivery.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::views::{DeliveryView, List};
use super::{State, resource};
use crate::domain::DeliveryFilter;
use crate::domain::{DeliveryStatus, IdKind};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{Customer, Lister};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// 1–250, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 250)]
    pub limit: Option<String>,
    /// The `next` of the previous page: the page starts after it.
    #[param(min_length = 1, max_length = 64)]
    pub before: Option<String>,
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
    /// pending, sending, succeeded, failed or interrupted.
    #[param(value_type = Option<DeliveryStatusParam>)]
    pub status: Option<String>,
    /// Only deliveries made after this one (a delivery id), oldest first; the answer's `next`
    /// is the `after` of the following page. For following the log as it grows.
    #[param(min_length = 1, max_length = 64)]
    pub after: Option<String>,
    /// Only deliveries of this event type.
    #[param(max_length = 128)]
    pub event_type: Option<String>,
    /// RFC 3339: only deliveries made at or after this time.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339: only deliveries made before this time.
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// The statuses a delivery list can be filtered by.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used: the handler parses the text itself
pub enum DeliveryStatusParam {
    Pending,
    Sending,
    Succeeded,
    Failed,
    Interrupted,
}

/// An optional RFC 3339 query value; 422 `invalid_time` when it is not one (empty included).
fn time_param(field: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => crate::domain::time::parse_rfc3339(s)
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid("invalid_time", format!("{field} must be an RFC 3339 time"))
            }),
    }
}

#[utoipa::path(get, path = "/api/v1/deliveries", tag = "customer", security(("bearer" = [])),
    params(DeliveryParams, super::OwnerParam),
    responses((status = 200, body = List<DeliveryView>), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "With the admin token: no such customer", body = ErrorBody)))]
pub async fn list_deliveries(
    who: Lister,
    st: State,
    q: web::Query<DeliveryParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "invalid_status",
                "status must be pending, sending, succeeded, failed or interrupted",
            )
        })?),
    };
    let filter = DeliveryFilter {
        endpoint_id: q.endpoint_id.filter(|s| !s.is_empty()),
        event_id: q.event_id.filter(|s| !s.is_empty()),
        status,
        event: match q.event_type.filter(|s| !s.is_empty()) {
            Some(t) if t.chars().count() > 128 => {
                return Err(ApiError::invalid(
                    "invalid_event_type",
                    "event_type must be an event type's name (at most 128 characters)",
                ));
            }
            t => t,
        },
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        after: match q.after {
            Some(a) if a.is_empty() || a.chars().count() > 64 => {
                return Err(ApiError::invalid(
                    "invalid_after",
                    "after must be a delivery id (at most 64 characters)",
                ));
            }
            a => a,
        },
    };
    let paging = super::ListParams {
        limit: q.limit,
        before: q.before,
    };
    let page = paging
        .read(&st, move |s, page| {
            Ok(s.list_deliveries(who.owner(), &filter, page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, DeliveryView::from)))
}

#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 404, body = ErrorBody)))]
pub async fn get_delivery(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Delivery.check(id.into_inner())?;
    let d = st
        .run(move |s| s.get_delivery(&who.id, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(DeliveryView::from(d)))
}

#[utoipa::path(post, path = "/api/v1/deliveries/{id}/resend", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody)))]
pub async fn resend_delivery(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Delivery.check(id.into_inner())?;
    st.charge_send(&who.id).await?;
    let d = st.run(move |s| s.resend_delivery(&who.id, &id)).await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(d)))
}

/// The delivery log's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post};
    cfg.service(resource("/api/v1/deliveries").route(get().to(list_deliveries)))
        .service(resource("/api/v1/deliveries/{id}").route(get().to(get_delivery)))
        .service(resource("/api/v1/deliveries/{id}/resend").route(post().to(resend_delivery)));
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_deliveries, get_delivery, resend_delivery))]
pub struct Doc;
