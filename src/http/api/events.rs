//! Events: the operator posts them (with optional Idempotency-Key); customers read their log.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::views::{AcceptedList, AcceptedView, DeliveryView, EventDetail, EventView, List};
use super::{ListParams, State, resource};
use crate::domain::IdKind;
use crate::domain::input::validate_data;
use crate::domain::secret::hex;
use crate::domain::{Accepted, NewEvent};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{Admin, Customer, Lister};
use crate::http::body::Json;
use crate::store::{IdempotencyKey, Ingested};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    #[schema(min_length = 1, max_length = 64)]
    pub customer_id: String,
    /// An event type from the catalog.
    #[schema(min_length = 1, max_length = 128)]
    pub event: String,
    /// A JSON object of at most 256 KiB, delivered as sent.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
}

/// The most events in one batch.
pub const MAX_BATCH: usize = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvents {
    /// 1 to 1000 events, accepted all together or not at all.
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<CreateEvent>,
}

/// The accepted events, counting the ones that are new (a replay is not ingested twice).
fn accepted(st: &State, ingested: Ingested) -> Vec<Accepted> {
    match ingested {
        Ingested::New(a) => {
            st.metrics.events_ingested.inc_by(a.len() as u64);
            a
        }
        Ingested::Replayed(a) => a,
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(s) if !s.is_empty() && s.len() <= 255 => Ok(Some(s.to_owned())),
        _ => Err(ApiError::invalid(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/events", tag = "operator", security(("bearer" = [])),
    request_body = CreateEvent,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "Replays within 24 h return the first answer; 1 to 255 visible ASCII characters")),
    responses((status = 202, body = AcceptedView), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_event(
    _: Admin,
    st: State,
    req: HttpRequest,
    body: Json<CreateEvent>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let b = body.value;
    validate_data(b.data.get())?;
    let idem = key.map(|key| IdempotencyKey {
        customer_id: b.customer_id.clone(),
        key,
        request_hash: hex(&Sha256::digest(&body.raw)),
    });
    let new = NewEvent {
        customer_id: b.customer_id,
        event: b.event,
        data: b.data.get().to_owned(),
    };
    let ingested = st.store.ingest(vec![new], idem).await?;
    let accepted = accepted(&st, ingested);
    let first = accepted
        .first()
        .ok_or_else(|| ApiError::internal("an idempotency record without its event"))?;
    Ok(HttpResponse::Accepted().json(AcceptedView::from(first)))
}

#[utoipa::path(post, path = "/api/v1/events/batch", tag = "operator", security(("bearer" = [])),
    request_body = CreateEvents,
    responses((status = 202, body = AcceptedList), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_events(
    _: Admin,
    st: State,
    body: Json<CreateEvents>,
) -> Result<HttpResponse, ApiError> {
    let events = body.value.events;
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "invalid_batch",
            format!("a batch holds 1 to {MAX_BATCH} events"),
        ));
    }
    let mut batch = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        validate_data(e.data.get())
            .map_err(|v| ApiError::invalid(v.code, format!("events[{i}]: {}", v.message)))?;
        batch.push(NewEvent {
            customer_id: e.customer_id,
            event: e.event,
            data: e.data.get().to_owned(),
        });
    }
    let ingested = st.store.ingest(batch, None).await?;
    Ok(HttpResponse::Accepted().json(AcceptedList {
        data: accepted(&st, ingested)
            .iter()
            .map(AcceptedView::from)
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "customer", security(("bearer" = [])),
    params(ListParams, super::OwnerParam),
    responses((status = 200, body = List<EventView>), (status = 401, body = ErrorBody),
        (status = 422, description = "A customer key named a customer", body = ErrorBody),
        (status = 404, description = "With the admin token: no such customer", body = ErrorBody)))]
pub async fn list_events(
    who: Lister,
    st: State,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = q
        .into_inner()
        .read(&st, move |s, page| Ok(s.list_events(who.owner(), page)?))
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, EventView::from)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "customer", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = EventDetail), (status = 404, body = ErrorBody)))]
pub async fn get_event(
    who: Customer,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Event.check(id.into_inner())?;
    let (event, deliveries) = st
        .run(move |s| s.get_event(&who.id, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(EventDetail {
        event: EventView::from(event),
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    }))
}

/// The event routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post};
    cfg.service(
        resource("/api/v1/events")
            .route(post().to(create_event))
            .route(get().to(list_events)),
    )
    // Before `{id}`, which would take `batch` for an id.
    .service(resource("/api/v1/events/batch").route(post().to(create_events)))
    .service(resource("/api/v1/events/{id}").route(get().to(get_event)));
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_event, create_events, list_events, get_event))]
pub struct Doc;
