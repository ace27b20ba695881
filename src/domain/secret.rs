//! Secrets: customer API keys (stored as SHA-256) and endpoint signing secrets (`whsec_…`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// A bearer secret (customer API key or admin token). Only its SHA-256 is stored: the keys are
/// 192 random bits, so a fast hash is enough and lookups stay O(1).
pub struct ApiKey(String);

impl ApiKey {
    pub const CUSTOMER_PREFIX: &'static str = "whk_";
    pub const ADMIN_PREFIX: &'static str = "wha_";

    pub fn generate(prefix: &str) -> Self {
        Self(format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<24>())
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the API shows of a key after creation: enough to recognise it, useless to use.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(10).collect()
    }

    pub fn hash(&self) -> [u8; 32] {
        hash_token(&self.0)
    }
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes back from the 64 hex digits `hex` made of them.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// An endpoint's Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(random_bytes::<32>())
        ))
    }

    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the base64-decoded part after the prefix.
    pub fn key_bytes(&self) -> Vec<u8> {
        let b64 = self.0.strip_prefix(Self::PREFIX).unwrap_or(&self.0);
        STANDARD
            .decode(b64)
            .unwrap_or_else(|_| b64.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shapes() {
        let s = SigningSecret::generate();
        assert!(s.as_str().starts_with("whsec_"));
        assert_eq!(s.key_bytes().len(), 32);
        let k = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        assert!(k.as_str().starts_with("whk_"));
        assert_eq!(k.hash(), hash_token(k.as_str()));
        assert_ne!(
            ApiKey::generate("x").as_str(),
            ApiKey::generate("x").as_str()
        );
    }
}
