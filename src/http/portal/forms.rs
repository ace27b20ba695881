//! Form bodies (`application/x-www-form-urlencoded`, repeated keys kept) and the CSRF check,
//! and `Posted`: a signed-in console's form post with its token already checked.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use subtle::ConstantTimeEq;

use super::{AdminCtx, CustomerCtx, PortalError};

pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Refuses a form whose token is not the session's.
    pub fn check_csrf(&self, expected: &str) -> Result<(), PortalError> {
        let given = self.get("csrf");
        if !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(PortalError::BadForm(
                "This form has expired (its security token does not match). Reload the page and try again.".into(),
            ))
        }
    }
}

/// A signed-in session that forms are checked against.
pub trait SignedIn {
    fn csrf(&self) -> &str;
}

impl SignedIn for CustomerCtx {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl SignedIn for AdminCtx {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form posted from a signed-in page: the session, and the form once its CSRF token matched.
pub struct Posted<C> {
    pub ctx: C,
    pub form: Form,
}

impl<C> FromRequest for Posted<C>
where
    C: FromRequest<Error = PortalError> + SignedIn + 'static,
{
    type Error = PortalError;
    type Future = LocalBoxFuture<'static, Result<Self, PortalError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let ctx = C::from_request(req, &mut Payload::None);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let ctx = ctx.await?;
            let body = body
                .await
                .map_err(|e| PortalError::BadForm(format!("The form could not be read: {e}")))?;
            let form = Form::parse(&body);
            form.check_csrf(ctx.csrf())?;
            Ok(Posted { ctx, form })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_csrf() {
        let f = Form::parse(b"events=a.b&events=c.d&url=http%3A%2F%2Fx&csrf=tok");
        assert_eq!(f.all("events"), ["a.b", "c.d"]);
        assert_eq!(f.get("url"), "http://x");
        assert_eq!(f.get("missing"), "");
        assert!(f.check_csrf("tok").is_ok());
        assert!(f.check_csrf("other").is_err());
        assert!(Form::parse(b"").check_csrf("").is_err());
    }
}
