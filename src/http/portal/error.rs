//! Why a portal request failed, and the page that says so: every error (store, API rule,
//! bad form, unknown id) maps here once, to a page with the navigation or a sign-in redirect.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::{Layout, html, see_other};
use crate::store::StoreError;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
    back: String,
}

/// Why a portal request failed; shown as a page, or a redirect to sign in.
#[derive(Debug)]
pub enum PortalError {
    SignIn(&'static str),
    NotFound,
    BadForm(String),
    Throttled,
    /// A per-customer rate was used up.
    TooMany(String),
    Unavailable(String),
    Internal(String),
}

impl std::fmt::Display for PortalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => PortalError::NotFound,
            StoreError::Invalid(v) => PortalError::BadForm(v.message),
            StoreError::IdempotencyConflict(m) => PortalError::BadForm(m),
            StoreError::Unavailable(m) => PortalError::Unavailable(m),
            StoreError::Storage(m) => PortalError::Internal(m),
            StoreError::NotSupported(m) => PortalError::BadForm(m),
        }
    }
}

impl From<crate::domain::ids::NoSuchId> for PortalError {
    fn from(_: crate::domain::ids::NoSuchId) -> Self {
        PortalError::NotFound
    }
}

impl From<crate::error::ApiError> for PortalError {
    fn from(e: crate::error::ApiError) -> Self {
        match e.status.as_u16() {
            429 => PortalError::TooMany(format!("{}.", e.message)),
            404 => PortalError::NotFound,
            503 => PortalError::Unavailable(e.message),
            s if s < 500 => PortalError::BadForm(e.message),
            _ => PortalError::Internal(e.message),
        }
    }
}

impl From<askama::Error> for PortalError {
    fn from(e: askama::Error) -> Self {
        PortalError::Internal(format!("template: {e}"))
    }
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            PortalError::SignIn(_) => StatusCode::SEE_OTHER,
            PortalError::NotFound => StatusCode::NOT_FOUND,
            PortalError::BadForm(_) => StatusCode::BAD_REQUEST,
            PortalError::Throttled | PortalError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            PortalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PortalError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (heading, message) = match self {
            PortalError::SignIn(to) => return see_other(to),
            PortalError::NotFound => (
                "Not found",
                "There is nothing here, or it is not yours to see.".to_owned(),
            ),
            PortalError::BadForm(m) => ("That did not work", m.clone()),
            PortalError::Throttled => (
                "Too many attempts",
                "Too many failed sign-ins from your address. Wait a minute and try again."
                    .to_owned(),
            ),
            PortalError::TooMany(m) => ("Too many at once", m.clone()),
            PortalError::Unavailable(m) => ("Unavailable", m.clone()),
            PortalError::Internal(m) => {
                tracing::error!(error = %m, "portal error");
                (
                    "Something went wrong",
                    "The server could not do that; its log says why.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            layout: Layout::public(heading),
            heading: heading.to_owned(),
            message,
            back: "/".to_owned(),
        };
        html(self.status_code(), &page)
    }
}

/// A path nothing serves: the portal's 404 page (with its links) for a browser, the API's
/// JSON 404 for everyone else and under `/api/`.
pub async fn not_found_anywhere(req: HttpRequest) -> HttpResponse {
    let browser = !req.path().starts_with("/api/")
        && req
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if browser {
        PortalError::NotFound.error_response()
    } else {
        actix_web::ResponseError::error_response(&crate::error::ApiError::not_found())
    }
}
