//! Login state: authorization sessions between `/oauth/authorize` and the callback,
//! and one-time proxy codes between the callback and `/oauth/token`. Behind a trait
//! so that replicas on one Redis share them — authorize on one replica, consent and
//! callback on another, token on a third — while a single process keeps them in
//! memory (`memory` and `sqlite` backends both use the memory implementation: the
//! state lives minutes and a restart only costs a login in progress).
//!
//! Session ids and codes are 256-bit random secrets; implementations store them only
//! as their SHA-256 ([`key`]). Every step that reads and then changes a record —
//! approving, denying and taking a session, redeeming a code — is atomic, so two
//! replicas never both take one session or both redeem one code. Time is always
//! passed in (the broker's clock), never read here.

use async_trait::async_trait;

use super::StoreError;
use super::listing::{Listing, Page, SessionFilter, SessionRow};
use crate::clock::UnixSeconds;
use crate::domain::authorize::Authorization;
use crate::domain::scope::Scopes;
use crate::redact::Redacted;

/// The broker's own side of the upstream login: PKCE verifier and nonce towards the
/// provider, the session id used as upstream `state`, and what the callback does
/// about remembering the approval. `Debug` hides the verifier and the nonce.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamLeg {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    pub remember: Remember,
}

/// How the approval that started an upstream leg relates to remembered approvals.
/// The user is known only at the callback, so a remembered approval is settled there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Remember {
    /// Approved on the consent page, nothing to remember.
    #[default]
    No,
    /// Approved on the consent page with "remember": the callback remembers the
    /// approval for this browser and the user who logs in.
    Asked,
    /// The consent page was skipped on the strength of an approval remembered for the
    /// user with this keyed subject digest: the callback completes the login only for
    /// that user.
    For(String),
}

impl Remember {
    /// As stored (Redis): empty, `asked` or `for:<digest>`.
    pub fn encode(&self) -> String {
        match self {
            Self::No => String::new(),
            Self::Asked => "asked".to_owned(),
            Self::For(digest) => format!("for:{digest}"),
        }
    }

    /// The stored form read back; anything unknown is `No` (nothing remembered).
    pub fn decode(text: &str) -> Self {
        match text.split_once(':') {
            _ if text == "asked" => Self::Asked,
            Some(("for", digest)) if !digest.is_empty() => Self::For(digest.to_owned()),
            _ => Self::No,
        }
    }
}

impl std::fmt::Debug for UpstreamLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLeg")
            .field("state", &self.state)
            .field("verifier", &Redacted)
            .field("nonce", &Redacted)
            .field("remember", &self.remember)
            .finish()
    }
}

/// What a proxy code stands for. Holds no secret: the grant's tokens stay in the
/// grant, the code itself is stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Scopes,
    pub resource: Option<String>,
    pub subject: String,
}

/// A login session as stored. `Debug` hides the CSRF token (and the leg's secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// The validated authorization request.
    pub request: Authorization,
    /// The browser binding: the login cookie and the consent form carry it.
    pub csrf: String,
    pub expires_at: UnixSeconds,
    /// Set once, when the user approves.
    pub leg: Option<UpstreamLeg>,
}

impl std::fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSession")
            .field("request", &self.request)
            .field("csrf", &Redacted)
            .field("expires_at", &self.expires_at)
            .field("leg", &self.leg)
            .finish()
    }
}

/// A proxy code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub grant: CodeGrant,
    pub expires_at: UnixSeconds,
    /// Redeemed codes are kept (as tombstones) until they expire, so a second
    /// presentation is recognised as a replay.
    pub redeemed: bool,
}

/// Whether a new session or code was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Stored,
    /// The bound is reached (after dropping what had expired); nothing was stored
    /// and nothing live was evicted.
    Full,
}

/// The outcome of a step on a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStep<T> {
    Done(T),
    /// No such session, or it has expired.
    Unknown,
    /// The presented CSRF token is not the session's; nothing changed.
    Csrf,
    /// Taking a session that was never approved: it is ended all the same (a
    /// callback before consent is out of order, and the login must start again).
    NotApproved,
}

/// Who redeemed a code: one token request's random mark, kept on the spent code, so
/// that only that request can put its redemption back ([`LoginState::unredeem_code`])
/// when it could not hand out the tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redeemer([u8; 16]);

impl Redeemer {
    /// A fresh random mark.
    pub fn random() -> Self {
        use rand::Rng;
        let mut mark = [0u8; 16];
        rand::rng().fill_bytes(&mut mark);
        Self(mark)
    }

    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Debug for Redeemer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redeemer(..)")
    }
}

/// The outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The first redemption: what the code stands for. It is now spent.
    Redeemed(CodeGrant),
    /// Redeemed before: the caller must revoke what the grant issued (RFC 6749 §4.1.2).
    Replayed { grant_id: String },
    /// Unknown or expired.
    Invalid,
}

