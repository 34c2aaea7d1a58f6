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

use std::sync::LazyLock;

use ::redis::{Script, Value};
use async_trait::async_trait;

use super::codec::{Fields, Record, corrupt, redis_error, ttl, word};
use super::keys::hex;
use super::{Inner, RedisStore};
use crate::clock::UnixSeconds;
use crate::domain::authorize::Authorization;
use crate::store::StoreError;
use crate::store::login_state::{
    Admission, CodeGrant, LoginSession, LoginState, LoginSweep, Redemption, Remember, SessionStep,
    StoredCode, UpstreamLeg, key,
};

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            include_str!("lua/login_common.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

struct Scripts {
    put_session: Script,
    approve_session: Script,
    end_session: Script,
    put_code: Script,
    redeem_code: Script,
    sweep: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    put_session: script!("put_session.lua"),
    approve_session: script!("approve_session.lua"),
    end_session: script!("end_session.lua"),
    put_code: script!("put_code.lua"),
    redeem_code: script!("redeem_code.lua"),
    sweep: script!("sweep_login_state.lua"),
});

/// The keys, as `lua/login_common.lua` builds them.
fn session_key(s: &Inner, hex: &str) -> String {
    format!("{}login:{hex}", s.keys.prefix())
}

fn sessions_index(s: &Inner) -> String {
    format!("{}logins", s.keys.prefix())
}

fn code_key(s: &Inner, hex: &str) -> String {
    format!("{}code:{hex}", s.keys.prefix())
}

fn codes_index(s: &Inner) -> String {
    format!("{}codes", s.keys.prefix())
}

/// A record for a storing script (`admit` in `lua/login_common.lua`).
struct Entry<'a> {
    script: &'a Script,
    key: String,
    index: String,
    hex: String,
    record: Record,
    expires_at: UnixSeconds,
}

