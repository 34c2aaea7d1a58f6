//! The two cookies of the login: the binding cookie that ties a login session to the
//! browser that started it (its value is the session's CSRF token, so the consent
//! form and the callback must both come from that browser), and the signed cookie
//! that remembers an approval per client, scope set and resource.
//!
//! Both are `HttpOnly`, `SameSite=Lax` (the provider's redirect back to the callback
//! is a cross-site top-level GET and must carry the binding cookie), limited to
//! `/oauth`, and `Secure` when the broker's public URL is https.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::UnixSeconds;
use crate::config::{Config, constant_time_eq};
use crate::domain::scope::Scopes;

const PATH: &str = "/oauth";

/// Cookie policy and the key that signs remembered approvals.
pub struct LoginCookies {
    key: hmac::Key,
    secure: bool,
    remember_for: Duration,
    session_ttl: Duration,
}

impl LoginCookies {
    pub fn from_config(config: &Config) -> Self {
        let secret: Vec<u8> = match &config.consent.cookie_key {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                if config.consent.remember_for > Duration::ZERO
                    && matches!(
                        config.store.backend,
                        crate::config::StoreBackend::Redis { .. }
                    )
                {
                    // Replicas each pick their own key: an approval remembered by one
                    // is not honoured by the others (README: running several replicas).
                    tracing::warn!(
                        "consent.cookie_key is not set: with several replicas, a remembered approval is honoured only by the replica that remembered it"
                    );
                }
                let mut bytes = vec![0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                bytes
            }
        };
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
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
