//! Login sessions and proxy codes on Redis, shared by every replica: a login
//! authorized on one replica continues on another, and a code redeemed on one is
//! spent for all.
//!
//! ```text
//! <p>login:<hex hash>   hash: one session (its id stored only as the hash)
//! <p>logins             sorted set: session hashes by expiry
//! <p>code:<hex hash>    hash: one proxy code (the code stored only as the hash)
//! <p>codes              sorted set: code hashes by expiry
//! ```
//!
//! Sessions and codes carry native TTLs (their remaining life on the broker's clock
//! when written); every step also compares the stored expiry with the `now` it is
//! given, so the broker's clock decides. Approving, ending (deny, take) and redeeming
//! are each one script (`lua/`), which checks the CSRF token and the state and
//! writes in one step. The sorted sets bound the numbers (`ZCARD` inside the storing
//! script) and drive the sweep. Nothing here is sealed: the session's CSRF token and
//! PKCE verifier are useless without the session id, which is stored only hashed,
//! and a code's grant holds no secret.
//!
//! `sessions.rs` holds the session steps, `codes.rs` the code steps; here are the
//! scripts, the keys and what both share.

pub(super) mod codes;
mod sessions;

use std::sync::LazyLock;

use ::redis::{Script, Value};
use async_trait::async_trait;

use super::codec::{Fields, Record, corrupt, redis_error, ttl, word};
use super::{Inner, RedisStore};
use crate::clock::UnixSeconds;
use crate::domain::authorize::Authorization;
use crate::store::login_state::{
    Admission, CodeGrant, LoginSession, LoginState, LoginSweep, Redeemer, Redemption, SessionStep,
    StoredCode, UpstreamLeg,
};
use crate::store::{Listing, Page, SessionFilter, SessionRow, StoreError};

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../lua/common.lua"),
            include_str!("../lua/login_common.lua"),
            include_str!(concat!("../lua/", $file))
        ))
    };
}

pub(super) struct Scripts {
    pub put_session: Script,
    pub approve_session: Script,
    pub end_session: Script,
    pub put_code: Script,
    pub redeem_code: Script,
    pub unredeem_code: Script,
    pub sweep: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    put_session: script!("put_session.lua"),
    approve_session: script!("approve_session.lua"),
    end_session: script!("end_session.lua"),
    put_code: script!("put_code.lua"),
    redeem_code: script!("redeem_code.lua"),
    unredeem_code: script!("unredeem_code.lua"),
    sweep: script!("sweep_login_state.lua"),
});

/// The keys, as `lua/login_common.lua` builds them.
pub(super) fn session_key(s: &Inner, hex: &str) -> String {
    format!("{}login:{hex}", s.keys.prefix())
}

pub(super) fn sessions_index(s: &Inner) -> String {
    format!("{}logins", s.keys.prefix())
}

pub(super) fn code_key(s: &Inner, hex: &str) -> String {
    format!("{}code:{hex}", s.keys.prefix())
}

pub(super) fn codes_index(s: &Inner) -> String {
    format!("{}codes", s.keys.prefix())
}

/// A record for a storing script (`admit` in `lua/login_common.lua`).
pub(super) struct Entry<'a> {
    pub script: &'a Script,
    pub key: String,
    pub index: String,
    pub hex: String,
    pub record: Record,
    pub expires_at: UnixSeconds,
}

pub(super) async fn admit(
    s: &Inner,
    entry: Entry<'_>,
    now: UnixSeconds,
    max: usize,
) -> Result<Admission, StoreError> {
    let mut call = entry.script.prepare_invoke();
    call.key(entry.key)
        .key(entry.index)
        .arg(s.keys.prefix())
        .arg(entry.hex)
        .arg(now)
        .arg(max)
        .arg(ttl(now, entry.expires_at))
        .arg(entry.expires_at);
    for (name, value) in entry.record.pairs() {
        call.arg(*name).arg(value.as_slice());
    }
    let stored: i64 = call
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(if stored == 1 {
        Admission::Stored
    } else {
        Admission::Full
    })
}

/// A record's fields; `None` when it does not exist.
pub(super) async fn hash(s: &Inner, record: String) -> Result<Option<Fields>, StoreError> {
    let value: Value = ::redis::cmd("HGETALL")
        .arg(record)
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let fields = Fields::from_value(value)?;
    Ok((!fields.is_empty()).then_some(fields))
}

/// A script's reply: its first word and the rest.
pub(super) fn reply(
    value: Value,
    what: &str,
) -> Result<(String, std::vec::IntoIter<Value>), StoreError> {
    let Value::Array(items) = value else {
        return Err(corrupt(format!("{what} replied {value:?}")));
    };
    let mut items = items.into_iter();
    let first = items
        .next()
        .ok_or_else(|| corrupt(format!("{what} replied nothing")))?;
    Ok((word(&first)?.to_owned(), items))
}

