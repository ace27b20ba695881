//! Signing in and out, for both consoles: the sign-in page, the check of the secret (each
//! console takes only its own kind), the throttle, and the session cookie.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;

use super::forms::{Form, Posted};
use super::sessions::new_session;
use super::{
    ADMIN_COOKIE, CUSTOMER_COOKIE, CustomerCtx, LOGIN_COOKIE, Layout, PortalError, Who, html,
    see_other,
};
use crate::domain::ApiKey;
use crate::domain::secret::hash_token;
use crate::domain::time::now_ms;
use crate::http::AppState;
use subtle::ConstantTimeEq;

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    heading: &'static str,
    intro: &'static str,
    action: &'static str,
    label: &'static str,
    field: &'static str,
    footer: &'static str,
    csrf: String,
    error: Option<String>,
}

/// A sign-in form (customer or operator) with a fresh double-submit token.
pub(super) fn login_page(
    st: &AppState,
    admin: bool,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let csrf = st.portal.login_tokens.issue(now_ms());
    let page = if admin {
        LoginPage {
            layout: Layout::public("Operator sign-in"),
            heading: "Operator console",
            intro: "Sign in with the admin token that the first start of webhooks serve printed.",
            action: "/admin/login",
            label: "Admin token",
            field: "token",
            footer: "Customers sign in at /.",
            csrf: csrf.clone(),
            error,
        }
    } else {
        LoginPage {
            layout: Layout::public("Sign in"),
            heading: "Sign in to Webhooks",
            intro: "Use your API key to manage where your events are delivered.",
            action: "/login",
            label: "API key",
            field: "api_key",
            footer: "Operators sign in at /admin.",
            csrf: csrf.clone(),
            error,
        }
    };
    let mut resp = html(status, &page);
    let _ = resp.add_cookie(&st.portal.cookie(LOGIN_COOKIE, csrf));
    resp
}

pub(super) fn peer_ip(req: &HttpRequest, st: &AppState) -> std::net::IpAddr {
    crate::http::client_addr::client_ip(req, &st.limits.trusted)
}

/// Checks a sign-in form's token against its cookie; a stale form gets a fresh one.
pub(super) fn login_token_ok(req: &HttpRequest, form: &Form) -> bool {
    let cookie = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let st = AppState::of(req);
    st.portal.login_tokens.valid(&cookie, now_ms()) && form.check_csrf(&cookie).is_ok()
}

pub async fn home(req: HttpRequest, st: State) -> HttpResponse {
    if CustomerCtx::extract(&req).await.is_ok() {
        return see_other("/webhooks");
    }
    login_page(&st, false, StatusCode::OK, None)
}

pub async fn login(
    req: HttpRequest,
    st: State,
    body: web::Bytes,
) -> Result<HttpResponse, PortalError> {
    sign_in(&req, &st, &body, false).await
}

/// Checks a sign-in form (the operator's when `admin`) and starts a session. Each form takes
/// only its own kind of secret; failures count toward the address's throttle.
pub(super) async fn sign_in(
    req: &HttpRequest,
    st: &AppState,
    body: &[u8],
    admin: bool,
) -> Result<HttpResponse, PortalError> {
    let ip = peer_ip(req, st);
    let sessions = &st.portal.sessions;
    // Counted here and, with several nodes, in the store: a balancer cannot spread guesses.
    let client = crate::http::throttle::throttle_key(ip).to_string();
    let minute = st.store.clock().now_ms() / 60_000;
    let shared = {
        let client = client.clone();
        st.run(move |store| -> Result<_, PortalError> {
            store
                .sign_in_failures(&client, minute)
                .map_err(PortalError::from)
        })
        .await
        .unwrap_or(0)
    };
    if sessions.throttled(ip) || shared >= super::sessions::MAX_FAILURES {
        return Err(PortalError::Throttled);
    }
    let form = Form::parse(body);
    if !login_token_ok(req, &form) {
        let msg = "The sign-in form expired. Please try again.".to_owned();
        return Ok(login_page(st, admin, StatusCode::BAD_REQUEST, Some(msg)));
    }
    let who = if admin {
        let given = hash_token(form.get("token").trim());
        st.store
            .admin_hash()
            .is_some_and(|stored| bool::from(given.ct_eq(&stored)))
            .then_some(Who::Admin)
    } else {
        let key = form.get("api_key").trim();
        // A key made on another node a moment ago is looked up before it is refused.
        let owner = if key.starts_with(ApiKey::CUSTOMER_PREFIX) {
            let hash = hash_token(key);
            st.run(move |store| store.lookup_key(&hash)).await?
        } else {
            None
        };
        owner.map(|owner| Who::Customer {
            customer_id: owner.customer_id,
            key_id: owner.key_id,
        })
    };
    let Some(who) = who else {
        sessions.failed_login(ip);
        if let Err(e) = st
            .run(move |store| -> Result<_, PortalError> {
                store
                    .sign_in_failed(&client, minute)
                    .map_err(PortalError::from)
            })
            .await
        {
            tracing::warn!(error = %e, "cannot count a failed sign-in in the store");
        }
        let what = if admin { "admin token" } else { "API key" };
        let given = form.get(if admin { "token" } else { "api_key" }).trim();
        let msg = if !admin && given.starts_with(ApiKey::ADMIN_PREFIX) {
            "That is the admin token: operators sign in at /admin.".to_owned()
        } else if admin && given.starts_with(ApiKey::CUSTOMER_PREFIX) {
            "That is a customer's API key: customers sign in at /.".to_owned()
        } else {
            format!("That {what} is not valid.")
        };
        return Ok(login_page(st, admin, StatusCode::UNAUTHORIZED, Some(msg)));
    };
    // A success does not clear the failures: they expire with their window, so guesses
    // cannot be interleaved with sign-ins to dodge the limit.
    let (cookie, home) = if admin {
        (ADMIN_COOKIE, "/admin")
    } else {
        (CUSTOMER_COOKIE, "/webhooks")
    };
    let (token, hash, session) = new_session(who, now_ms());
    st.run(move |s| s.put_session(hash, session)).await?;
    let mut resp = see_other(home);
    let _ = resp.add_cookie(&st.portal.cookie(cookie, token));
    let _ = resp.add_removal_cookie(&st.portal.removal(LOGIN_COOKIE));
    Ok(resp)
}

pub async fn logout(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
) -> Result<HttpResponse, PortalError> {
    sign_out(&st, &ctx.token, CUSTOMER_COOKIE, "/").await
}

/// Ends the session on the server and drops its cookie.
pub(super) async fn sign_out(
    st: &AppState,
    token: &str,
    cookie: &'static str,
    to: &str,
) -> Result<HttpResponse, PortalError> {
    let hash = hash_token(token);
    st.run(move |store| store.end_session(&hash)).await?;
    let mut resp = see_other(to);
    let _ = resp.add_removal_cookie(&st.portal.removal(cookie));
    Ok(resp)
}
