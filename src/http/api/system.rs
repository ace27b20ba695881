//! The system routes: liveness, readiness, metrics, the node's status, and ending the
//! operator's sessions.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::views::{self, Health};
use super::{State, resource};
use crate::error::ApiError;

/// A liveness check: 200 while the process answers, `degraded` (with the reason) while its
/// store cannot be written. Never 503: a supervisor must not kill a node for its database.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health)))]
pub async fn healthz(st: State) -> Result<HttpResponse, ApiError> {
    let failed = st.store.is_failed();
    Ok(HttpResponse::Ok().json(Health {
        status: if failed { "degraded" } else { "ok" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        reason: failed.then(|| "the store cannot be written; see the server log".into()),
    }))
}

/// A readiness check: 200 when the store answers and can be written; 503 `unavailable`
/// otherwise (a load balancer sends this node nothing meanwhile).
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
pub async fn readyz(st: State) -> Result<HttpResponse, ApiError> {
    if st.store.is_failed() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the store cannot be written; see the server log",
        )
        .retry_after(5));
    }
    st.run(|s| s.queue_counts()).await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        reason: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/status", tag = "operator", security(("bearer" = [])),
    responses((status = 200, body = views::StatusView)))]
pub async fn status(_: crate::http::auth::Admin, st: State) -> Result<HttpResponse, ApiError> {
    let q = st.run(|s| s.queue_counts()).await?;
    Ok(HttpResponse::Ok().json(views::StatusView {
        version: env!("CARGO_PKG_VERSION").into(),
        engine: st.store.engine_name().into(),
        node_id: st.node_id.to_string(),
        pending: q.pending,
        sending: q.claimed,
        nodes: st.store.live_nodes() as u64,
    }))
}

#[utoipa::path(delete, path = "/api/v1/operator-sessions", tag = "operator", security(("bearer" = [])),
    responses((status = 204, description = "Every operator session (portal sign-in at /admin) ended"),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn end_operator_sessions(
    _: crate::http::auth::Admin,
    st: State,
) -> Result<HttpResponse, ApiError> {
    let n = st.run(|s| s.end_operator_sessions()).await?;
    tracing::info!(sessions_ended = n, "operator sessions ended by request");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(st: State) -> Result<HttpResponse, ApiError> {
    let q = st.run(move |s| s.queue_counts()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(st.metrics.render(q, st.store.rows_written())))
}

/// The system routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get};
    cfg.service(resource("/healthz").route(get().to(healthz)))
        .service(resource("/readyz").route(get().to(readyz)))
        .service(resource("/metrics").route(get().to(metrics)))
        .service(resource("/api/v1/status").route(get().to(status)))
        .service(resource("/api/v1/operator-sessions").route(delete().to(end_operator_sessions)));
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics, status, end_operator_sessions))]
pub struct Doc;
