//! Static API keys for development and service accounts. Only SHA-256 hashes are
//! configured (keys are 256-bit random, so a fast hash is enough; a stolen config
//! yields no key), and a presented key is compared against every configured hash in
//! constant time, so timing says nothing about which key or how much of it matched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::principal::{CredentialKind, Principal};
use super::rejection::Rejection;
use crate::config::{ApiKeyConfig, ResourceConfig, constant_time_eq};
use crate::domain::resource::same_resource;

/// The prefix of generated keys, so they are recognisable in secret scanners.
pub const KEY_PREFIX: &str = "tbk_";

/// A new random key: the prefix and 256 bits, base64url.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `sha256:<hex>` of a key, the form configuration takes.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<ApiKeyConfig>,
}

impl ApiKeys {
    pub fn new(keys: Vec<ApiKeyConfig>) -> Self {
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key matching `presented`, checked against every configured hash.
    fn find(&self, presented: &str) -> Option<&ApiKeyConfig> {
        let digest = crate::domain::digest::sha256(presented.as_bytes());
        let mut found = None;
        for key in &self.keys {
            // No early exit: every hash is compared whatever matched before.
            if constant_time_eq(&key.hash, &digest) {
                found = Some(key);
            }
        }
        found
    }

    /// `None` when `presented` is no configured key; otherwise its verdict at `now`.
    pub fn verify(
        &self,
        presented: &str,
        resource: &ResourceConfig,
        now: u64,
    ) -> Option<Result<Principal, Rejection>> {
        let key = self.find(presented)?;
        let allowed_here = key
            .resources
            .as_ref()
            .is_none_or(|list| list.iter().any(|r| same_resource(r, &resource.uri)));
        Some(if !key.active || key.expires_at.is_some_and(|t| now >= t) {
            tracing::info!(key = %key.name, "inactive or expired API key presented");
            Err(Rejection::Inactive)
        } else if !allowed_here {
            Err(Rejection::WrongAudience)
        } else {
            Ok(Principal {
                subject: key.subject.clone(),
                scopes: key.scopes.clone(),
                client_id: Some(format!("api-key:{}", key.name)),
                kind: CredentialKind::ApiKey,
                expires_at: key.expires_at,
                grant_id: None,
                tools: key.tools.clone(),
                identity: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_hash_to_the_config_form() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 43);
        let hash = hash_key(&a);
        assert!(hash.starts_with("sha256:") && hash.len() == 7 + 64);
        assert_eq!(
            hash_key("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
