//! Every Redis key the store writes, in one place, all under the configured prefix
//! (`store.key_prefix`). The Lua scripts build the same names from the prefix (see
//! `lua/common.lua`); the two must agree.
//!
//! ```text
//! <p>client:<client_id>        hash: one registered client
//! <p>clients:unused            sorted set: never-used client ids by issue time
//! <p>clients:used              sorted set: used client ids by last use
//! <p>grant:<grant_id>          hash: one grant (the provider's tokens sealed)
//! <p>grants                    set: every grant id (what the sweep walks)
//! <p>grant_tokens:<grant_id>   set: hex hashes of the grant's refresh tokens
//! <p>grant_index:all           sorted set (score 0, read by id): every grant id
//! <p>grant_index:subject:<sub> sorted set: the grant ids of a subject (likewise
//!                              `client:<client_id>`, `resource:<uri>`)
//! <p>client_index              sorted set (score 0): every client id
//! <p>indexed                   string: the listing indexes were backfilled
//! <p>refresh:<hex hash>        hash: one refresh token, expiring with it
//! <p>passthrough:<hex digest> hash: a provider token handed out, expiring with it
//! <p>assertion:<hex digest>   string: an assertion (ID-JAG) spent, expiring with it
//! <p>signing_keys              hash: kid -> one signing key (private key sealed)
//! <p>secret:<name>             string: one of the broker's own secrets, sealed
//! <p>rate:<limit>:<hex hash>    string: one rate-limited key's state (`rate_limits`)
//! <p>public_client:<hex fp>    string: the client made for public metadata (`recent_clients`)
//! <p>invalidations             pub/sub channel between replicas
//! <p>exchange:<hex key>        string: an exchange's outcome, sealed, for seconds
//! <p>exchange-lock:<hex key>   string: the owner of the replica calling the provider
//! <p>refresh-lock:<grant_id>   string: the owner of the replica refreshing the grant upstream
//! ```
//!
//! The kinds are distinct words before the first `:`, so no id — whatever `:` it
//! holds — makes one kind's key collide with another's.

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn client(&self, client_id: &str) -> String {
        format!("{}client:{client_id}", self.prefix)
    }

    pub fn clients_unused(&self) -> String {
        format!("{}clients:unused", self.prefix)
    }

    pub fn clients_used(&self) -> String {
        format!("{}clients:used", self.prefix)
    }

    pub fn grant(&self, grant_id: &str) -> String {
        format!("{}grant:{grant_id}", self.prefix)
    }

    pub fn grants(&self) -> String {
        format!("{}grants", self.prefix)
    }

    /// Every grant id, in id order (the admin listing).
    pub fn grants_listed(&self) -> String {
        format!("{}grant_index:all", self.prefix)
    }

    /// The grant ids with `value` in `field` (`subject`, `client`, `resource`).
    pub fn grant_index(&self, field: &str, value: &str) -> String {
        format!("{}grant_index:{field}:{value}", self.prefix)
    }

    /// Every client id, in id order (the admin listing).
    pub fn client_index(&self) -> String {
        format!("{}client_index", self.prefix)
    }

    /// Set once the listing indexes hold what was stored before they were kept.
    pub fn indexed(&self) -> String {
        format!("{}indexed", self.prefix)
    }

    pub fn grant_tokens(&self, grant_id: &str) -> String {
        format!("{}grant_tokens:{grant_id}", self.prefix)
    }

    pub fn refresh(&self, hash: &[u8; 32]) -> String {
        format!("{}refresh:{}", self.prefix, hex(hash))
    }

    /// A provider access token handed out in passthrough mode, named by its digest.
    pub fn passthrough(&self, digest: &[u8; 32]) -> String {
        format!("{}passthrough:{}", self.prefix, hex(digest))
    }

    /// An assertion (an ID-JAG) spent, named by the digest of its issuer and `jti`.
    pub fn assertion(&self, digest: &[u8; 32]) -> String {
        format!("{}assertion:{}", self.prefix, hex(digest))
    }

    pub fn signing_keys(&self) -> String {
        format!("{}signing_keys", self.prefix)
    }

    /// One of the broker's own secrets (the consent cookie key).
    pub fn secret(&self, name: &str) -> String {
        format!("{}secret:{name}", self.prefix)
    }

    /// A rate-limited key (a client IP) under `limit`, named by its hash.
    pub fn rate(&self, limit: &str, hash: &[u8]) -> String {
        format!("{}rate:{limit}:{}", self.prefix, hex(hash))
    }

    /// The client last made for public metadata with this fingerprint.
    pub fn public_client(&self, fingerprint: &[u8; 32]) -> String {
        format!("{}public_client:{}", self.prefix, hex(fingerprint))
    }

    /// An exchange's published outcome (`key`: `domain::exchange::cache_key`).
    pub fn exchange(&self, key: &[u8; 32]) -> String {
        format!("{}exchange:{}", self.prefix, hex(key))
    }

    pub fn exchange_lock(&self, key: &[u8; 32]) -> String {
        format!("{}exchange-lock:{}", self.prefix, hex(key))
    }

    /// The lock of the replica refreshing a grant's provider tokens.
    pub fn refresh_lock(&self, grant_id: &str) -> String {
        format!("{}refresh-lock:{grant_id}", self.prefix)
    }

    pub fn channel(&self) -> String {
        format!("{}invalidations", self.prefix)
    }
}

/// Lower-case hex: how token hashes appear in keys and fields.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
