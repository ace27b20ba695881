//! A page's frame and answers: the layout every page shows, rendering with the portal's
//! security headers, redirects, one-time messages and the small helpers pages share.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::{CustomerCtx, Flash, PortalError};
use crate::http::AppState;

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

pub fn ok_page(page: &impl Template) -> Result<HttpResponse, PortalError> {
    Ok(html(StatusCode::OK, page))
}

pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", to))
        .finish()
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
