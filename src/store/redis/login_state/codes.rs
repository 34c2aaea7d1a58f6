//! Proxy codes on Redis: stored bound to their grant, read for the binding check,
//! redeemed once by one script (a second redemption learns the grant to revoke), put
//! back by another when the redemption's tokens were never handed out — also when
//! Redis ran the redemption and its answer was lost (`super::super::undo`).

use std::sync::Arc;

use ::redis::Value;

use super::{Entry, SCRIPTS, admit, code_key, codes_index, hash, next, reply};
use crate::clock::UnixSeconds;
use crate::store::StoreError;
use crate::store::login_state::{Admission, CodeGrant, Redeemer, Redemption, StoredCode, key};
use crate::store::redis::Inner;
use crate::store::redis::codec::{Fields, Record, corrupt, redis_error, word};
use crate::store::redis::keys::hex;
use crate::store::redis::undo::{self, Undo};

pub(super) async fn put_code(
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

pub(super) async fn find_code(
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

pub(super) async fn redeem_code(
    s: &Arc<Inner>,
    code: &str,
    by: Redeemer,
    now: UnixSeconds,
) -> Result<Redemption, StoreError> {
    let key = code_key(s, &hex(&key(code)));
    let value: Value = match SCRIPTS
        .redeem_code
        .key(&key)
        .arg(s.keys.prefix())
        .arg(now)
        .arg(hex(by.bytes()))
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)
    {
        Ok(value) => value,
        Err(error) => {
            // The redemption may have run: put it back once Redis answers (the
            // broker answers 503, and issues nothing).
            if matches!(error, StoreError::Unavailable(_)) {
                undo::until_answered(s, Undo::Redemption { key, by });
            }
            return Err(error);
        }
    };
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

/// Puts back `by`'s redemption of `code` (see `LoginState::unredeem_code`); when
/// Redis cannot answer now, again until it does.
pub(super) async fn unredeem_code(
    s: &Arc<Inner>,
    code: &str,
    by: Redeemer,
) -> Result<bool, StoreError> {
    let key = code_key(s, &hex(&key(code)));
    match unredeem(s, &key, by).await {
        Err(error @ StoreError::Unavailable(_)) => {
            undo::until_answered(s, Undo::Redemption { key, by });
            Err(error)
        }
        answered => answered,
    }
}

/// One try: whether `by`'s redemption of the code at `key` was there to put back.
pub(in crate::store::redis) async fn unredeem(
    s: &Inner,
    key: &str,
    by: Redeemer,
) -> Result<bool, StoreError> {
    let undone: i64 = SCRIPTS
        .unredeem_code
        .key(key)
        .arg(s.keys.prefix())
        .arg(hex(by.bytes()))
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(undone == 1)
}
