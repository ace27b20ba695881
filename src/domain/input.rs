//! Validated inputs: target URLs, event filters, extra headers, names and descriptions.

use std::collections::BTreeMap;

use ureq::http::Uri;

/// A rule broken by otherwise valid JSON: answered 422 with `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub code: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_TEXT_BYTES: usize = 1024;
pub const MAX_DATA_BYTES: usize = 256 * 1024;
pub const MAX_HEADERS: usize = 20;

/// An absolute http(s) URL with a host and no user-info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(String);

impl TargetUrl {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let bad = |why: &str| ValidationError::new("invalid_url", format!("url {why}"));
        if s.len() > MAX_URL_BYTES {
            return Err(bad("is longer than 2048 bytes"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not contain spaces or control characters"));
        }
        let uri: Uri = s.parse().map_err(|_| bad("is not a valid absolute URL"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(bad("must start with http:// or https://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("must have a host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not contain user-info"));
        }
        if authority.host().is_empty() {
            return Err(bad("must have a host"));
        }
        // `Uri` drops a port it cannot read: look at the text after the host ourselves.
        let text = authority.as_str();
        let after_host = match text.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
            None => text.rfind(':').map_or("", |i| &text[i..]),
        };
        if let Some(port) = after_host.strip_prefix(':')
            && !port.parse::<u16>().is_ok_and(|p| p > 0)
        {
            return Err(bad("has a port that is not a number from 1 to 65535"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which event types an endpoint receives: a list of distinct catalog names, or every type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Only(Vec<String>),
}

impl EventFilter {
    /// `is_known` answers whether a name is in the catalog.
    pub fn parse(
        events: &[String],
        is_known: impl Fn(&str) -> bool,
    ) -> Result<Self, ValidationError> {
        if events.is_empty() {
            return Err(ValidationError::new(
                "invalid_events",
                "events must list at least one event type, or be [\"*\"]",
            ));
        }
        if events.iter().any(|e| e == "*") {
            if events.len() == 1 {
                return Ok(Self::All);
            }
            return Err(ValidationError::new(
                "invalid_events",
                "\"*\" must be the only entry of events",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for e in events {
            if !seen.insert(e.as_str()) {
                return Err(ValidationError::new(
                    "invalid_events",
                    format!("event type {e:?} is listed twice"),
                ));
            }
            if !is_known(e) {
                return Err(ValidationError::new(
                    "unknown_event_type",
                    format!("unknown event type {e:?}"),
                ));
            }
        }
        Ok(Self::Only(events.to_vec()))
    }

    pub fn into_list(self) -> Vec<String> {
        match self {
            Self::All => vec!["*".to_owned()],
            Self::Only(v) => v,
        }
    }
}

pub fn subscribes(events: &[String], name: &str) -> bool {
    events.iter().any(|e| e == "*" || e == name)
}

/// Extra request headers an endpoint asks for.
pub type Headers = BTreeMap<String, String>;

const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "user-agent",
];

/// Checks an endpoint's extra headers and returns them with lowercase names (HTTP names are
/// case-insensitive, so `X-A` and `x-a` are one header, given twice).
pub fn validate_headers(headers: &Headers) -> Result<Headers, ValidationError> {
    let bad = |m: String| ValidationError::new("invalid_headers", m);
    if headers.len() > MAX_HEADERS {
        return Err(bad(format!("at most {MAX_HEADERS} headers are allowed")));
    }
    let mut out = Headers::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if out.contains_key(&lower) {
            return Err(bad(format!("header {name:?} is given twice")));
        }
        if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad(format!("{name:?} is not a valid header name")));
        }
        if ureq::http::HeaderValue::from_str(value).is_err() || value.len() > MAX_TEXT_BYTES {
            return Err(bad(format!("the value of header {name:?} is not valid")));
        }
        if FORBIDDEN_HEADERS.contains(&lower.as_str())
            || lower.starts_with("webhook-")
            || lower.starts_with("content-")
        {
            return Err(bad(format!("header {name:?} cannot be set on an endpoint")));
        }
        out.insert(lower, value.clone());
    }
    Ok(out)
}

pub fn validate_text(field: &str, value: &str, allow_empty: bool) -> Result<(), ValidationError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(ValidationError::new(
            "invalid_field",
            format!("{field} is longer than {MAX_TEXT_BYTES} bytes"),
        ));
    }
    if !allow_empty && value.trim().is_empty() {
        return Err(ValidationError::new(
            "invalid_field",
            format!("{field} must not be empty"),
        ));
    }
    Ok(())
}

/// An event type name: lowercase dotted words, e.g. `transactions.fetched`.
pub fn validate_event_type_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "invalid_event_type",
            "an event type name is dot-separated words of a-z, 0-9, _ and - (at most 128 bytes)",
        ))
    }
}

/// `data` must be a JSON object of at most 256 KiB, kept as the producer's text.
pub fn validate_data(raw: &str) -> Result<(), ValidationError> {
    if raw.len() > MAX_DATA_BYTES {
        return Err(ValidationError::new(
            "data_too_large",
            format!("data is larger than {MAX_DATA_BYTES} bytes"),
        ));
    }
    if !raw.trim_start().starts_with('{') {
        return Err(ValidationError::new(
            "invalid_data",
            "data must be a JSON object",
        ));
    }
    if nesting_depth(raw) > MAX_DATA_DEPTH {
        return Err(ValidationError::new(
            "data_too_deep",
            format!("data nests objects and arrays deeper than {MAX_DATA_DEPTH} levels"),
        ));
    }
    Ok(())
}

