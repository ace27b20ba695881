//! The event-type catalog: both roles read it, the operator adds to it.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::views::{EventTypeList, EventTypeView};
use super::{ListParams, State, resource};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{Admin, AnyRole};
use crate::http::body::Json;

use crate::domain::EventType;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    /// Dot-separated lowercase words, e.g. `payments.settled`.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[a-z0-9_-]+(\\.[a-z0-9_-]+)*$"
    )]
    pub name: String,
    /// At most 1024 bytes.
    #[schema(max_length = 1024)]
    pub description: String,
    /// An example `data` object.
    #[schema(value_type = Object)]
    pub example: Box<RawValue>,
}

#[utoipa::path(get, path = "/api/v1/event-types", tag = "catalog", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = EventTypeList), (status = 401, body = ErrorBody)))]
pub async fn list_event_types(
    _: AnyRole,
    st: State,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = q
        .into_inner()
        .read(&st, |s, page| Ok(s.list_event_types(page)?))
        .await?;
    Ok(HttpResponse::Ok().json(EventTypeList {
        data: page.data.into_iter().map(EventTypeView::from).collect(),
        next: page.next,
    }))
}

#[utoipa::path(post, path = "/api/v1/event-types", tag = "catalog", security(("bearer" = [])),
    request_body = CreateEventType,
    responses((status = 201, body = EventTypeView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_event_type(
    _: Admin,
    st: State,
    body: Json<CreateEventType>,
) -> Result<HttpResponse, ApiError> {
    let b = body.value;
    // The rules are the store's (`EventType::validate`), the same for the console.
    let et = EventType {
        name: b.name,
        description: b.description,
        example: b.example.get().to_owned(),
    };
    let et = st.run(move |s| s.create_event_type(et)).await?;
    Ok(HttpResponse::Created().json(EventTypeView::from(et)))
}

/// The catalog's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post};
    cfg.service(
        resource("/api/v1/event-types")
            .route(get().to(list_event_types))
            .route(post().to(create_event_type)),
    );
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_event_types, create_event_type))]
pub struct Doc;
