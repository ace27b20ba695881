//! Request bodies and queries: JSON of at most 1 MiB with the right content type, read no
//! further than the limit, and errors that say what was wrong (400, 413, 415, 422).

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::store::PageQuery;

/// A JSON body parsed into `T`; unknown fields are refused by `T` itself.
pub struct Json<T> {
    pub value: T,
    /// The body as received, for idempotency hashing.
    pub raw: actix_web::web::Bytes,
}

/// Like `Json`, but an empty body means `T::default()` (optional request bodies).
pub struct OptionalJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The body the guard read (within its size limit and deadline), taken over without a copy.
async fn read_limited(mut payload: Payload) -> Result<actix_web::web::Bytes, ApiError> {
    super::guard::read_body(&mut payload).await
}

/// Parses JSON text into `T`: malformed JSON is 400, valid JSON that breaks a rule (unknown
/// field, wrong type, missing field) is 422.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = serde_json::from_slice(bytes);
    // JSON Schema counts `7427.0` as an integer: so do we, for the fields that take one.
    let first = match first {
        Err(e) if e.to_string().starts_with("invalid type: floating point") => {
            integral_floats_as_integers(bytes).map_or(Err(e), |b| serde_json::from_slice(&b))
        }
        done => done,
    };
    first.map_err(|e| {
        use serde_json::error::Category;
        // A type error can come before the syntax error further on: check the whole text.
        let well_formed = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        match e.classify() {
            Category::Data if well_formed() => {
                let msg = e.to_string();
                let code = if msg.starts_with("unknown field") {
                    "unknown_field"
                } else if msg.starts_with("missing field") {
                    "missing_field"
                } else {
                    "invalid_field"
                };
                ApiError::invalid(code, msg)
            }
            _ => ApiError::bad_json(format!("the body is not valid JSON: {e}")),
        }
    })
}

/// The JSON text again with every number that has no fraction (`7427.0`, `1e3`) written as
/// an integer; `None` when it is not JSON.
fn integral_floats_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
                if let Some(f) = n.as_f64()
                    && f.fract() == 0.0
                    && f.abs() < 9_007_199_254_740_992.0
                {
                    *v = serde_json::Value::from(f as i64);
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    walk(&mut v);
    serde_json::to_vec(&v).ok()
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with content-type: application/json",
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(unsupported());
            }
            let raw = read_limited(payload).await?;
            let value = parse(&raw)?;
            Ok(Json { value, raw })
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let payload = payload.take();
        Box::pin(async move {
            let raw = read_limited(payload).await?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            if !json {
                return Err(unsupported());
            }
            parse(&raw).map(OptionalJson)
        })
    }
}

/// `limit` (1–250, default 50) and `before` of every list.
pub fn page_query<'a>(
    limit: Option<&str>,
    before: Option<&'a str>,
) -> Result<PageQuery<'a>, ApiError> {
    let limit = match limit {
        None => 50,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=250).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "invalid_limit",
                    "limit must be a whole number from 1 to 250",
                ));
            }
        },
    };
    if before.is_some_and(|b| b.is_empty() || b.chars().count() > 64) {
        return Err(ApiError::invalid(
            "invalid_before",
            "before must be an id (or name) from a previous page's next",
        ));
    }
    Ok(PageQuery { before, limit })
}

/// Deserialises `Option<Option<T>>` so that `null` (clear) differs from absent (keep).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Rotate {
        keep_old_for_secs: Option<u64>,
    }

    #[test]
    fn an_integer_field_takes_an_integral_number_written_as_a_float() {
        let r: Rotate = super::parse(br#"{"keep_old_for_secs": 7427.0}"#).unwrap();
        assert_eq!(r.keep_old_for_secs, Some(7427));
        let r: Rotate = super::parse(br#"{"keep_old_for_secs": 1e3}"#).unwrap();
        assert_eq!(r.keep_old_for_secs, Some(1000));
        let e = super::parse::<Rotate>(br#"{"keep_old_for_secs": 7427.5}"#).unwrap_err();
        assert_eq!(e.code, "invalid_field");
    }
}
