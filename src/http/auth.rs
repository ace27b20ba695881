//! Bearer authentication: the admin token for operator routes, a customer API key for the
//! customer's routes. Any missing, wrong or wrong-kind token is the same 401; an address
//! that keeps presenting wrong tokens gets 429 for a minute, whatever it presents.

use std::future::{Ready, ready};

use futures_util::future::LocalBoxFuture;
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

/// Whom a customer route acts for: the customer whose API key it carries; or, with the admin
/// token, the customer that owns the object in the path (`{id}`), else the one the query names
/// (`?customer_id=`). An object nobody owns is 404; naming nobody is 422.
pub struct Customer {
    pub id: String,
}

/// Whose objects a list route shows: a customer its own; the admin token the customer the
/// query names (`?customer_id=`), or every customer's when it names none.
pub struct Lister {
    pub customer: Option<String>,
    /// Called with a customer's API key (not the admin token).
    pub by_key: bool,
}

impl Lister {
    /// Whose records the list reads.
    pub fn owner(&self) -> crate::store::Owner<'_> {
        crate::store::Owner::of(self.customer.as_deref())
    }
}

enum Caller {
    Key(String),
    Operator,
}

/// The customer or the operator. A customer key this node's cache does not know yet (made
/// on another node a moment ago) is looked up in the store before the answer is 401; a
/// failure counts toward the address's throttle only once the store said no.
async fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    let (st, ip) = not_throttled(req)?;
    if let Some(c) = customer(req)
        .map(Caller::Key)
        .or_else(|| admin(req).then_some(Caller::Operator))
    {
        return Ok(c);
    }
    if let Some(token) =
        bearer(req).filter(|t| t.starts_with(crate::domain::ApiKey::CUSTOMER_PREFIX))
    {
        let hash = hash_token(token);
        let found = st
            .run(move |store| store.lookup_key(&hash).map_err(ApiError::from))
            .await;
        match found {
            Ok(Some(owner)) => return Ok(Caller::Key(owner.customer_id)),
            Ok(None) => {}
            // The store could not say: not the client's failure.
            Err(e) => return Err(e),
        }
    }
    if bearer(req).is_some() {
        st.limits.bearer_failures.fail(ip);
    }
    Err(ApiError::unauthorized())
}

/// `?customer_id=` as given: 1 to 64 characters (whoever calls; a customer's is ignored).
fn customer_param(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let named = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "customer_id")
        .map(|(_, v)| v.into_owned());
    match named {
        Some(c) if c.is_empty() || c.chars().count() > 64 => Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid_query",
            "customer_id must be 1 to 64 characters",
        )),
        named => Ok(named),
    }
}

/// A customer key acts for its own customer: naming one is a mistake worth saying.
pub fn not_for_a_key() -> ApiError {
    ApiError::invalid(
        "unknown_field",
        "customer_id is for the admin token; a customer API key always acts for its own customer",
    )
}

/// The operator named a customer: it must exist (404 otherwise).
async fn existing(req: &HttpRequest, id: String) -> Result<String, ApiError> {
    AppState::of(req)
        .run(move |store| -> Result<_, ApiError> {
            store
                .get_customer(&id)?
                .map(|c| c.id)
                .ok_or_else(ApiError::not_found)
        })
        .await
}

/// `?customer_id=` of the query, if it is one (a malformed one names nobody: 404).
fn named_customer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    customer_param(req)?
        .map(|c| {
            crate::domain::IdKind::Customer
                .check(c)
                .map_err(|_| ApiError::not_found())
        })
        .transpose()
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

/// The state and the client's address, unless the address failed too often lately (429; its
/// part of the limit on each of several nodes).
fn not_throttled(req: &HttpRequest) -> Result<(&AppState, std::net::IpAddr), ApiError> {
    let st = AppState::of(req);
    let ip = client_ip(req, &st.limits.trusted);
    match st
        .limits
        .bearer_failures
        .blocked_among(ip, st.store.live_nodes())
    {
        Some(wait) => Err(rate_limited(wait, "failed authentication attempts")),
        None => Ok((st, ip)),
    }
}

/// Refuses an address that failed too often; otherwise runs `check` and counts a failure
/// when a token was presented and refused.
fn authenticate<T>(req: &HttpRequest, check: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
    let (st, ip) = not_throttled(req)?;
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
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let param = customer_param(&req)?;
            match caller(&req).await? {
                Caller::Key(_) if param.is_some() => Err(not_for_a_key()),
                Caller::Key(id) => Ok(Customer { id }),
                Caller::Operator => {
                    if let Some(object) = req.match_info().get("id") {
                        let object = object.to_owned();
                        let owner = AppState::of(&req)
                            .run(move |store| store.owner_of(&object).map_err(ApiError::from))
                            .await?;
                        return owner
                            .map(|id| Customer { id })
                            .ok_or_else(ApiError::not_found);
                    }
                    let named = named_customer(&req)?.ok_or_else(|| {
                        ApiError::invalid(
                            "customer_id_required",
                            "with the admin token, name the customer: ?customer_id=cus_…",
                        )
                    })?;
                    Ok(Customer {
                        id: existing(&req, named).await?,
                    })
                }
            }
        })
    }
}

impl FromRequest for Lister {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let named = customer_param(&req)?;
            match (caller(&req).await?, named) {
                (Caller::Key(_), Some(_)) => Err(not_for_a_key()),
                (Caller::Key(id), None) => Ok(Lister {
                    customer: Some(id),
                    by_key: true,
                }),
                (Caller::Operator, None) => Ok(Lister {
                    customer: None,
                    by_key: false,
                }),
                // A customer_id that is no customer's is not found.
                (Caller::Operator, Some(_)) => {
                    let id = named_customer(&req)?.ok_or_else(ApiError::not_found)?;
                    Ok(Lister {
                        customer: Some(existing(&req, id).await?),
                        by_key: false,
                    })
                }
            }
        })
    }
}

impl FromRequest for AnyRole {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { caller(&req).await.map(|_| AnyRole) })
    }
}
