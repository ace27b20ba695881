//! Bearer authentication: the admin token for operator routes, a customer API key for the
//! customer's routes. Any missing, wrong or wrong-kind token is the same 401; an address
//! that keeps presenting wrong tokens gets 429 for a minute, whatever it presents.

use std::future::{Ready, ready};
use std::sync::atomic::Ordering;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::AppState;
use super::client_addr::client_ip;
use super::limits::rate_limited;
use crate::domain::secret::hash_token;
use crate::domain::time::now_ms;
use crate::error::ApiError;

/// The request carries the admin token.
pub struct Admin;

/// The request carries an API key of this customer.
pub struct Customer {
    pub id: String,
}

/// Either role (for the routes both may read).
pub struct AnyRole;

/// How often a key's `last_used_at` is written at most.
const TOUCH_EVERY_MS: i64 = 60_000;

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn admin(req: &HttpRequest) -> bool {
    let (Some(token), Some(stored)) = (bearer(req), AppState::of(req).store.admin_hash()) else {
        return false;
    };
    hash_token(token).ct_eq(&stored).into()
}

fn customer(req: &HttpRequest) -> Option<String> {
    let token = bearer(req)?;
    let st = AppState::of(req);
    let owner = st.store.key_owner(&hash_token(token))?;
    let now = now_ms();
    let last = owner.touched.load(Ordering::Relaxed);
    if now - last > TOUCH_EVERY_MS
        && owner
            .touched
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        st.store.touch_api_key(&owner.key_id, now);
    }
    Some(owner.customer_id)
}

/// Refuses an address that failed too often; otherwise runs `check` and counts a failure
/// when a token was presented and refused.
fn authenticate<T>(req: &HttpRequest, check: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
    let st = AppState::of(req);
    let ip = client_ip(req, &st.limits.trusted);
    if let Some(wait) = st.limits.bearer_failures.blocked(ip) {
        return Err(rate_limited(wait, "failed authentication attempts"));
    }
    check().ok_or_else(|| {
        if bearer(req).is_some() {
            st.limits.bearer_failures.fail(ip);
        }
        ApiError::unauthorized()
    })
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req, || admin(req).then_some(Admin)))
    }
}

impl FromRequest for Customer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req, || {
            customer(req).map(|id| Customer { id })
        }))
    }
}

impl FromRequest for AnyRole {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req, || {
            (admin(req) || customer(req).is_some()).then_some(AnyRole)
        }))
    }
}
