//! The OpenAPI document, generated from the handlers' annotations, with the error answers
//! every route can give added in one place.

use actix_web::{HttpResponse, web};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn openapi() -> HttpResponse {
    static JSON: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| document().to_json().unwrap_or_default());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(JSON.as_str())
}

/// The document's own route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/api/v1/openapi.json").route(web::get().to(openapi)));
}

/// This file's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(openapi))]
pub struct Doc;

/// The whole document: every resource's part, then what every operation shares (the bearer
/// scheme, the errors any route can answer, the links between operations).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for (_, part) in super::RESOURCES {
        doc.merge(part());
    }
    for modify in [&BearerAuth as &dyn Modify, &ErrorResponses, &Links] {
        modify.modify(&mut doc);
    }
    doc
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

/// Adds to every operation the error answers it can give besides its own: what the
/// authentication, body, query and path extractors and the connection guard answer.
/// Written once here so that no route can forget one.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let params = op.parameters.as_deref().unwrap_or_default();
                let has = |kind: ParameterIn| {
                    params.iter().any(|p| {
                        matches!(p, RefOr::T(p) if std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&kind))
                    })
                };
                let mut statuses = vec![429];
                if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                    statuses.push(503);
                }
                if op.security.is_some() {
                    statuses.push(401);
                }
                if op.request_body.is_some() {
                    statuses.extend([400, 408, 413, 415, 422]);
                }
                if has(ParameterIn::Query) {
                    statuses.extend([400, 422]);
                }
                if has(ParameterIn::Path) {
                    statuses.push(404);
                }
                for status in statuses {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(error_response(status)));
                }
            }
        }
    }
}

/// OpenAPI links from each answer that makes an object to the operations on it, so a client
/// (or a stateful fuzzer) can follow them: a new customer's id to its keys, links, sessions
/// and endpoints; a new endpoint's to everything done to an endpoint; a new event's to the
/// event; a delivery made by a test send or a resend to the delivery.
struct Links;

/// (path, method, status, link name, target operation id, parameter, value expression).
const LINKS: &[(&str, &str, &str, &str, &str, &str, &str)] = {
    const CUS: &str = "/api/v1/customers";
    const KEYS: &str = "/api/v1/customers/{id}/api-keys";
    const EPS: &str = "/api/v1/endpoints";
    const EVS: &str = "/api/v1/events";
    const TEST: &str = "/api/v1/endpoints/{id}/test";
    const RESEND: &str = "/api/v1/deliveries/{id}/resend";
    const BODY_ID: &str = "$response.body#/id";
    &[
        (
            CUS,
            "post",
            "201",
            "GetCustomer",
            "get_customer",
            "id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "ListApiKeys",
            "list_api_keys",
            "id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "CreateApiKey",
            "create_api_key",
            "id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "CreatePortalLink",
            "create_portal_link",
            "id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "EndSessions",
            "end_sessions",
            "id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "ListEndpoints",
            "list_endpoints",
            "customer_id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "CreateEndpoint",
            "create_endpoint",
            "customer_id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "ListEvents",
            "list_events",
            "customer_id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "ListDeliveries",
            "list_deliveries",
            "customer_id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "DeliveryStats",
            "delivery_stats",
            "customer_id",
            BODY_ID,
        ),
        (
            CUS,
            "post",
            "201",
            "DeleteCustomer",
            "delete_customer",
            "id",
            BODY_ID,
        ),
        (
            KEYS,
            "post",
            "201",
            "DeleteApiKey",
            "delete_api_key",
            "key_id",
            BODY_ID,
        ),
        (
            EPS,
            "post",
            "201",
            "GetEndpoint",
            "get_endpoint",
            "id",
            BODY_ID,
        ),
        (
            EPS,
            "post",
            "201",
            "UpdateEndpoint",
            "update_endpoint",
            "id",
            BODY_ID,
        ),
        (
            EPS,
            "post",
            "201",
            "RotateSecret",
            "rotate_secret",
            "id",
            BODY_ID,
        ),
        (EPS, "post", "201", "SendTest", "send_test", "id", BODY_ID),
        (EPS, "post", "201", "Recover", "recover", "id", BODY_ID),
        (EPS, "post", "201", "Resume", "resume", "id", BODY_ID),
        (
            EPS,
            "post",
            "201",
            "FailWaiting",
            "fail_waiting",
            "id",
            BODY_ID,
        ),
        (
            EPS,
            "post",
            "201",
            "ListDeliveries",
            "list_deliveries",
            "endpoint_id",
            BODY_ID,
        ),
        (
            EPS,
            "post",
            "201",
            "DeliveryStats",
            "delivery_stats",
            "endpoint_id",
            BODY_ID,
        ),
        (
            EPS,
            "post",
            "201",
            "DeleteEndpoint",
            "delete_endpoint",
            "id",
            BODY_ID,
        ),
        (EVS, "post", "202", "GetEvent", "get_event", "id", BODY_ID),
        (
            EVS,
            "post",
            "202",
            "ListDeliveries",
            "list_deliveries",
            "event_id",
            BODY_ID,
        ),
        (
            TEST,
            "post",
            "202",
            "GetDelivery",
            "get_delivery",
            "id",
            "$response.body#/delivery_id",
        ),
        (
            TEST,
            "post",
            "202",
            "Resend",
            "resend_delivery",
            "id",
            "$response.body#/delivery_id",
        ),
        (
            TEST,
            "post",
            "202",
            "GetEvent",
            "get_event",
            "id",
            "$response.body#/event_id",
        ),
        (
            RESEND,
            "post",
            "202",
            "GetDelivery",
            "get_delivery",
            "id",
            BODY_ID,
        ),
    ]
};

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, method, status, name, target, param, value) in LINKS {
            let Some(item) = openapi.paths.paths.get_mut(*path) else {
                continue;
            };
            let op = match *method {
                "post" => item.post.as_mut(),
                _ => item.get.as_mut(),
            };
            let Some(RefOr::T(resp)) = op.and_then(|op| op.responses.responses.get_mut(*status))
            else {
                continue;
            };
            let mut link = utoipa::openapi::link::Link::default();
            link.operation_id = (*target).to_owned();
            link.parameters
                .insert((*param).to_owned(), serde_json::Value::from(*value));
            // A key's deletion also names its customer: the path the key was made on.
            if *target == "delete_api_key" {
                link.parameters
                    .insert("id".into(), serde_json::Value::from("$request.path.id"));
            }
            resp.links.insert((*name).to_owned(), RefOr::T(link));
        }
    }
}

