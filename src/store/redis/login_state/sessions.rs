//! Login sessions on Redis: stored with their request, approved and ended (denied
//! or taken) each by one script that checks the CSRF token and the state.

use ::redis::Value;

use super::{Entry, SCRIPTS, admit, hash, next, reply, session_key, sessions_index};
use crate::clock::UnixSeconds;
use crate::domain::authorize::Authorization;
use crate::store::login_state::{Admission, LoginSession, Remember, SessionStep, UpstreamLeg, key};
use crate::store::redis::Inner;
use crate::store::redis::codec::{Fields, Record, corrupt, redis_error, word};
use crate::store::redis::keys::hex;
use crate::store::{Listing, Page, SessionFilter, SessionRow, StoreError};

pub(super) async fn put_session(
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

pub(super) async fn get_session(
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

/// A refusal word shared by the session scripts.
fn refusal<T>(word: &str, what: &str) -> Result<SessionStep<T>, StoreError> {
    match word {
        "unknown" => Ok(SessionStep::Unknown),
        "csrf" => Ok(SessionStep::Csrf),
        "not_approved" => Ok(SessionStep::NotApproved),
        other => Err(corrupt(format!("{what} replied `{other}`"))),
    }
}

pub(super) async fn approve_session(
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
pub(super) async fn end_session(
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

/// Live sessions for the admin listing: the expiry index read from `now` on (bounded
/// by `sessions.max_sessions`), ordered by hash, then read a batch at a time.
pub(super) async fn list_sessions(
    s: &Inner,
    filter: &SessionFilter,
    page: &Page,
    now: UnixSeconds,
) -> Result<Listing<SessionRow>, StoreError> {
    let mut hexes: Vec<String> = ::redis::cmd("ZRANGEBYSCORE")
        .arg(sessions_index(s))
        .arg(format!("({now}"))
        .arg("+inf")
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    hexes.retain(|h| page.admits(h));
    hexes.sort();
    let want = page.size() + 1;
    let mut rows = Vec::new();
    for chunk in hexes.chunks(want.max(100)) {
        let mut reads = ::redis::pipe();
        for hex in chunk {
            reads.hgetall(session_key(s, hex));
        }
        let values: Vec<Value> = reads
            .query_async(&mut s.conn())
            .await
            .map_err(redis_error)?;
        for (hex, value) in chunk.iter().zip(values) {
            let fields = Fields::from_value(value)?;
            // Ended since the index was read.
            if fields.is_empty() {
                continue;
            }
            let row = SessionRow {
                id: hex.clone(),
                client_id: fields.text("client_id")?,
                redirect_uri: fields.text("redirect_uri")?,
                scopes: fields.scopes("scopes")?,
                resource: fields.opt_text("resource")?,
                expires_at: fields.unix("expires_at")?,
                approved: fields.opt_text("verifier")?.is_some(),
            };
            if now < row.expires_at && filter.matches(&row) {
                rows.push(row);
                if rows.len() == want {
                    return Ok(page.cut(rows, |r: &SessionRow| &r.id));
                }
            }
        }
    }
    Ok(page.cut(rows, |r: &SessionRow| &r.id))
}
