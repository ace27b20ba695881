//! Portal sessions (held in memory: a restart signs everyone out) and the throttle on
//! failed logins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::throttle::FailureThrottle;

use crate::domain::ApiKey;
use crate::domain::secret::hash_token;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed from one address per window before it gets 429.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Customer { customer_id: String, key_id: String },
    Admin,
}

/// A message shown once on the next page; `secret` is a value shown only this once.
#[derive(Debug, Clone, Default)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
    pub secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub who: Who,
    pub csrf: String,
    expires: Instant,
    flash: Option<Flash>,
}

pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    failures: FailureThrottle,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            by_hash: Mutex::default(),
            failures: FailureThrottle::new(MAX_FAILURES, FAILURE_WINDOW),
        }
    }
}

impl Sessions {
    /// A new session; returns the cookie value.
    pub fn start(&self, who: Who) -> String {
        let token = ApiKey::generate("s_").as_str().to_owned();
        let csrf = ApiKey::generate("c_").as_str().to_owned();
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(
            hash_token(&token),
            Session {
                who,
                csrf,
                expires: now + SESSION_TTL,
                flash: None,
            },
        );
        token
    }

    pub fn get(&self, token: &str) -> Option<Session> {
        let map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&hash_token(token))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    pub fn end(&self, token: &str) {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash_token(token));
    }

    pub fn set_flash(&self, token: &str, flash: Flash) {
        if let Some(s) = self
            .by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&hash_token(token))
        {
            s.flash = Some(flash);
        }
    }

    pub fn take_flash(&self, token: &str) -> Option<Flash> {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&hash_token(token))
            .and_then(|s| s.flash.take())
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
    fn sessions_start_end_and_carry_one_flash() {
        let s = Sessions::default();
        let t = s.start(Who::Admin);
        assert_eq!(s.get(&t).unwrap().who, Who::Admin);
        s.set_flash(
            &t,
            Flash {
                ok: true,
                message: "hi".into(),
                secret: None,
            },
        );
        assert_eq!(s.take_flash(&t).unwrap().message, "hi");
        assert!(s.take_flash(&t).is_none());
        s.end(&t);
        assert!(s.get(&t).is_none());
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