pub(super) fn next(items: &mut std::vec::IntoIter<Value>, what: &str) -> Result<Value, StoreError> {
    items
        .next()
        .ok_or_else(|| corrupt(format!("{what} replied too little")))
}

async fn sweep(s: &Inner, now: UnixSeconds) -> Result<LoginSweep, StoreError> {
    let (sessions, codes): (u64, u64) = SCRIPTS
        .sweep
        .key(sessions_index(s))
        .key(codes_index(s))
        .arg(s.keys.prefix())
        .arg(now)
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(LoginSweep { sessions, codes })
}

#[async_trait]
impl LoginState for RedisStore {
    async fn put_session(
        &self,
        id: &str,
        session: LoginSession,
        now: UnixSeconds,
        max: usize,
    ) -> Result<Admission, StoreError> {
        let id = id.to_owned();
        self.call(move |s| async move { sessions::put_session(&s, &id, &session, now, max).await })
            .await
    }

    async fn get_session(
        &self,
        id: &str,
        now: UnixSeconds,
    ) -> Result<Option<LoginSession>, StoreError> {
        let id = id.to_owned();
        self.call(move |s| async move { sessions::get_session(&s, &id, now).await })
            .await
    }

    async fn approve_session(
        &self,
        id: &str,
        csrf: &str,
        leg: UpstreamLeg,
        now: UnixSeconds,
    ) -> Result<SessionStep<UpstreamLeg>, StoreError> {
        let (id, csrf) = (id.to_owned(), csrf.to_owned());
        self.call(
            move |s| async move { sessions::approve_session(&s, &id, &csrf, &leg, now).await },
        )
        .await
    }

    async fn deny_session(
        &self,
        id: &str,
        csrf: &str,
        now: UnixSeconds,
    ) -> Result<SessionStep<Authorization>, StoreError> {
        let (id, csrf) = (id.to_owned(), csrf.to_owned());
        let step = self
            .call(move |s| async move { sessions::end_session(&s, &id, &csrf, now).await })
            .await?;
        Ok(match step {
            SessionStep::Done(session) => SessionStep::Done(session.request),
            SessionStep::Unknown => SessionStep::Unknown,
            SessionStep::Csrf => SessionStep::Csrf,
            SessionStep::NotApproved => SessionStep::NotApproved,
        })
    }

    async fn take_session(
        &self,
        id: &str,
        csrf: &str,
        now: UnixSeconds,
    ) -> Result<SessionStep<(Authorization, UpstreamLeg)>, StoreError> {
        let (id, csrf) = (id.to_owned(), csrf.to_owned());
        let step = self
            .call(move |s| async move { sessions::end_session(&s, &id, &csrf, now).await })
            .await?;
        match step {
            SessionStep::Done(LoginSession {
                request,
                leg: Some(leg),
                ..
            }) => Ok(SessionStep::Done((request, leg))),
            SessionStep::Done(_) => Ok(SessionStep::NotApproved),
            SessionStep::Unknown => Ok(SessionStep::Unknown),
            SessionStep::Csrf => Ok(SessionStep::Csrf),
            SessionStep::NotApproved => Ok(SessionStep::NotApproved),
        }
    }

    async fn put_code(
        &self,
        code: &str,
        grant: CodeGrant,
        expires_at: UnixSeconds,
        now: UnixSeconds,
        max: usize,
    ) -> Result<Admission, StoreError> {
        let code = code.to_owned();
        self.call(
            move |s| async move { codes::put_code(&s, &code, &grant, expires_at, now, max).await },
        )
        .await
    }

    async fn find_code(
        &self,
        code: &str,
        now: UnixSeconds,
    ) -> Result<Option<StoredCode>, StoreError> {
        let code = code.to_owned();
        self.call(move |s| async move { codes::find_code(&s, &code, now).await })
            .await
    }

    async fn redeem_code(
        &self,
        code: &str,
        by: Redeemer,
        now: UnixSeconds,
    ) -> Result<Redemption, StoreError> {
        let code = code.to_owned();
        self.call(move |s| async move { codes::redeem_code(&s, &code, by, now).await })
            .await
    }

    async fn unredeem_code(&self, code: &str, by: Redeemer) -> Result<bool, StoreError> {
        let code = code.to_owned();
        self.call(move |s| async move { codes::unredeem_code(&s, &code, by).await })
            .await
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        page: &Page,
        now: UnixSeconds,
    ) -> Result<Listing<SessionRow>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.call(move |s| async move { sessions::list_sessions(&s, &filter, &page, now).await })
            .await
    }

    async fn sweep_login_state(&self, now: UnixSeconds) -> Result<LoginSweep, StoreError> {
        self.call(move |s| async move { sweep(&s, now).await })
            .await
    }
}
