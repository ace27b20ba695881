//! Portal sessions as the portal uses them: new cookie tokens (the store keeps only their
//! hash), the one-time messages shown on the next page (kept in memory, since they may
//! carry a secret shown once), and the throttle on failed sign-ins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::domain::ApiKey;
use crate::domain::secret::hash_token;
use crate::domain::session::{Session, Who};
use crate::http::throttle::FailureThrottle;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed from one address per window before it gets 429.
pub const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// One-time messages held at most; the oldest go first.
const MAX_FLASHES: usize = 10_000;

/// A message shown once on the next page; `secret` is a value shown only this once.
#[derive(Debug, Clone, Default)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
    pub secret: Option<String>,
}

/// How long a sign-in form (or a portal link's Continue form) stays good.
pub const LOGIN_TOKEN_TTL_MS: i64 = 2 * 3600 * 1000;

/// The tokens the sign-in forms carry, bound to this server: a random nonce and the time it
/// was issued, with an HMAC under the stored form key. A pair someone made up (however well
/// the cookie and the form field agree) fails the HMAC.
#[derive(Default)]
pub struct LoginTokens {
    key: [u8; 32],
}

impl LoginTokens {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, issued_ms: i64, nonce: &str) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("login|{issued_ms}|{nonce}").as_bytes());
        crate::domain::secret::hex(&mac.finalize().into_bytes()[..16])
    }

    /// A new token, issued at `now_ms`.
    pub fn issue(&self, now_ms: i64) -> String {
        let nonce = ApiKey::generate("").as_str().to_owned();
        format!(
            "l_{issued:x}.{nonce}.{mac}",
            issued = now_ms,
            mac = self.mac(now_ms, &nonce)
        )
    }

    /// True for a token this server issued within `LOGIN_TOKEN_TTL_MS` of `now_ms`.
    pub fn valid(&self, token: &str, now_ms: i64) -> bool {
        use subtle::ConstantTimeEq;
        let mut parts = token.strip_prefix("l_").unwrap_or_default().splitn(3, '.');
        let (Some(issued), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(issued) = i64::from_str_radix(issued, 16) else {
            return false;
        };
        let fresh = issued <= now_ms + 60_000 && now_ms - issued <= LOGIN_TOKEN_TTL_MS;
        fresh && bool::from(self.mac(issued, nonce).as_bytes().ct_eq(mac.as_bytes()))
    }
}

pub struct Sessions {
    flashes: Mutex<HashMap<[u8; 32], Flash>>,
    failures: FailureThrottle,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            flashes: Mutex::default(),
            failures: FailureThrottle::new(MAX_FAILURES, FAILURE_WINDOW),
        }
    }
}

/// A new session for `who` starting at `now_ms`: (cookie token, its hash, the session).
pub fn new_session(who: Who, now_ms: i64) -> (String, [u8; 32], Session) {
    let token = ApiKey::generate("s_").as_str().to_owned();
    let csrf = ApiKey::generate("c_").as_str().to_owned();
    let hash = hash_token(&token);
    let ttl = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    let session = Session {
        who,
        csrf,
        expires_at: now_ms + ttl,
    };
    (token, hash, session)
}

impl Sessions {
    pub fn set_flash(&self, token: &str, flash: Flash) {
        let mut map = self.flashes.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_FLASHES {
            map.clear();
        }
        map.insert(hash_token(token), flash);
    }

    pub fn take_flash(&self, token: &str) -> Option<Flash> {
        self.flashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash_token(token))
    }

    /// True when this address has failed too often lately.
    pub fn throttled(&self, ip: IpAddr) -> bool {
        self.failures.blocked(ip).is_some()
    }

    pub fn failed_login(&self, ip: IpAddr) {
        self.failures.fail(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_login_tokens_this_server_issued_are_valid() {
        let t = LoginTokens::new([7; 32]);
        let token = t.issue(1_000_000);
        assert!(t.valid(&token, 1_000_000));
        assert!(t.valid(&token, 1_000_000 + LOGIN_TOKEN_TTL_MS));
        assert!(!t.valid(&token, 1_000_001 + LOGIN_TOKEN_TTL_MS), "expired");
        assert!(
            !LoginTokens::new([8; 32]).valid(&token, 1_000_000),
            "another key"
        );
        for forged in ["x", "", "l_", "l_f4240.abc.def", "l_zz.a.b"] {
            assert!(!t.valid(forged, 1_000_000), "{forged}");
        }
        // Another time under the same MAC fails.
        let moved = token.replacen("l_f4240", "l_f4241", 1);
        assert!(!t.valid(&moved, 1_000_000));
    }

    #[test]
    fn a_flash_is_shown_once() {
        let s = Sessions::default();
        let (token, hash, session) = new_session(Who::Admin, 1_000);
        assert_eq!(hash, hash_token(&token));
        assert_eq!(session.expires_at, 1_000 + 12 * 3600 * 1000);
        s.set_flash(
            &token,
            Flash {
                ok: true,
                message: "hi".into(),
                secret: None,
            },
        );
        assert_eq!(s.take_flash(&token).unwrap().message, "hi");
        assert!(s.take_flash(&token).is_none());
    }

    #[test]
    fn repeated_failures_are_throttled() {
        let s = Sessions::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(!s.throttled(ip));
            s.failed_login(ip);
        }
        assert!(s.throttled(ip));
    }
}
