//! `GET /api/v1/stats/deliveries`: deliveries finished per minute or hour, by outcome, with
//! duration percentiles — from the per-minute counters, never a scan of the deliveries.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::views::{DeliveryStatsView, StatsBucketView};
use super::{State, resource};
use crate::domain::IdKind;
use crate::domain::stats::{Bucket, MAX_BUCKETS};
use crate::domain::time::{now_ms, parse_rfc3339, rfc3339};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::Lister;
use crate::http::stats::{Scope, buckets};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Only this endpoint's deliveries.
    pub endpoint_id: Option<String>,
    /// RFC 3339; default 24 hours before `until`.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// `minute` or `hour` (default).
    #[param(value_type = Option<BucketParam>)]
    pub bucket: Option<String>,
}

/// The widths a statistics bucket can have.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used: the handler parses the text itself
pub enum BucketParam {
    Minute,
    Hour,
}

const DAY_MS: i64 = 24 * crate::domain::stats::HOUR_MS;

#[utoipa::path(get, path = "/api/v1/stats/deliveries", tag = "customer", security(("bearer" = [])),
    params(StatsParams, super::OwnerParam),
    responses((status = 200, body = DeliveryStatsView), (status = 404, body = ErrorBody),
               (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn delivery_stats(
    who: Lister,
    st: State,
    q: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        match v.as_deref() {
            None => Ok(None),
            Some(s) => parse_rfc3339(s).map(Some).ok_or_else(|| {
                ApiError::invalid("invalid_time", format!("{field} must be an RFC 3339 time"))
            }),
        }
    };
    let until = time("until", &q.until)?.unwrap_or_else(now_ms);
    let since = time("since", &q.since)?.unwrap_or(until - DAY_MS);
    let bucket = match q.bucket.as_deref() {
        None => Bucket::Hour,
        Some(b) => Bucket::parse(b)
            .ok_or_else(|| ApiError::invalid("invalid_bucket", "bucket must be minute or hour"))?,
    };
    if since >= until {
        return Err(ApiError::invalid(
            "invalid_range",
            "since must be before until",
        ));
    }
    let w = bucket.ms();
    let count = until.div_euclid(w) - since.div_euclid(w) + i64::from(until % w != 0);
    if count > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "too_many_buckets",
            format!(
                "at most {MAX_BUCKETS} buckets per answer: this range has {count} {}s; shorten it or use bucket=hour",
                bucket.as_str()
            ),
        ));
    }
    let endpoint = q.endpoint_id.filter(|s| !s.is_empty());
    let customer = who.customer;
    let data = st
        .run(move |s| {
            let scope = match (endpoint, customer) {
                (Some(ep), owner) => {
                    // Another customer's endpoint, or none: 404 as for every object route.
                    let Ok(ep) = IdKind::Endpoint.check(ep) else {
                        return Err(crate::store::StoreError::NotFound);
                    };
                    let found = match &owner {
                        Some(c) => s.get_endpoint(c, &ep)?.is_some(),
                        None => s.owner_of(&ep)?.is_some(),
                    };
                    if !found {
                        return Err(crate::store::StoreError::NotFound);
                    }
                    Scope::Endpoint(ep)
                }
                (None, Some(c)) => Scope::Customer(c),
                (None, None) => Scope::All,
            };
            buckets(s, &scope, since, until, bucket)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryStatsView {
        bucket: bucket.as_str().into(),
        since: rfc3339(since),
        until: rfc3339(until),
        data: data
            .iter()
            .map(|(start, c)| StatsBucketView::of(*start, c))
            .collect(),
    }))
}

/// The statistics route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::get;
    cfg.service(resource("/api/v1/stats/deliveries").route(get().to(delivery_stats)));
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(delivery_stats))]
pub struct Doc;