async fn admit(
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

async fn put_session(
    s: &Inner,
    id: &str,
    session: &LoginSession,
    now: UnixSeconds,
    max: usize,
) -> Result<Admission, StoreError> {
    let request = &session.request;
    let record = Record::default()
        .text("client_id", &request.client_id)
        .text("redirect_uri", &request.redirect_uri)
        .text("code_challenge", &request.code_challenge)
        .opt_text("state", request.state.as_deref())
        .text("scopes", &request.scopes.to_string())
        .opt_text("resource", request.resource.as_deref())
        .text("csrf", &session.csrf)
        .unix("expires_at", session.expires_at)
        .opt_text(
            "verifier",
            session.leg.as_ref().map(|l| l.verifier.as_str()),
        )
        .opt_text("nonce", session.leg.as_ref().map(|l| l.nonce.as_str()))
        .opt_text(
            "remember",
            session.leg.as_ref().map(|l| l.remember.encode()).as_deref(),
        );
    let hex = hex(&key(id));
    let entry = Entry {
        script: &SCRIPTS.put_session,
        key: session_key(s, &hex),
        index: sessions_index(s),
        hex,
        record,
        expires_at: session.expires_at,
    };
    admit(s, entry, now, max).await
}

fn decode_session(id: &str, fields: &Fields) -> Result<LoginSession, StoreError> {
    let leg = match (fields.opt_text("verifier")?, fields.opt_text("nonce")?) {
        (Some(verifier), Some(nonce)) => Some(UpstreamLeg {
            // The id is the upstream state; it is not stored, only its hash.
            state: id.to_owned(),
            verifier,
            nonce,
            remember: Remember::decode(&fields.opt_text("remember")?.unwrap_or_default()),
        }),
        _ => None,
    };
    Ok(LoginSession {
        request: Authorization {
            client_id: fields.text("client_id")?,
            redirect_uri: fields.text("redirect_uri")?,
            code_challenge: fields.text("code_challenge")?,
            state: fields.opt_text("state")?,
            scopes: fields.scopes("scopes")?,
            resource: fields.opt_text("resource")?,
        },
        csrf: fields.text("csrf")?,
        expires_at: fields.unix("expires_at")?,
        leg,
    })
}

/// A record's fields; `None` when it does not exist.
async fn hash(s: &Inner, record: String) -> Result<Option<Fields>, StoreError> {
    let value: Value = ::redis::cmd("HGETALL")
        .arg(record)
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let fields = Fields::from_value(value)?;
    Ok((!fields.is_empty()).then_some(fields))
}

async fn get_session(
    s: &Inner,
    id: &str,
    now: UnixSeconds,
) -> Result<Option<LoginSession>, StoreError> {
    let Some(fields) = hash(s, session_key(s, &hex(&key(id)))).await? else {
        return Ok(None);
    };
    let session = decode_session(id, &fields)?;
    Ok((now < session.expires_at).then_some(session))
}

/// A script's reply: its first word and the rest.
fn reply(value: Value, what: &str) -> Result<(String, std::vec::IntoIter<Value>), StoreError> {
    let Value::Array(items) = value else {
        return Err(corrupt(format!("{what} replied {value:?}")));
    };
    let mut items = items.into_iter();
    let first = items
        .next()
        .ok_or_else(|| corrupt(format!("{what} replied nothing")))?;
    Ok((word(&first)?.to_owned(), items))
}

fn next(items: &mut std::vec::IntoIter<Value>, what: &str) -> Result<Value, StoreError> {
    items
        .next()
        .ok_or_else(|| corrupt(format!("{what} replied too little")))
}

/// A refusal word shared by the session scripts.
fn refusal<T>(word: &str, what: &str) -> Result<SessionStep<T>, StoreError> {
    match word {
        "unknown" => Ok(SessionStep::Unknown),
        "csrf" => Ok(SessionStep::Csrf),
        "not_approved" => Ok(SessionStep::NotApproved),
        other => Err(corrupt(format!("{what} replied `{other}`"))),
    }
}

async fn approve_session(
    s: &Inner,
    id: &str,
    csrf: &str,
    leg: &UpstreamLeg,
    now: UnixSeconds,
) -> Result<SessionStep<UpstreamLeg>, StoreError> {
    let value: Value = SCRIPTS
        .approve_session
        .key(session_key(s, &hex(&key(id))))
        .arg(s.keys.prefix())
        .arg(now)
        .arg(csrf)
        .arg(&leg.verifier)
        .arg(&leg.nonce)
        .arg(leg.remember.encode())
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let what = "approving a session";
    let (decision, mut items) = reply(value, what)?;
    if decision != "approved" {
        return refusal(&decision, what);
    }
    let verifier = word(&next(&mut items, what)?)?.to_owned();
    let nonce = word(&next(&mut items, what)?)?.to_owned();
    let remember = Remember::decode(word(&next(&mut items, what)?)?);
    Ok(SessionStep::Done(UpstreamLeg {
        state: id.to_owned(),
        verifier,
        nonce,
        remember,
    }))
}

/// Ends the session (deny or take): one script either way.
async fn end_session(
    s: &Inner,
    id: &str,
    csrf: &str,
    now: UnixSeconds,
) -> Result<SessionStep<LoginSession>, StoreError> {
    let hex = hex(&key(id));
    let value: Value = SCRIPTS
        .end_session
        .key(session_key(s, &hex))
        .key(sessions_index(s))
        .arg(s.keys.prefix())
        .arg(now)
        .arg(csrf)
        .arg(&hex)
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let what = "ending a session";
    let (decision, mut items) = reply(value, what)?;
    if decision != "ended" {
        return refusal(&decision, what);
    }
    let fields = Fields::from_value(next(&mut items, what)?)?;
    decode_session(id, &fields).map(SessionStep::Done)
}

async fn put_code(
    s: &Inner,
    code: &str,
    grant: &CodeGrant,
    expires_at: UnixSeconds,
    now: UnixSeconds,
    max: usize,
) -> Result<Admission, StoreError> {
    let record = Record::default()
        .text("grant_id", &grant.grant_id)
        .text("client_id", &grant.client_id)
        .text("redirect_uri", &grant.redirect_uri)
        .text("code_challenge", &grant.code_challenge)
        .text("scopes", &grant.scopes.to_string())
        .opt_text("resource", grant.resource.as_deref())
        .text("subject", &grant.subject)
        .unix("expires_at", expires_at);
    let hex = hex(&key(code));
    let entry = Entry {
        script: &SCRIPTS.put_code,
        key: code_key(s, &hex),
        index: codes_index(s),
        hex,
        record,
        expires_at,
    };
    admit(s, entry, now, max).await
}

fn decode_code(fields: &Fields) -> Result<StoredCode, StoreError> {
    Ok(StoredCode {
        grant: CodeGrant {
            grant_id: fields.text("grant_id")?,
            client_id: fields.text("client_id")?,
            redirect_uri: fields.text("redirect_uri")?,
            code_challenge: fields.text("code_challenge")?,
            scopes: fields.scopes("scopes")?,
            resource: fields.opt_text("resource")?,
            subject: fields.text("subject")?,
        },
        expires_at: fields.unix("expires_at")?,
        redeemed: fields.opt_bytes("redeemed").is_some(),
    })
}

async fn find_code(
    s: &Inner,
    code: &str,
    now: UnixSeconds,
) -> Result<Option<StoredCode>, StoreError> {
    let Some(fields) = hash(s, code_key(s, &hex(&key(code)))).await? else {
        return Ok(None);
    };
    let stored = decode_code(&fields)?;
    Ok((now < stored.expires_at).then_some(stored))
}

async fn redeem_code(s: &Inner, code: &str, now: UnixSeconds) -> Result<Redemption, StoreError> {
    let value: Value = SCRIPTS
        .redeem_code
        .key(code_key(s, &hex(&key(code))))
        .arg(s.keys.prefix())
        .arg(now)
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let what = "redeeming a code";
    let (decision, mut items) = reply(value, what)?;
    match decision.as_str() {
        "invalid" => Ok(Redemption::Invalid),
        "replayed" => Ok(Redemption::Replayed {
            grant_id: word(&next(&mut items, what)?)?.to_owned(),
        }),
        "redeemed" => {
            let fields = Fields::from_value(next(&mut items, what)?)?;
            Ok(Redemption::Redeemed(decode_code(&fields)?.grant))
        }
        other => Err(corrupt(format!("{what} replied `{other}`"))),
    }
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
        self.call(move |s| async move { put_session(&s, &id, &session, now, max).await })
            .await
    }

    async fn get_session(
        &self,
        id: &str,
        now: UnixSeconds,
    ) -> Result<Option<LoginSession>, StoreError> {
        let id = id.to_owned();
        self.call(move |s| async move { get_session(&s, &id, now).await })
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
        self.call(move |s| async move { approve_session(&s, &id, &csrf, &leg, now).await })
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
            .call(move |s| async move { end_session(&s, &id, &csrf, now).await })
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
            .call(move |s| async move { end_session(&s, &id, &csrf, now).await })
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
        self.call(move |s| async move { put_code(&s, &code, &grant, expires_at, now, max).await })
            .await
    }

    async fn find_code(
        &self,
        code: &str,
        now: UnixSeconds,
    ) -> Result<Option<StoredCode>, StoreError> {
        let code = code.to_owned();
        self.call(move |s| async move { find_code(&s, &code, now).await })
            .await
    }

    async fn redeem_code(&self, code: &str, now: UnixSeconds) -> Result<Redemption, StoreError> {
        let code = code.to_owned();
        self.call(move |s| async move { redeem_code(&s, &code, now).await })
            .await
    }

    async fn sweep_login_state(&self, now: UnixSeconds) -> Result<LoginSweep, StoreError> {
        self.call(move |s| async move { sweep(&s, now).await })
            .await
    }
}