pub const MAX_DATA_DEPTH: usize = 64;

/// The deepest nesting of objects and arrays in valid JSON text.
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(TargetUrl::parse("http://127.0.0.1:9000/hook").is_ok());
        assert!(TargetUrl::parse("https://example.com").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "http://user:pw@example.com/",
            "http:///nohost",
            "http://exa mple.com",
            "http://example.com:99999/",
            "http://example.com:0/",
            "http://example.com:abc/",
            "",
        ] {
            assert_eq!(
                TargetUrl::parse(bad).unwrap_err().code,
                "invalid_url",
                "{bad}"
            );
        }
        let long = format!("http://example.com/{}", "a".repeat(2048));
        assert!(TargetUrl::parse(&long).is_err());
    }

    #[test]
    fn event_filters() {
        let known = |n: &str| n == "a.b" || n == "c.d";
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(EventFilter::parse(&v(&["*"]), known), Ok(EventFilter::All));
        assert!(EventFilter::parse(&v(&["a.b", "c.d"]), known).is_ok());
        assert_eq!(
            EventFilter::parse(&v(&[]), known).unwrap_err().code,
            "invalid_events"
        );
        assert_eq!(
            EventFilter::parse(&v(&["a.b", "a.b"]), known)
                .unwrap_err()
                .code,
            "invalid_events"
        );
        assert_eq!(
            EventFilter::parse(&v(&["x.y"]), known).unwrap_err().code,
            "unknown_event_type"
        );
        assert_eq!(
            EventFilter::parse(&v(&["*", "a.b"]), known)
                .unwrap_err()
                .code,
            "invalid_events"
        );
    }

    #[test]
    fn headers() {
        let mut h = Headers::new();
        h.insert("X-Team".into(), "core".into());
        assert!(validate_headers(&h).is_ok());
        let mut twice = Headers::new();
        twice.insert("X-A".into(), "1".into());
        twice.insert("x-a".into(), "2".into());
        assert!(validate_headers(&twice).is_err());
        for bad in ["Connection", "webhook-id", "Content-Type", "bad header"] {
            let mut h = Headers::new();
            h.insert(bad.into(), "v".into());
            assert!(validate_headers(&h).is_err(), "{bad}");
        }
        let many: Headers = (0..21).map(|i| (format!("x-{i}"), "v".into())).collect();
        assert!(validate_headers(&many).is_err());
    }

    #[test]
    fn data_and_names() {
        assert!(validate_data("{}").is_ok());
        assert_eq!(validate_data("[1]").unwrap_err().code, "invalid_data");
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_DATA_BYTES));
        assert_eq!(validate_data(&big).unwrap_err().code, "data_too_large");
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(validate_data(&deep).unwrap_err().code, "data_too_deep");
        let ok = format!(
            "{{\"a\":{}{},\"s\":\"[[[[\\\"\"}}",
            "[".repeat(62),
            "]".repeat(62)
        );
        assert!(validate_data(&ok).is_ok(), "{ok}");
        assert!(validate_event_type_name("transactions.fetched").is_ok());
        assert!(validate_event_type_name("Bad Name").is_err());
        assert!(validate_event_type_name("a..b").is_err());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn url_parsing_never_panics(s in "\\PC{0,300}") {
                let _ = TargetUrl::parse(&s);
            }

            #[test]
            fn an_accepted_url_is_absolute_http_with_a_usable_port(
                s in "(http|https|ftp|)(://|:/|)[a-z0-9.:@\\[\\]-]{0,30}(/[a-z0-9%?=&#]{0,20})?"
            ) {
                if let Ok(url) = TargetUrl::parse(&s) {
                    let uri: Uri = url.as_str().parse().unwrap();
                    prop_assert!(matches!(uri.scheme_str(), Some("http") | Some("https")));
                    let authority = uri.authority().unwrap();
                    prop_assert!(!authority.as_str().contains('@'));
                    prop_assert!(!authority.host().is_empty());
                    let text = authority.as_str();
                    if let Some((_, port)) = text.rsplit_once(':')
                        && !text.ends_with(']')
                        && !port.contains(']')
                    {
                        prop_assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{}", text);
                    }
                }
            }

            #[test]
            fn dotted_lowercase_names_are_event_types(parts in prop::collection::vec("[a-z0-9_-]{1,12}", 1..6)) {
                let name = parts.join(".");
                prop_assert_eq!(validate_event_type_name(&name).is_ok(), name.len() <= 128);
            }

            #[test]
            fn other_names_are_not(name in "[A-Z .]{1,20}|[a-z]*\\.\\.[a-z]*|\\.[a-z]+|[a-z]+\\.") {
                prop_assert!(validate_event_type_name(&name).is_err());
            }

            #[test]
            fn data_depth_is_counted_like_a_parser_would(depth in 1usize..120, key in "[a-z\\[\\]{}\"]{0,8}") {
                // `depth` nested objects, with brackets and quotes hidden inside a string value.
                let inner = serde_json::to_string(&key).unwrap();
                let text = format!("{}{}{}", "{\"a\":".repeat(depth - 1) + "{\"k\":", inner, "}".repeat(depth));
                prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok() || depth > 120);
                prop_assert_eq!(validate_data(&text).is_ok(), depth <= MAX_DATA_DEPTH);
            }

            #[test]
            fn data_validation_never_panics(s in "\\PC{0,300}") {
                let _ = validate_data(&s);
            }
        }
    }
}
