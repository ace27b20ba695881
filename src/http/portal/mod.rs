//! The portal: server-rendered pages (askama) for customers (`/`, Webhooks and Events tabs)
//! and for the operator (`/admin`), with sessions, CSRF tokens on every form and escaped HTML.
//! Every page works without JavaScript.

mod actions;
mod admin;
pub mod chart;
mod dashboard;
mod delivery;
mod endpoint;
mod error;
mod events;
mod extract;
mod forms;
mod layout;
pub mod links;
pub mod log_filter;
mod routes;
pub mod sessions;
mod sign_in;
mod support;
mod views;
mod webhooks;

use actix_web::cookie::{Cookie, SameSite};

pub use crate::domain::session::Who;
pub use error::{PortalError, not_found_anywhere};
pub use extract::{AdminCtx, CustomerCtx};
pub use layout::{
    ConfirmPage, Layout, before, customer_layout, customer_name, flash, html, ok_page, query_param,
    see_other,
};
pub use routes::configure;
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
