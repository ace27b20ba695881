//! Form bodies (`application/x-www-form-urlencoded`, repeated keys kept) and the CSRF check.

use subtle::ConstantTimeEq;

use super::PortalError;

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
