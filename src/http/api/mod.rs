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
pub mod system;
pub mod views;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::AppState;
use crate::error::ApiError;
use crate::http::body::page_query;
use crate::store::{Page, PageQuery, Store};

pub type State = web::Data<AppState>;

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

impl ListParams {
    /// The page these parameters ask for, read by `list` off the actix threads (`limit` and
    /// `before` checked first).
    pub async fn read<T: Send + 'static>(
        self,
        st: &State,
        list: impl for<'a> FnOnce(&dyn Store, PageQuery<'a>) -> Result<Page<T>, ApiError>
        + Send
        + 'static,
    ) -> Result<Page<T>, ApiError> {
        st.run(move |store| {
            let page = page_query(self.limit.as_deref(), self.before.as_deref())?;
            list(store, page)
        })
        .await
    }
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

/// A route's resource: a method it does not take gets 405 with `Allow`.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// The API's resources: each file's routes (`configure`) and its part of the OpenAPI
/// document (`Doc`). A route is added in its resource's file alone.
type Resource = (
    fn(&mut web::ServiceConfig),
    fn() -> utoipa::openapi::OpenApi,
);

pub const RESOURCES: &[Resource] = &[
    (system::configure, <system::Doc as OpenApi>::openapi),
    (openapi::configure, <openapi::Doc as OpenApi>::openapi),
    (customers::configure, <customers::Doc as OpenApi>::openapi),
    (events::configure, <events::Doc as OpenApi>::openapi),
    (
        event_types::configure,
        <event_types::Doc as OpenApi>::openapi,
    ),
    (endpoints::configure, <endpoints::Doc as OpenApi>::openapi),
    (deliveries::configure, <deliveries::Doc as OpenApi>::openapi),
    (stats::configure, <stats::Doc as OpenApi>::openapi),
    (backup::configure, <backup::Doc as OpenApi>::openapi),
];

/// Every route of the API; used by the server and by tests alike. Under `/api/v1`, a path
/// no resource has is a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (routes, _) in RESOURCES {
        routes(cfg);
    }
    cfg.service(web::scope("/api/v1").default_service(web::to(not_found)));
}

/// Extractor settings that turn malformed queries and paths into JSON errors.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string()).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::not_found().into()));
}
