//! Operator routes for customers and their API keys.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{ApiKeyCreated, ApiKeyView, CustomerCreated, CustomerView, List};
use super::{ListParams, State, resource};
use crate::domain::IdKind;
use crate::domain::input::validate_text;
use crate::domain::time::rfc3339;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::Admin;
use crate::http::body::{Json, page_query};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// Unique; at most 1024 bytes, not blank.
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/customers", tag = "operator", security(("bearer" = [])),
    request_body = CreateCustomer,
    responses((status = 201, body = CustomerCreated), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_customer(
    _: Admin,
    st: State,
    body: Json<CreateCustomer>,
) -> Result<HttpResponse, ApiError> {
    let name = body.value.name.trim().to_owned();
    validate_text("name", &name, false)?;
    let made = st.run(move |s| s.create_customer(name)).await?;
    let c = made.customer;
    Ok(HttpResponse::Created().json(CustomerCreated {
        id: c.id,
        name: c.name,
        created_at: rfc3339(c.created_at),
        api_key: made.key.plaintext,
    }))
}

#[utoipa::path(get, path = "/api/v1/customers", tag = "operator", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = List<CustomerView>), (status = 401, body = ErrorBody)))]
pub async fn list_customers(
    _: Admin,
    st: State,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = q
        .into_inner()
        .read(&st, |s, page| Ok(s.list_customers(page)?))
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, CustomerView::from)))
}

#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
pub async fn get_customer(
    _: Admin,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Customer.check(id.into_inner())?;
    let c = st
        .run(move |s| s.get_customer(&id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(CustomerView::from(c)))
}

#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_customer(
    _: Admin,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Customer.check(id.into_inner())?;
    st.run(move |s| s.delete_customer(&id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/portal-links", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = super::views::PortalLink,
        description = "A single-use sign-in link to the customer's portal, good for 15 minutes"),
        (status = 404, body = ErrorBody)))]
pub async fn create_portal_link(
    _: Admin,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Customer.check(id.into_inner())?;
    let (url, expires_at) = crate::http::portal::links::issue(&st, id).await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(super::views::PortalLink {
            url,
            expires_at: crate::domain::time::rfc3339(expires_at),
        }))
}

#[utoipa::path(delete, path = "/api/v1/customers/{id}/sessions", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Every portal session of the customer is ended: they sign in again"),
        (status = 404, body = ErrorBody)))]
pub async fn end_sessions(
    _: Admin,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Customer.check(id.into_inner())?;
    st.run(move |s| {
        s.get_customer(&id)?
            .ok_or(crate::store::StoreError::NotFound)?;
        s.end_customer_sessions(&id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/api-keys", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = ApiKeyCreated), (status = 404, body = ErrorBody)))]
pub async fn create_api_key(
    _: Admin,
    st: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Customer.check(id.into_inner())?;
    let made = st.run(move |s| s.create_api_key(&id)).await?;
    Ok(HttpResponse::Created().json(ApiKeyCreated {
        id: made.record.id,
        api_key: made.plaintext,
        created_at: rfc3339(made.record.created_at),
    }))
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/api-keys", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<ApiKeyView>), (status = 404, body = ErrorBody)))]
pub async fn list_api_keys(
    _: Admin,
    st: State,
    id: web::Path<String>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let id = IdKind::Customer.check(id.into_inner())?;
    let q = q.into_inner();
    let page = page_query(q.limit.as_deref(), q.before.as_deref())?;
    let (limit, before) = (page.limit, q.before.clone());
    let keys = st
        .run(move |store| -> Result<_, ApiError> {
            store.get_customer(&id)?.ok_or(ApiError::not_found())?;
            Ok(store.list_api_keys(&id)?)
        })
        .await?;
    // Newest first; a customer has few keys, so they are paged in memory.
    let mut rest = keys
        .into_iter()
        .filter(|k| before.as_ref().is_none_or(|b| k.id < *b))
        .peekable();
    let data: Vec<ApiKeyView> = rest.by_ref().take(limit).map(ApiKeyView::from).collect();
    let next = rest.peek().and(data.last().map(|k| k.id.clone()));
    Ok(HttpResponse::Ok().json(List { data, next }))
}

#[utoipa::path(delete, path = "/api/v1/customers/{id}/api-keys/{key_id}", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_api_key(
    _: Admin,
    st: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, key_id) = path.into_inner();
    let id = IdKind::Customer.check(id)?;
    let key_id = IdKind::ApiKey.check(key_id)?;
    st.run(move |s| s.delete_api_key(&id, &key_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The operator's customer routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post};
    cfg.service(
        resource("/api/v1/customers")
            .route(post().to(create_customer))
            .route(get().to(list_customers)),
    )
    .service(
        resource("/api/v1/customers/{id}")
            .route(get().to(get_customer))
            .route(delete().to(delete_customer)),
    )
    .service(resource("/api/v1/customers/{id}/sessions").route(delete().to(end_sessions)))
    .service(resource("/api/v1/customers/{id}/portal-links").route(post().to(create_portal_link)))
    .service(
        resource("/api/v1/customers/{id}/api-keys")
            .route(post().to(create_api_key))
            .route(get().to(list_api_keys)),
    )
    .service(
        resource("/api/v1/customers/{id}/api-keys/{key_id}").route(delete().to(delete_api_key)),
    );
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_customer,
    list_customers,
    get_customer,
    delete_customer,
    end_sessions,
    create_portal_link,
    create_api_key,
    list_api_keys,
    delete_api_key
))]
pub struct Doc;
