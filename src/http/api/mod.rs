//! The JSON API under `/api/v1`, `/healthz`, `/metrics` and the OpenAPI document generated
//! from the handlers' annotations.

pub mod backup;
pub mod customers;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod events;
pub mod views;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};

use super::AppState;
use crate::domain::IdKind;
use crate::error::ApiError;
use views::Health;

pub type State = web::Data<AppState>;

/// Runs store work on the blocking pool, never on an actix worker thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await?
}

/// An id of the wrong shape cannot exist: 404 without a look-up.
pub fn check_id(kind: IdKind, id: String) -> Result<String, ApiError> {
    if kind.matches(&id) {
        Ok(id)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–250, default 50.
    pub limit: Option<String>,
    /// An id: the page starts after it.
    pub before: Option<String>,
}

#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
pub async fn healthz(st: State) -> Result<HttpResponse, ApiError> {
    if st.store.is_failed() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the data file cannot be written; see the server log",
        ));
    }
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(st: State) -> Result<HttpResponse, ApiError> {
    let store = st.store.clone();
    let (pending, claimed) = blocking(move || Ok(store.queue_counts()?)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(st.metrics.render(pending, claimed)))
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(ApiDoc::openapi().to_json().unwrap_or_default())
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "webhooks", description = "The EnableNow webhook appliance: operators post events, customers manage endpoints and read deliveries. Operator routes take the admin token, customer routes an API key, both as `Authorization: Bearer …`."),
    paths(
        healthz, metrics, openapi,
        customers::create_customer, customers::list_customers, customers::get_customer,
        customers::delete_customer, customers::create_api_key, customers::list_api_keys,
        customers::delete_api_key,
        events::create_event, events::create_events, events::list_events, events::get_event,
        event_types::list_event_types, event_types::create_event_type,
        endpoints::list_endpoints, endpoints::create_endpoint, endpoints::get_endpoint,
        endpoints::update_endpoint, endpoints::delete_endpoint, endpoints::rotate_secret,
        endpoints::send_test, endpoints::recover,
        deliveries::list_deliveries, deliveries::get_delivery, deliveries::resend_delivery,
        backup::backup,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The answer for any path nothing else matched.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    ))
}

/// Every route of the API; used by the server and by tests alike.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, resource};
    let r = |path: &str| resource(path).default_service(web::to(method_not_allowed));
    cfg.service(r("/healthz").route(get().to(healthz)))
        .service(r("/metrics").route(get().to(metrics)))
        .service(
            web::scope("/api/v1")
                .service(r("/openapi.json").route(get().to(openapi)))
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
                .service(r("/backup").route(post().to(backup::backup)))
                .service(r("/deliveries").route(get().to(deliveries::list_deliveries)))
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