fn error_response(status: u16) -> Response {
    let description = match status {
        400 => "Malformed JSON or query (`invalid_json`, `invalid_query`, `invalid_body`)",
        401 => "Missing, wrong or wrong-kind bearer token (`unauthorized`)",
        404 => "No such object, or not this customer's (`not_found`)",
        408 => "The body did not arrive within the read deadline (`request_timeout`)",
        413 => "The body is larger than 1 MiB (`payload_too_large`)",
        415 => "The body is not sent as JSON (`unsupported_media_type`)",
        422 => "Valid JSON or query that breaks a rule (the code names it)",
        429 => {
            "Too many connections, failed authentications or sends (`rate_limited`, with retry-after)"
        }
        503 => "Shutting down, or the store cannot be written (`unavailable`)",
        _ => "Error",
    };
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")))),
        )
        .build()
}

/// The document's head; `document` adds the routes.
#[derive(OpenApi)]
#[openapi(info(
    title = "webhooks",
    description = "The EnableNow webhook appliance: operators post events, customers manage endpoints and read deliveries. Operator routes take the admin token, customer routes an API key, both as `Authorization: Bearer …`."
))]
pub struct ApiDoc;

/// The methods a documented path takes, for the `Allow` header of a 405: "GET, POST".
pub fn allowed_methods(path: &str) -> Option<String> {
    static ALLOWED: std::sync::LazyLock<std::collections::HashMap<String, String>> =
        std::sync::LazyLock::new(|| {
            document()
                .paths
                .paths
                .into_iter()
                .map(|(path, item)| {
                    let methods: Vec<&str> = [
                        ("GET", item.get.is_some()),
                        ("POST", item.post.is_some()),
                        ("PUT", item.put.is_some()),
                        ("PATCH", item.patch.is_some()),
                        ("DELETE", item.delete.is_some()),
                    ]
                    .into_iter()
                    .filter_map(|(m, has)| has.then_some(m))
                    .collect();
                    (path, methods.join(", "))
                })
                .collect()
        });
    ALLOWED.get(path).cloned()
}
