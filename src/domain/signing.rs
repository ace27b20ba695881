//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::{Endpoint, Event, SigningSecret};

/// The Standard Webhooks headers of `event` sent to `endpoint` at `now` (ms): `webhook-id`,
/// `webhook-timestamp` (seconds) and `webhook-signature` with every secret valid then.
pub fn webhook_headers(
    event: &Event,
    endpoint: &Endpoint,
    now: i64,
) -> [(&'static str, String); 3] {
    let timestamp = now / 1000;
    let signature = signature_header(
        &endpoint.signing_secrets(now),
        &event.id,
        timestamp,
        event.body.as_bytes(),
    );
    [
        ("webhook-id", event.id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

/// The `webhook-signature` header value: one space-separated `v1,` entry per secret.
pub fn signature_header(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = SigningSecret::from_stored(secret.to_owned()).key_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// How far a `webhook-timestamp` may be from now, as the Standard Webhooks libraries allow.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Why a received webhook does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from now (more than 5 minutes)")]
    OutsideTolerance(i64),
    #[error("no signature in webhook-signature matches this secret")]
    NoMatch,
}

/// Checks a received webhook the way the Standard Webhooks libraries do: the timestamp within
/// the tolerance, and any `v1,` entry equal (in constant time) to the expected signature.
pub fn verify(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    use subtle::ConstantTimeEq;
    let id = id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let ts = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signature = signature.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now_secs.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::OutsideTolerance(now_secs.saturating_sub(ts)));
    }
    let expected = sign(secret, id, ts, body);
    let expected = expected.as_bytes();
    let ok = signature
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .any(|s| s.as_bytes().ct_eq(expected).into());
    if ok {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verify_accepts_what_sign_makes_and_nothing_else() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = signature_header(&["whsec_AAAA", secret], "msg_1", 1000, b"{}");
        assert_eq!(
            verify(secret, Some("msg_1"), Some("1000"), Some(&sig), b"{}", 1010),
            Ok(())
        );
        assert_eq!(
            verify(
                secret,
                Some("msg_1"),
                Some("1000"),
                Some(&sig),
                b"{ }",
                1010
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                secret,
                Some("msg_1"),
                Some("1000"),
                Some(&sig),
                b"{}",
                1000 + 301
            ),
            Err(VerifyError::OutsideTolerance(301))
        );
        assert_eq!(
            verify(secret, None, Some("1000"), Some(&sig), b"{}", 1000),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
    }

    #[test]
    fn several_secrets_give_space_separated_entries() {
        let h = signature_header(&["whsec_AAAA", "whsec_BBBB"], "id", 1, b"{}");
        assert_eq!(h.split(' ').count(), 2);
        assert!(h.split(' ').all(|s| s.starts_with("v1,")));
    }
}
