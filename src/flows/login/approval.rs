//! Remembered approvals: what their cookies mean. One cookie per client, scope set
//! and resource; its value is `until.subject.tag`: the expiry, a keyed digest of the
//! user's subject at the provider, and an HMAC over the cookie's name, the expiry,
//! this browser's id and the subject digest. So a browser cannot extend it, it is
//! worthless in another browser (which has another id), and it speaks for one user:
//! the callback, which learns the user only after the provider's login, completes a
//! login that skipped the consent page only for the user the approval was given by.
//! Setting and reading cookies is `http::login_cookies`'s; the key is shared with it.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::clock::UnixSeconds;
use crate::config::constant_time_eq;
use crate::domain::scope::Scopes;

/// What an approval is for.
pub struct Approved<'a> {
    pub client_id: &'a str,
    pub scopes: &'a Scopes,
    pub resource: Option<&'a str>,
}

/// The rule behind remembered approvals: the signing key, how long an approval
/// holds, and whether cookie names carry the `__Host-` prefix.
pub struct Approvals {
    key: hmac::Key,
    remember_for: Duration,
    secure: bool,
}

impl Approvals {
    pub fn new(key: hmac::Key, remember_for: Duration, secure: bool) -> Self {
        Self {
            key,
            remember_for,
            secure,
        }
    }

    /// Whether approvals are remembered at all.
    pub fn remembers(&self) -> bool {
        !self.remember_for.is_zero()
    }

    /// A keyed digest of the provider's subject: the cookie names the user without
    /// showing who it is (subjects are often e-mail addresses).
    pub fn subject_digest(&self, subject: &str) -> String {
        let tag = hmac::sign(&self.key, format!("subject\0{subject}").as_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
    }

    /// Whether `digest` (from a remembered approval) is `subject`'s, in constant time.
    pub fn is_subject(&self, digest: &str, subject: &str) -> bool {
        constant_time_eq(digest.as_bytes(), self.subject_digest(subject).as_bytes())
    }

    /// What an approval's tag signs (the `\0`s keep the parts apart).
    fn message(name: &str, until: &str, browser: &str, subject: &str) -> String {
        format!("approval\0{name}\0{until}\0{browser}\0{subject}")
    }

    /// The cookie (name, value) remembering that `subject`, in the browser with id
    /// `browser`, approved `what` until `now + remember_for`.
    pub fn sign(
        &self,
        browser: &str,
        subject: &str,
        what: &Approved<'_>,
        now: UnixSeconds,
    ) -> (String, String) {
        let name = self.name(what);
        let until = (now + self.remember_for.as_secs()).to_string();
        let subject = self.subject_digest(subject);
        let tag = hmac::sign(
            &self.key,
            Self::message(&name, &until, browser, &subject).as_bytes(),
        );
        let value = format!("{until}.{subject}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        (name, value)
    }

    /// The subject digest of a valid, unexpired approval of `what` among `sent` (the
    /// cookies the browser sent, by name) that the browser `browser` holds for
    /// itself; `None` when it holds none, or one given in another browser.
    pub fn remembered(
        &self,
        browser: &str,
        sent: &[(String, String)],
        what: &Approved<'_>,
        now: UnixSeconds,
    ) -> Option<String> {
        if !self.remembers() {
            return None;
        }
        let name = self.name(what);
        let (_, value) = sent.iter().find(|(n, _)| *n == name)?;
        let mut parts = value.splitn(3, '.');
        let (until, subject, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let until_secs = until.parse::<u64>().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // The signature covers the expiry, so a browser cannot extend it; the
        // configured lifetime bounds it too, in case the setting was shortened.
        let valid = now < until_secs
            && until_secs <= now + self.remember_for.as_secs()
            && hmac::verify(
                &self.key,
                Self::message(&name, until, browser, subject).as_bytes(),
                &tag,
            )
            .is_ok();
        valid.then(|| subject.to_owned())
    }

    /// The approval cookie's name: a digest of what it approves.
    fn name(&self, what: &Approved<'_>) -> String {
        let mut hasher = Sha256::new();
        let scopes = what.scopes.to_string();
        for part in [what.client_id, &scopes, what.resource.unwrap_or("")] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let base = format!("tb_ok_{}", URL_SAFE_NO_PAD.encode(&hasher.finalize()[..12]));
        // As every login cookie on https (see `http::login_cookies`).
        if self.secure {
            format!("__Host-{base}")
        } else {
            base
        }
    }
}

/// Whether the cookie's token equals the form's, in constant time.
pub fn same_token(cookie: Option<&str>, form: &str) -> bool {
    cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), form.as_bytes()))
}