/// What a sweep dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginSweep {
    pub sessions: u64,
    pub codes: u64,
}

impl LoginSession {
    /// The session as the operator's listing shows it, stored under `hash`.
    pub fn row(&self, hash: &[u8; 32]) -> SessionRow {
        SessionRow {
            id: hash.iter().map(|b| format!("{b:02x}")).collect(),
            client_id: self.request.client_id.clone(),
            redirect_uri: self.request.redirect_uri.clone(),
            scopes: self.request.scopes.clone(),
            resource: self.request.resource.clone(),
            expires_at: self.expires_at,
            approved: self.leg.is_some(),
        }
    }
}

/// How a session id or code is stored: its SHA-256.
pub fn key(secret: &str) -> [u8; 32] {
    crate::domain::digest::sha256(secret.as_bytes())
}

/// Sessions and proxy codes. A record counts as gone once `now` reaches its
/// `expires_at`, whether or not it was swept.
#[async_trait]
pub trait LoginState: Send + Sync + 'static {
    /// Stores a new session under `id` unless `max` sessions are held: then expired
    /// ones are dropped first, and when that frees no room the answer is `Full`.
    async fn put_session(
        &self,
        id: &str,
        session: LoginSession,
        now: UnixSeconds,
        max: usize,
    ) -> Result<Admission, StoreError>;

    /// The live session `id` (no state change).
    async fn get_session(
        &self,
        id: &str,
        now: UnixSeconds,
    ) -> Result<Option<LoginSession>, StoreError>;

    /// Approves the live session `id` when `csrf` matches (compared in constant
    /// time): stores `leg` unless one is stored already, and answers the stored
    /// one — so a double click gets the same leg.
    async fn approve_session(
        &self,
        id: &str,
        csrf: &str,
        leg: UpstreamLeg,
        now: UnixSeconds,
    ) -> Result<SessionStep<UpstreamLeg>, StoreError>;

    /// Deletes the live session `id` when `csrf` matches; answers its request.
    async fn deny_session(
        &self,
        id: &str,
        csrf: &str,
        now: UnixSeconds,
    ) -> Result<SessionStep<Authorization>, StoreError>;

    /// Takes the live session `id` when `csrf` matches: deletes it and answers its
    /// request and leg — or `NotApproved`, when it has none. Exactly one of any
    /// number of concurrent takes gets it.
    async fn take_session(
        &self,
        id: &str,
        csrf: &str,
        now: UnixSeconds,
    ) -> Result<SessionStep<(Authorization, UpstreamLeg)>, StoreError>;

    /// Stores a new code under `code` (as `put_session` for the bound).
    async fn put_code(
        &self,
        code: &str,
        grant: CodeGrant,
        expires_at: UnixSeconds,
        now: UnixSeconds,
        max: usize,
    ) -> Result<Admission, StoreError>;

    /// The unexpired code `code`, redeemed or not (no state change): for checking its
    /// bindings before spending it.
    async fn find_code(
        &self,
        code: &str,
        now: UnixSeconds,
    ) -> Result<Option<StoredCode>, StoreError>;

    /// Redeems `code` for `by`: the first time answers what it stands for and marks
    /// it redeemed, atomically; every later time answers `Replayed`. When the answer
    /// is lost (Redis ran the redemption, then never replied), the redemption is put
    /// back as [`unredeem_code`](Self::unredeem_code) does, as soon as the store
    /// answers again: the caller answered 503 and issued nothing.
    async fn redeem_code(
        &self,
        code: &str,
        by: Redeemer,
        now: UnixSeconds,
    ) -> Result<Redemption, StoreError>;

    /// Puts back `by`'s redemption of `code`, whose tokens were never handed out: the
    /// code is unspent again, so the client presenting it once more gets its tokens
    /// rather than being taken for a replay that revokes its grant. Nothing happens
    /// unless `by` is what spent the code (answers whether it did). A store that
    /// cannot answer now (`Unavailable`) puts it back when it answers again.
    async fn unredeem_code(&self, code: &str, by: Redeemer) -> Result<bool, StoreError>;

    /// Sessions live at `now` matching `filter`, in stored-key order, a page after the
    /// cursor (`listing`): what the operator sees of logins in progress.
    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        page: &Page,
        now: UnixSeconds,
    ) -> Result<Listing<SessionRow>, StoreError>;

    /// Drops sessions and codes expired at `now`; counts them.
    async fn sweep_login_state(&self, now: UnixSeconds) -> Result<LoginSweep, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::Remember;

    #[test]
    fn remember_decisions_survive_their_stored_form() {
        for remember in [
            Remember::No,
            Remember::Asked,
            Remember::For("c3ViamVjdA".into()),
        ] {
            assert_eq!(Remember::decode(&remember.encode()), remember);
        }
        assert_eq!(Remember::decode("for:"), Remember::No);
        assert_eq!(Remember::decode("something else"), Remember::No);
    }
}
