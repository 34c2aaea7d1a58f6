//! The broker's signing keys as records of a store. A durable backend seals the
//! private key (bound to its `kid`, like every sealed column), so a copy of the
//! database or of Redis cannot sign tokens; every replica on one store reads the same
//! key set, and a rotation written by one is published by all (see
//! `tokens::signing`).

use std::fmt;

use zeroize::Zeroizing;

use crate::clock::UnixSeconds;

/// The associated data's place for a sealed private key (with the `kid` as the
/// record's key): the same in sqlite and Redis.
pub const SEALED_PRIVATE_KEY: &str = "signing_keys.private_key";

/// One signing key as stored. The private key is in the clear here and sealed at
/// rest; `Debug` shows only the `kid`, algorithm and times.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// RFC 7638 thumbprint of the public key: the JWT header's `kid`.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// PKCS#8 DER.
    pub private_key: Zeroizing<Vec<u8>>,
    pub created_at: UnixSeconds,
    /// From when it signs; published from the moment it is stored.
    pub activates_at: UnixSeconds,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// The name under which durable backends keep the consent cookie key among the
/// broker's own secrets (sealed, bound to the name).
pub const CONSENT_COOKIE_KEY: &str = "consent_cookie_key";
/// The associated data's place for a sealed secret (with its name as the key).
pub const SEALED_SECRET: &str = "secrets.value";
