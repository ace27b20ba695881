//! Who is signed in: the extractors that turn a session cookie into a customer's or an
//! operator's context (with its CSRF token), or send the browser to sign in.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::{ADMIN_COOKIE, CUSTOMER_COOKIE, PortalError, Who};
use crate::domain::secret::hash_token;
use crate::domain::session::Session;
use crate::http::AppState;

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
    let hash = hash_token(&token);
    match AppState::of(req).run(move |s| s.get_session(&hash)).await {
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
                    let hash = hash_token(&token);
                    let _ = st.run(move |s| s.end_session(&hash)).await;
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
