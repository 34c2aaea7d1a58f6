//! The login's cookies: the binding cookie that ties a login session to the browser
//! that started it (its value is the session's CSRF token, so the consent form and
//! the callback must both come from that browser), this browser's random id, and the
//! signed cookies that remember an approval per client, scope set and resource — for
//! this browser id and the user who logged in (what their values mean is
//! `flows::login::Approvals`'s, which shares this key).
//!
//! All are `HttpOnly` and `SameSite=Lax` (the provider's redirect back to the callback
//! is a cross-site top-level GET and must carry them). On an https public URL their
//! names carry the `__Host-` prefix, so the browser keeps them only when set by this
//! host itself, with `Secure`, `Path=/` and no `Domain`: a sibling subdomain cannot
//! plant or overwrite them. On plain http (loopback development) they have plain
//! names, no `Secure`, and the path of the login endpoints.

mod key;

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::flows::login::Approvals;
use crate::store::Store;

/// The browser id cookie's name without prefix.
const BROWSER: &str = "tb_browser";
/// A browser id's length: 32 random bytes, base64url.
const BROWSER_ID_LEN: usize = 43;

/// Cookie policy and the key that signs remembered approvals.
pub struct LoginCookies {
    key: hmac::Key,
    /// The public URL is https: `__Host-` names and `Secure`.
    secure: bool,
    /// `/` with `__Host-`; else the login endpoints' path below the public URL.
    path: String,
    remember_for: Duration,
    session_ttl: Duration,
}

/// This browser's id, and the cookie that (re)sets it.
pub struct Browser {
    pub id: String,
    pub cookie: Cookie<'static>,
}

impl LoginCookies {
    /// The cookies for `config`; see [`key::load`] for where the key comes from.
    /// Blocks on the store: call it at start-up.
    pub fn load(config: &Config, store: &Arc<dyn Store>) -> Self {
        Self::with_key(config, &key::load(config, store))
    }

    fn with_key(config: &Config, secret: &[u8]) -> Self {
        let secure = config.server.public_url.url().scheme() == "https";
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secure,
            path: if secure {
                "/".to_owned()
            } else {
                format!("{}/oauth", config.server.public_url.path())
            },
            remember_for: config.consent.remember_for,
            session_ttl: config.sessions.ttl,
        }
    }

    /// A key for another purpose, derived from this one (HMAC over a label no cookie
    /// tag signs: theirs start `subject\0` or `approval\0`), so that purpose is
    /// shared by replicas as approvals are.
    pub fn derived_key(&self, label: &str) -> hmac::Key {
        let derived = hmac::sign(&self.key, format!("derive\0{label}").as_bytes());
        hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
    }

    /// What remembered approvals mean, signed with this key.
    pub fn approvals(&self) -> Approvals {
        Approvals::new(self.key.clone(), self.remember_for, self.secure)
    }

    /// The cookie remembering an approval (name and value from [`Approvals::sign`]).
    pub fn approval(&self, name: String, value: String) -> Cookie<'static> {
        self.cookie(name, value, self.remember_for)
    }

    /// `base` with the `__Host-` prefix when the cookies are `Secure`.
    fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    fn cookie(&self, name: String, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build(name, value)
            .path(self.path.clone())
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
        self.cookie(
            self.binding_name(session),
            csrf.to_owned(),
            self.session_ttl,
        )
    }

    /// Removes the binding cookie once the session is over.
    pub fn clear_binding(&self, session: &str) -> Cookie<'static> {
        let mut cookie = self.cookie(self.binding_name(session), String::new(), Duration::ZERO);
        cookie.make_removal();
        cookie
    }

    /// The CSRF token the browser holds for `session`, if it sent one.
    pub fn bound_csrf(&self, req: &HttpRequest, session: &str) -> Option<String> {
        req.cookie(&self.binding_name(session))
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// One cookie per session, so parallel logins in one browser do not clash.
    fn binding_name(&self, session: &str) -> String {
        let digest = Sha256::digest(session.as_bytes());
        self.name(&format!(
            "tb_login_{}",
            URL_SAFE_NO_PAD.encode(&digest[..12])
        ))
    }

    /// The id this browser sent, if well-formed.
    fn browser_id(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(&self.name(BROWSER))
            .map(|c| c.value().to_owned())
            .filter(|v| {
                v.len() == BROWSER_ID_LEN && URL_SAFE_NO_PAD.decode(v).is_ok_and(|b| b.len() == 32)
            })
    }

    /// This browser's id — a new random one when it sent none — and the cookie that
    /// keeps it for as long as an approval remembered now could be used.
    pub fn browser(&self, req: &HttpRequest) -> Browser {
        let id = self
            .browser_id(req)
            .unwrap_or_else(|| URL_SAFE_NO_PAD.encode(&key::random_key()[..]));
        let cookie = self.cookie(
            self.name(BROWSER),
            id.clone(),
            self.remember_for + self.session_ttl,
        );
        Browser { id, cookie }
    }
}

/// The cookies the browser sent, by name (for the login flow to find its approvals).
pub fn sent(req: &HttpRequest) -> Vec<(String, String)> {
    req.cookies()
        .map(|jar| {
            jar.iter()
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}
