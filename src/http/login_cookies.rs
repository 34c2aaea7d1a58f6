//! The two cookies of the login: the binding cookie that ties a login session to the
//! browser that started it (its value is the session's CSRF token, so the consent
//! form and the callback must both come from that browser), and the signed cookie
//! that remembers an approval per client, scope set and resource.
//!
//! Both are `HttpOnly`, `SameSite=Lax` (the provider's redirect back to the callback
//! is a cross-site top-level GET and must carry the binding cookie), limited to
//! `/oauth`, and `Secure` when the broker's public URL is https.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::clock::UnixSeconds;
use crate::config::{Config, StoreBackend, constant_time_eq};
use crate::domain::scope::Scopes;
use crate::store::{Store, StoreError};

const PATH: &str = "/oauth";

/// Cookie policy and the key that signs remembered approvals.
pub struct LoginCookies {
    key: hmac::Key,
    secure: bool,
    remember_for: Duration,
    session_ttl: Duration,
}

impl LoginCookies {
    /// The cookies for `config`, their key from `consent.cookie_key` when set; else,
    /// with a durable store, the key kept in `store` (created there once, sealed, so
    /// a remembered approval survives a restart and holds on every replica); else a
    /// random key of this process. Blocks on the store: call it at start-up.
    pub fn load(config: &Config, store: &Arc<dyn Store>) -> Self {
        if let Some(secret) = &config.consent.cookie_key {
            return Self::with_key(config, secret.expose().as_bytes());
        }
        let random = random_key();
        if config.store.backend == StoreBackend::Memory || config.consent.remember_for.is_zero() {
            return Self::with_key(config, &random);
        }
        let store = store.clone();
        match run_to_completion(async move { store.consent_cookie_key(random.clone()).await }) {
            Ok(kept) => Self::with_key(config, &kept),
            Err(error) => {
                // The store is down at start-up: approvals remembered until the next
                // restart hold only on this process.
                tracing::warn!(%error, "cannot read the consent cookie key from the store: this process uses its own until it restarts");
                Self::with_key(config, &random_key())
            }
        }
    }

    fn with_key(config: &Config, secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secure: config.server.public_url.url().scheme() == "https",
            remember_for: config.consent.remember_for,
            session_ttl: config.sessions.ttl,
        }
    }

    /// Whether approvals are remembered at all.
    pub fn remembers(&self) -> bool {
        !self.remember_for.is_zero()
    }

    fn cookie(&self, name: String, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build(name, value)
            .path(PATH)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .finish()
    }

    /// The binding cookie for a new login session.
    pub fn binding(&self, session: &str, csrf: &str) -> Cookie<'static> {
        self.cookie(binding_name(session), csrf.to_owned(), self.session_ttl)
    }

    /// Removes the binding cookie once the session is over.
    pub fn clear_binding(&self, session: &str) -> Cookie<'static> {
        let mut cookie = self.cookie(binding_name(session), String::new(), Duration::ZERO);
        cookie.make_removal();
        cookie
    }

    /// The CSRF token the browser holds for `session`, if it sent one.
    pub fn bound_csrf(&self, req: &HttpRequest, session: &str) -> Option<String> {
        req.cookie(&binding_name(session))
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A cookie remembering that this browser approved `client_id` for `scopes` on
    /// `resource` until `now + remember_for`.
    pub fn remember(
        &self,
        client_id: &str,
        scopes: &Scopes,
        resource: Option<&str>,
        now: UnixSeconds,
    ) -> Cookie<'static> {
        let name = approval_name(client_id, scopes, resource);
        let until = now + self.remember_for.as_secs();
        let tag = hmac::sign(&self.key, format!("{name}.{until}").as_bytes());
        let value = format!("{until}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        self.cookie(name, value, self.remember_for)
    }

    /// Whether this browser holds a valid, unexpired approval for the request.
    pub fn remembered(
        &self,
        req: &HttpRequest,
        client_id: &str,
        scopes: &Scopes,
        resource: Option<&str>,
        now: UnixSeconds,
    ) -> bool {
        if !self.remembers() {
            return false;
        }
        let name = approval_name(client_id, scopes, resource);
        let Some(cookie) = req.cookie(&name) else {
            return false;
        };
        let Some((until, tag)) = cookie.value().split_once('.') else {
            return false;
        };
        let Ok(until_secs) = until.parse::<u64>() else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        // The signature covers the expiry, so a browser cannot extend it; the
        // configured lifetime bounds it too, in case the setting was shortened.
        now < until_secs
            && until_secs <= now + self.remember_for.as_secs()
            && hmac::verify(&self.key, format!("{name}.{until}").as_bytes(), &tag).is_ok()
    }
}

/// One cookie per session, so parallel logins in one browser do not clash.
fn random_key() -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; 32]);
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Runs `work` on a runtime of its own, on a thread of its own, and waits: the
/// start-up load happens before the broker's own runtime serves anything.
fn run_to_completion<T: Send>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send,
) -> Result<T, StoreError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("cannot start a runtime: {e}")))
                    .and_then(|runtime| runtime.block_on(work))
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Unavailable("loading panicked".to_owned())))
    })
}

fn binding_name(session: &str) -> String {
    let digest = Sha256::digest(session.as_bytes());
    format!("tb_login_{}", URL_SAFE_NO_PAD.encode(&digest[..12]))
}

fn approval_name(client_id: &str, scopes: &Scopes, resource: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for part in [client_id, &scopes.to_string(), resource.unwrap_or("")] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("tb_ok_{}", URL_SAFE_NO_PAD.encode(&hasher.finalize()[..12]))
}

/// Whether the cookie's token equals the form's, in constant time.
pub fn same_token(cookie: Option<&str>, form: &str) -> bool {
    cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), form.as_bytes()))
}
