//! Endpoints: where a customer wants its events, with the secret that signs them.

use serde::{Deserialize, Serialize};

use super::hold::Pause;
use super::input::{Headers, TargetUrl};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OldSecret {
    pub secret: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub customer_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub secret: String,
    pub old_secret: Option<OldSecret>,
    pub rate_limit_per_sec: Option<u32>,
    pub headers: Headers,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set while its receiver is down: its deliveries wait, untried.
    #[serde(default)]
    pub pause: Option<Pause>,
    /// How long a delivery may wait behind a pause (0: never hold); `None`: the server's
    /// `--max-hold-hours`.
    #[serde(default)]
    pub max_hold_secs: Option<u64>,
}

impl Endpoint {
    /// A new endpoint of `customer_id` with a fresh signing secret.
    pub fn new(id: String, customer_id: &str, new: NewEndpoint, secret: String, now: i64) -> Self {
        Self {
            id,
            customer_id: customer_id.to_owned(),
            url: new.url.as_str().to_owned(),
            events: new.events,
            description: new.description,
            enabled: new.enabled,
            secret,
            old_secret: None,
            rate_limit_per_sec: new.rate_limit_per_sec,
            headers: new.headers,
            created_at: now,
            updated_at: now,
            pause: None,
            max_hold_secs: new.max_hold_secs,
        }
    }

    /// The secrets a delivery is signed with at `now`: the current one, and the old one while kept.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut v = vec![self.secret.as_str()];
        if let Some(old) = &self.old_secret
            && old.expires_at > now
        {
            v.push(old.secret.as_str());
        }
        v
    }

    /// Applies a change whose event types the store has checked; true if it disabled the
    /// endpoint (its pending deliveries then fail). A new URL or disabling ends a pause.
    pub fn apply(&mut self, patch: EndpointPatch, now: i64) -> bool {
        let was_enabled = self.enabled;
        if patch.url.as_ref().is_some_and(|u| u.as_str() != self.url)
            || patch.enabled == Some(false)
        {
            self.pause = None;
        }
        if let Some(m) = patch.max_hold_secs {
            self.max_hold_secs = m;
        }
        if let Some(events) = patch.events {
            self.events = events;
        }
        if let Some(url) = patch.url {
            self.url = url.as_str().to_owned();
        }
        if let Some(d) = patch.description {
            self.description = d;
        }
        if let Some(enabled) = patch.enabled {
            self.enabled = enabled;
        }
        if let Some(r) = patch.rate_limit_per_sec {
            self.rate_limit_per_sec = r;
        }
        if let Some(h) = patch.headers {
            self.headers = h;
        }
        self.updated_at = now;
        was_enabled && !self.enabled
    }

    /// A new signing secret; the old one keeps signing too for `keep_old_for_secs`.
    pub fn rotate(&mut self, secret: String, keep_old_for_secs: u64, now: i64) {
        self.old_secret = (keep_old_for_secs > 0).then(|| OldSecret {
            secret: std::mem::take(&mut self.secret),
            expires_at: now + keep_old_for_secs as i64 * 1000,
        });
        self.secret = secret;
        self.updated_at = now;
    }
}

#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: TargetUrl,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub rate_limit_per_sec: Option<u32>,
    pub headers: Headers,
    pub max_hold_secs: Option<u64>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<TargetUrl>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub rate_limit_per_sec: Option<Option<u32>>,
    pub headers: Option<Headers>,
    pub max_hold_secs: Option<Option<u64>>,
}
