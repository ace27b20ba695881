//! One-time portal sign-in links: the operator makes one for a customer (API), the customer
//! opens it and presses Continue. Opening does not spend it (a mail scanner following links
//! leaves it good); only the POST does. Neither page sends a referrer or may be cached.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::forms::Form;
use super::sessions::new_session;
use super::sign_in::login_token_ok;
use super::{CUSTOMER_COOKIE, LOGIN_COOKIE, Layout, PortalError, Who, html, see_other};
use crate::domain::ApiKey;
use crate::domain::secret::hash_token;
use crate::domain::time::now_ms;
use crate::http::AppState;

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "portal_link.html")]
struct LinkPage {
    layout: Layout,
    heading: String,
    intro: String,
    valid: bool,
    action: String,
    csrf: String,
}

/// How long a portal link stays good.
pub const PORTAL_LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// Makes a one-time sign-in link for a customer (the API's and the console's button): its
/// URL and when it expires. Only the token's hash is stored; `NotFound` for no such customer.
pub async fn issue(st: &AppState, customer_id: String) -> crate::store::Result<(String, i64)> {
    let token = ApiKey::generate("wpl_").as_str().to_owned();
    let hash = hash_token(&token);
    let expires_at = st.store.clock().now_ms() + PORTAL_LINK_TTL_MS;
    st.run(move |s| s.put_portal_link(hash, &customer_id, expires_at))
        .await?;
    Ok((format!("{}/portal-link/{token}", st.public_url), expires_at))
}

/// The hash of a link's token, if it looks like one.
fn token_hash(token: &str) -> Option<[u8; 32]> {
    let ok = token.starts_with("wpl_")
        && token.len() <= 100
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| hash_token(token))
}

fn private(mut resp: HttpResponse) -> HttpResponse {
    let h = resp.headers_mut();
    h.insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    resp
}

fn spent() -> HttpResponse {
    let page = LinkPage {
        layout: Layout::public("Sign-in link"),
        heading: "This link cannot be used".into(),
        intro: "It was used already or has expired (links last 15 minutes). Ask for a new one."
            .into(),
        valid: false,
        action: String::new(),
        csrf: String::new(),
    };
    private(html(StatusCode::NOT_FOUND, &page))
}

pub async fn open(st: State, token: web::Path<String>) -> Result<HttpResponse, PortalError> {
    let Some(hash) = token_hash(&token) else {
        return Ok(spent());
    };
    let now = st.store.clock().now_ms();
    let name = st
        .run(move |s| -> crate::store::Result<_> {
            Ok(match s.peek_portal_link(&hash, now)? {
                Some(cid) => s.get_customer(&cid)?.map(|c| c.name),
                None => None,
            })
        })
        .await?;
    let Some(name) = name else {
        return Ok(spent());
    };
    let csrf = st.portal.login_tokens.issue(now_ms());
    let page = LinkPage {
        layout: Layout::public("Sign in"),
        heading: "Continue to Webhooks".into(),
        intro: format!("You are signing in to the webhooks of {name}."),
        valid: true,
        action: format!("/portal-link/{}", token.as_str()),
        csrf: csrf.clone(),
    };
    let mut resp = html(StatusCode::OK, &page);
    let _ = resp.add_cookie(&st.portal.cookie(LOGIN_COOKIE, csrf));
    Ok(private(resp))
}

pub async fn spend(
    req: HttpRequest,
    st: State,
    token: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PortalError> {
    let Some(hash) = token_hash(&token) else {
        return Ok(spent());
    };
    let form = Form::parse(&body);
    if !login_token_ok(&req, &form) {
        // A stale or forged form: the link stays good; show it again.
        return open(st, token).await;
    }
    let now = st.store.clock().now_ms();
    let Some(customer_id) = st.run(move |s| s.take_portal_link(&hash, now)).await? else {
        return Ok(spent());
    };
    let (session_token, session_hash, session) = new_session(Who::Linked { customer_id }, now_ms());
    st.run(move |s| s.put_session(session_hash, session))
        .await?;
    let mut resp = see_other("/webhooks");
    let _ = resp.add_cookie(&st.portal.cookie(CUSTOMER_COOKIE, session_token));
    let _ = resp.add_removal_cookie(&st.portal.removal(LOGIN_COOKIE));
    Ok(private(resp))
}
