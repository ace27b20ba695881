//! The portal: server-rendered pages (askama) for customers (`/`, Webhooks and Events tabs)
//! and for the operator (`/admin`), with sessions, CSRF tokens on every form and escaped HTML.
//! Every page works without JavaScript.

mod admin;
pub mod chart;
mod dashboard;
mod delivery;
mod events;
mod forms;
pub mod links;
pub mod log_filter;
pub mod sessions;
mod sign_in;
mod support;
mod views;
mod webhooks;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use super::AppState;
use crate::domain::secret::hash_token;
use crate::domain::session::Session;
pub use crate::domain::session::Who;
use crate::store::StoreError;
use futures_util::future::LocalBoxFuture;
pub use sessions::{Flash, Sessions};

pub const CUSTOMER_COOKIE: &str = "wh_session";
pub const ADMIN_COOKIE: &str = "wh_admin";
/// Double-submit token of the sign-in forms (there is no session yet to hold one).
pub const LOGIN_COOKIE: &str = "wh_login";

/// The portal's own state: sessions, and whether cookies must be `Secure` (served over TLS).
#[derive(Default)]
pub struct Portal {
    pub sessions: Sessions,
    pub secure_cookies: bool,
    /// The tokens of the sign-in forms, bound to this server's stored key.
    pub login_tokens: sessions::LoginTokens,
}

impl Portal {
    pub fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure_cookies)
            .max_age(actix_web::cookie::time::Duration::seconds(
                sessions::SESSION_TTL.as_secs() as i64,
            ))
            .finish()
    }

    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut c = self.cookie(name, String::new());
        c.make_removal();
        c
    }
}

/// What every page's frame shows.
pub struct Layout {
    pub title: String,
    /// "customer", "admin" or "" (signed out).
    pub area: &'static str,
    pub tab: &'static str,
    pub csrf: String,
    pub who: String,
    pub flash: Option<Flash>,
}

impl Layout {
    /// The frame of a signed-in page; takes the session's one-time message, if any.
    pub fn signed_in(
        st: &AppState,
        token: &str,
        csrf: &str,
        area: &'static str,
        tab: &'static str,
        title: &str,
        who: String,
    ) -> Self {
        Self {
            title: title.to_owned(),
            area,
            tab,
            csrf: csrf.to_owned(),
            who,
            flash: st.portal.sessions.take_flash(token),
        }
    }

    pub fn public(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            area: "",
            tab: "",
            csrf: String::new(),
            who: String::new(),
            flash: None,
        }
    }
}

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

impl From<actix_web::error::BlockingError> for PortalError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        PortalError::Unavailable("the server is shutting down".into())
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

/// Renders a page with the portal's security headers.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((
                "content-security-policy",
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ))
            .insert_header(("x-frame-options", "DENY"))
            .insert_header(("referrer-policy", "same-origin"))
            .insert_header(("cache-control", "no-store"))
            // Never compressed (BREACH): the compressor leaves an encoded response alone.
            .insert_header(("content-encoding", "identity"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            HttpResponse::InternalServerError().body("internal error")
        }
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

pub fn ok_page(page: &impl Template) -> Result<HttpResponse, PortalError> {
    Ok(html(StatusCode::OK, page))
}

pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", to))
        .finish()
}

/// A signed-in customer.
pub struct CustomerCtx {
    pub token: String,
    pub customer_id: String,
    pub csrf: String,
}

/// A signed-in operator.
pub struct AdminCtx {
    pub token: String,
    pub csrf: String,
}

/// The stored session behind a cookie, if it is still valid.
async fn session_of(req: &HttpRequest, cookie: &str) -> Option<(String, Session)> {
    let token = req.cookie(cookie)?.value().to_owned();
    let store = AppState::of(req).store.clone();
    let hash = hash_token(&token);
    let session = web::block(move || store.get_session(&hash)).await.ok()?;
    match session {
        Ok(s) => s.map(|s| (token, s)),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a portal session");
            None
        }
    }
}

impl FromRequest for CustomerCtx {
    type Error = PortalError;
    type Future = LocalBoxFuture<'static, Result<Self, PortalError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some((token, s)) = session_of(&req, CUSTOMER_COOKIE).await else {
                return Err(PortalError::SignIn("/"));
            };
            let st = AppState::of(&req);
            match s.who {
                // A session dies with its key (deleted, or its customer deleted).
                Who::Customer {
                    customer_id,
                    key_id,
                } if st.store.key_still_owned(&key_id, &customer_id) => Ok(CustomerCtx {
                    token,
                    customer_id,
                    csrf: s.csrf,
                }),
                // Its customer's deletion ends it (with every session of the customer).
                Who::Linked { customer_id } => Ok(CustomerCtx {
                    token,
                    customer_id,
                    csrf: s.csrf,
                }),
                Who::Customer { .. } => {
                    let (store, hash) = (st.store.clone(), hash_token(&token));
                    let _ = web::block(move || store.end_session(&hash)).await;
                    Err(PortalError::SignIn("/"))
                }
                Who::Admin => Err(PortalError::SignIn("/")),
            }
        })
    }
}

