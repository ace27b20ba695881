//! The JSON API under `/api/v1`, `/healthz`, `/metrics` and the OpenAPI document generated
//! from the handlers' annotations.

pub mod backup;
pub mod customers;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod events;
pub mod openapi;
pub mod stats;
pub mod views;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use crate::error::ApiError;
use views::Health;

pub type State = web::Data<AppState>;

/// Store work for an API handler, off the actix threads (`crate::http::blocking`).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::http::blocking(f).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–250, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 250)]
    pub limit: Option<String>,
    /// The `next` of the previous page: the page starts after it.
    #[param(min_length = 1, max_length = 64)]
    pub before: Option<String>,
}

/// Whose objects a customer route acts on when called with the admin token.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerParam {
    /// With the admin token: the customer to act for (lists: only this customer's, every
    /// customer's when absent; creating an endpoint: required); 404 when no such customer.
    /// Refused with a customer key (422 `unknown_field`): a key acts for its own customer.
    #[param(min_length = 1, max_length = 64)]
    pub customer_id: Option<String>,
}

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
    let (pending, sending) = st.run(|s| s.queue_counts()).await?;
    Ok(HttpResponse::Ok().json(views::StatusView {
        version: env!("CARGO_PKG_VERSION").into(),
        engine: st.store.engine_name().into(),
        node_id: st.node_id.to_string(),
        pending,
        sending,
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
    let (pending, claimed) = st.run(move |s| s.queue_counts()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(st.metrics.render(pending, claimed, st.store.rows_written())))
}

/// The answer for any path nothing else matched.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// 405 with the `Allow` header RFC 9110 asks for, read from the OpenAPI document (which a
/// test holds to the routes).
async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    let allow = req
        .match_pattern()
        .and_then(|p| openapi::allowed_methods(&p))
        .unwrap_or_default();
    let mut resp = actix_web::ResponseError::error_response(&ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    ));
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}

/// Every route of the API; used by the server and by tests alike.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, resource};
    let r = |path: &str| resource(path).default_service(web::to(method_not_allowed));
    cfg.service(r("/healthz").route(get().to(healthz)))
        .service(r("/readyz").route(get().to(readyz)))
        .service(r("/metrics").route(get().to(metrics)))
        .service(
            web::scope("/api/v1")
                .service(r("/openapi.json").route(get().to(openapi::openapi)))
                .service(
                    r("/customers")
                        .route(post().to(customers::create_customer))
                        .route(get().to(customers::list_customers)),
                )
                .service(
                    r("/customers/{id}")
                        .route(get().to(customers::get_customer))
                        .route(delete().to(customers::delete_customer)),
                )
                .service(r("/customers/{id}/sessions").route(delete().to(customers::end_sessions)))
                .service(
                    r("/customers/{id}/portal-links")
                        .route(post().to(customers::create_portal_link)),
                )
                .service(
                    r("/customers/{id}/api-keys")
                        .route(post().to(customers::create_api_key))
                        .route(get().to(customers::list_api_keys)),
                )
                .service(
                    r("/customers/{id}/api-keys/{key_id}")
                        .route(delete().to(customers::delete_api_key)),
                )
                .service(
                    r("/events")
                        .route(post().to(events::create_event))
                        .route(get().to(events::list_events)),
                )
                .service(r("/events/batch").route(post().to(events::create_events)))
                .service(r("/events/{id}").route(get().to(events::get_event)))
                .service(
                    r("/event-types")
                        .route(get().to(event_types::list_event_types))
                        .route(post().to(event_types::create_event_type)),
                )
                .service(
                    r("/endpoints")
                        .route(get().to(endpoints::list_endpoints))
                        .route(post().to(endpoints::create_endpoint)),
                )
                .service(
                    r("/endpoints/{id}")
                        .route(get().to(endpoints::get_endpoint))
                        .route(patch().to(endpoints::update_endpoint))
                        .route(delete().to(endpoints::delete_endpoint)),
                )
                .service(
                    r("/endpoints/{id}/rotate-secret").route(post().to(endpoints::rotate_secret)),
                )
                .service(r("/endpoints/{id}/test").route(post().to(endpoints::send_test)))
                .service(r("/endpoints/{id}/recover").route(post().to(endpoints::recover)))
                .service(r("/endpoints/{id}/resume").route(post().to(endpoints::resume)))
                .service(
                    r("/endpoints/{id}/fail-waiting").route(post().to(endpoints::fail_waiting)),
                )
                .service(r("/backup").route(post().to(backup::backup)))
                .service(r("/status").route(get().to(status)))
                .service(r("/operator-sessions").route(delete().to(end_operator_sessions)))
                .service(r("/deliveries").route(get().to(deliveries::list_deliveries)))
                .service(r("/stats/deliveries").route(get().to(stats::delivery_stats)))
                .service(r("/deliveries/{id}").route(get().to(deliveries::get_delivery)))
                .service(r("/deliveries/{id}/resend").route(post().to(deliveries::resend_delivery)))
                .default_service(web::to(not_found)),
        );
}

/// Extractor settings that turn malformed queries and paths into JSON errors.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string()).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::not_found().into()));
}