impl FromRequest for AdminCtx {
    type Error = PortalError;
    type Future = LocalBoxFuture<'static, Result<Self, PortalError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match session_of(&req, ADMIN_COOKIE).await {
                Some((token, s)) if s.who == Who::Admin => Ok(AdminCtx {
                    token,
                    csrf: s.csrf,
                }),
                _ => Err(PortalError::SignIn("/admin")),
            }
        })
    }
}

/// Leaves a success message (and a secret shown only once) for the session's next page.
pub fn flash(st: &AppState, token: &str, message: impl Into<String>, secret: Option<String>) {
    st.portal.sessions.set_flash(
        token,
        Flash {
            ok: true,
            message: message.into(),
            secret,
        },
    );
}

/// The frame of a customer's page.
pub fn customer_layout(
    st: &AppState,
    ctx: &CustomerCtx,
    name: String,
    title: &str,
    tab: &'static str,
) -> Layout {
    Layout::signed_in(st, &ctx.token, &ctx.csrf, "customer", tab, title, name)
}

pub fn customer_name(store: &dyn crate::store::Store, id: &str) -> Result<String, PortalError> {
    store
        .get_customer(id)?
        .map(|c| c.name)
        .ok_or(PortalError::SignIn("/"))
}

/// The `before` of a paged page, if it looks like an id.
pub fn before(req: &HttpRequest) -> Option<String> {
    query_param(req, "before").filter(|b| !b.is_empty() && b.len() <= 64)
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
    /// Hidden fields the confirming form carries on.
    pub fields: Vec<(&'static str, String)>,
}

/// The first value of a query parameter, read leniently: portal pages ignore what they do
/// not understand instead of answering an error.
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs store work off the actix threads.
/// Store work for a portal handler, off the actix threads (`crate::http::blocking`).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PortalError> + Send + 'static,
) -> Result<T, PortalError> {
    crate::http::blocking(f).await
}

/// The portal's routes and its embedded assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.app_data(web::PayloadConfig::new(1024 * 1024))
        .service(resource("/static/{file:.*}").route(get().to(crate::http::assets::asset)))
        .service(resource("/").route(get().to(sign_in::home)))
        .service(resource("/login").route(post().to(sign_in::login)))
        .service(resource("/logout").route(post().to(sign_in::logout)))
        .service(
            resource("/portal-link/{token}")
                .route(get().to(links::open))
                .route(post().to(links::spend)),
        )
        .service(
            resource("/webhooks")
                .route(get().to(webhooks::webhooks))
                .route(post().to(webhooks::create_endpoint)),
        )
        .service(resource("/webhooks/{id}").route(get().to(webhooks::endpoint)))
        .service(resource("/webhooks/{id}/edit").route(post().to(webhooks::edit_endpoint)))
        .service(resource("/webhooks/{id}/toggle").route(post().to(webhooks::toggle_endpoint)))
        .service(resource("/webhooks/{id}/resume").route(post().to(webhooks::resume)))
        .service(resource("/webhooks/{id}/fail-waiting").route(post().to(webhooks::fail_waiting)))
        .service(
            resource("/webhooks/{id}/delete")
                .route(get().to(webhooks::confirm_delete))
                .route(post().to(webhooks::delete_endpoint)),
        )
        .service(resource("/webhooks/{id}/rotate").route(post().to(webhooks::rotate)))
        .service(resource("/webhooks/{id}/test").route(post().to(webhooks::send_test)))
        .service(resource("/webhooks/{id}/recover").route(post().to(webhooks::recover)))
        .service(resource("/deliveries/{id}").route(get().to(delivery::customer_delivery)))
        .service(resource("/deliveries/{id}/resend").route(post().to(webhooks::resend)))
        .service(resource("/events").route(get().to(events::events)))
        .service(resource("/events/{id}").route(get().to(events::event)))
        .service(resource("/admin").route(get().to(admin::console)))
        .service(resource("/admin/dashboard").route(get().to(dashboard::dashboard)))
        .service(resource("/admin/login").route(post().to(admin::login)))
        .service(resource("/admin/logout").route(post().to(admin::logout)))
        .service(resource("/admin/trigger").route(post().to(admin::trigger)))
        .service(resource("/admin/events/{id}").route(get().to(admin::event)))
        .service(resource("/admin/customers").route(post().to(admin::create_customer)))
        .service(resource("/admin/customers/{id}").route(get().to(support::customer)))
        .service(resource("/admin/customers/{id}/sessions").route(post().to(support::end_sessions)))
        .service(
            resource("/admin/customers/{id}/portal-link").route(post().to(support::portal_link)),
        )
        .service(resource("/admin/deliveries/{id}/resend").route(post().to(support::resend)))
        .service(
            resource("/admin/customers/{customer}/deliveries/{id}")
                .route(get().to(delivery::admin_delivery)),
        )
        .service(resource("/admin/customers/{id}/keys").route(post().to(admin::new_key)))
        .service(
            resource("/admin/customers/{id}/delete")
                .route(get().to(admin::confirm_delete))
                .route(post().to(admin::delete_customer)),
        )
        .service(resource("/admin/event-types").route(post().to(admin::create_event_type)));
}
