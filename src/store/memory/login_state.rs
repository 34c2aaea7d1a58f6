//! Login state in process memory: one broker process (the `memory` and `sqlite`
//! backends). Each table sits behind its own lock, held for a whole step, which
//! makes every step atomic. Sessions wait packed (`packed.rs`): a broker may hold
//! 100 000 of them.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::packed::Packed;
use super::poisoned;
use crate::clock::UnixSeconds;
use crate::config::constant_time_eq;
use crate::domain::authorize::Authorization;
use crate::store::login_state::{
    Admission, CodeGrant, LoginSession, LoginState, LoginSweep, Redeemer, Redemption, SessionStep,
    StoredCode, UpstreamLeg, key,
};
use crate::store::{Listing, Page, SessionFilter, SessionRow, StoreError};

#[derive(Default)]
pub struct MemoryLoginState {
    sessions: Mutex<HashMap<[u8; 32], Packed>>,
    codes: Mutex<HashMap<[u8; 32], Code>>,
}

/// A code: what it stands for, until when, and, once spent, who spent it.
struct Code {
    grant: CodeGrant,
    expires_at: UnixSeconds,
    spent_by: Option<Redeemer>,
}

impl MemoryLoginState {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Drops what expired at `now`; how many went.
fn drop_expired<V>(
    table: &mut HashMap<[u8; 32], V>,
    now: UnixSeconds,
    expires_at: impl Fn(&V) -> UnixSeconds,
) -> u64 {
    let before = table.len();
    table.retain(|_, v| now < expires_at(v));
    (before - table.len()) as u64
}

/// Inserts unless `max` entries are held after dropping the expired ones.
fn admit<V>(
    table: &mut HashMap<[u8; 32], V>,
    hash: [u8; 32],
    value: V,
    now: UnixSeconds,
    max: usize,
    expires_at: impl Fn(&V) -> UnixSeconds,
) -> Admission {
    if table.len() >= max {
        drop_expired(table, now, expires_at);
        if table.len() >= max {
            return Admission::Full;
        }
    }
    table.insert(hash, value);
    Admission::Stored
}

/// Why a session step was refused before it looked at the session's state.
enum Refusal {
    Unknown,
    Csrf,
}

impl<T> From<Refusal> for SessionStep<T> {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unknown => SessionStep::Unknown,
            Refusal::Csrf => SessionStep::Csrf,
        }
    }
}

/// The live session under `id` whose CSRF token is `csrf`, or why not.
fn checked<'a>(
    sessions: &'a mut HashMap<[u8; 32], Packed>,
    id: &str,
    csrf: &str,
    now: UnixSeconds,
) -> Result<Result<&'a mut Packed, Refusal>, StoreError> {
    Ok(match sessions.get_mut(&key(id)) {
        Some(session) if now < session.expires_at => {
            if constant_time_eq(session.csrf()?, csrf.as_bytes()) {
                Ok(session)
            } else {
                Err(Refusal::Csrf)
            }
        }
        _ => Err(Refusal::Unknown),
    })
}

#[async_trait]
impl LoginState for MemoryLoginState {
    async fn put_session(
        &self,
        id: &str,
        session: LoginSession,
        now: UnixSeconds,
        max: usize,
    ) -> Result<Admission, StoreError> {
        let packed = Packed::pack(&session)?;
        let mut sessions = self.sessions.lock().map_err(poisoned)?;
        Ok(admit(&mut sessions, key(id), packed, now, max, |s| {
            s.expires_at
        }))
    }

    async fn get_session(
        &self,
        id: &str,
        now: UnixSeconds,
    ) -> Result<Option<LoginSession>, StoreError> {
        let sessions = self.sessions.lock().map_err(poisoned)?;
        sessions
            .get(&key(id))
            .filter(|s| now < s.expires_at)
            .map(Packed::unpack)
            .transpose()
    }

    async fn approve_session(
        &self,
        id: &str,
        csrf: &str,
        leg: UpstreamLeg,
        now: UnixSeconds,
    ) -> Result<SessionStep<UpstreamLeg>, StoreError> {
        let mut sessions = self.sessions.lock().map_err(poisoned)?;
        let packed = match checked(&mut sessions, id, csrf, now)? {
            Ok(packed) => packed,
            Err(refusal) => return Ok(refusal.into()),
        };
        let mut session = packed.unpack()?;
        if let Some(approved) = session.leg {
            return Ok(SessionStep::Done(approved));
        }
        session.leg = Some(leg.clone());
        *packed = Packed::pack(&session)?;
        Ok(SessionStep::Done(leg))
    }

    async fn deny_session(
        &self,
        id: &str,
        csrf: &str,
        now: UnixSeconds,
    ) -> Result<SessionStep<Authorization>, StoreError> {
        let mut sessions = self.sessions.lock().map_err(poisoned)?;
        if let Err(refusal) = checked(&mut sessions, id, csrf, now)? {
            return Ok(refusal.into());
        }
        Ok(match sessions.remove(&key(id)) {
            Some(packed) => SessionStep::Done(packed.unpack()?.request),
            None => SessionStep::Unknown,
        })
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        page: &Page,
        now: UnixSeconds,
    ) -> Result<Listing<SessionRow>, StoreError> {
        let sessions = self.sessions.lock().map_err(poisoned)?;
        let mut rows = Vec::new();
        for (hash, packed) in sessions.iter().filter(|(_, s)| now < s.expires_at) {
            let row = packed.unpack()?.row(hash);
            if page.admits(&row.id) && filter.matches(&row) {
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows.truncate(page.size() + 1);
        Ok(page.cut(rows, |r: &SessionRow| &r.id))
    }

    async fn take_session(
        &self,
        id: &str,
        csrf: &str,
        now: UnixSeconds,
    ) -> Result<SessionStep<(Authorization, UpstreamLeg)>, StoreError> {
        let mut sessions = self.sessions.lock().map_err(poisoned)?;
        if let Err(refusal) = checked(&mut sessions, id, csrf, now)? {
            return Ok(refusal.into());
        }
        Ok(
            match sessions.remove(&key(id)).map(|p| p.unpack()).transpose()? {
                Some(LoginSession {
                    request,
                    leg: Some(leg),
                    ..
                }) => SessionStep::Done((request, leg)),
                Some(_) => SessionStep::NotApproved,
                None => SessionStep::Unknown,
            },
        )
    }

    async fn put_code(
        &self,
        code: &str,
        grant: CodeGrant,
        expires_at: UnixSeconds,
        now: UnixSeconds,
        max: usize,
    ) -> Result<Admission, StoreError> {
        let mut codes = self.codes.lock().map_err(poisoned)?;
        let stored = Code {
            grant,
            expires_at,
            spent_by: None,
        };
        Ok(admit(&mut codes, key(code), stored, now, max, |c| {
            c.expires_at
        }))
    }

    async fn find_code(
        &self,
        code: &str,
        now: UnixSeconds,
    ) -> Result<Option<StoredCode>, StoreError> {
        let codes = self.codes.lock().map_err(poisoned)?;
        Ok(codes
            .get(&key(code))
            .filter(|c| now < c.expires_at)
            .map(|c| StoredCode {
                grant: c.grant.clone(),
                expires_at: c.expires_at,
                redeemed: c.spent_by.is_some(),
            }))
    }

    async fn redeem_code(
        &self,
        code: &str,
        by: Redeemer,
        now: UnixSeconds,
    ) -> Result<Redemption, StoreError> {
        let mut codes = self.codes.lock().map_err(poisoned)?;
        Ok(match codes.get_mut(&key(code)) {
            Some(stored) if now < stored.expires_at => match stored.spent_by {
                Some(_) => Redemption::Replayed {
                    grant_id: stored.grant.grant_id.clone(),
                },
                None => {
                    stored.spent_by = Some(by);
                    Redemption::Redeemed(stored.grant.clone())
                }
            },
            _ => Redemption::Invalid,
        })
    }

    async fn unredeem_code(&self, code: &str, by: Redeemer) -> Result<bool, StoreError> {
        let mut codes = self.codes.lock().map_err(poisoned)?;
        Ok(match codes.get_mut(&key(code)) {
            Some(stored) if stored.spent_by == Some(by) => {
                stored.spent_by = None;
                true
            }
            _ => false,
        })
    }

    async fn sweep_login_state(&self, now: UnixSeconds) -> Result<LoginSweep, StoreError> {
        let sessions = drop_expired(
            &mut *self.sessions.lock().map_err(poisoned)?,
            now,
            |s: &Packed| s.expires_at,
        );
        // Redeemed codes went on living as tombstones; they go with their expiry.
        let codes = drop_expired(
            &mut *self.codes.lock().map_err(poisoned)?,
            now,
            |c: &Code| c.expires_at,
        );
        Ok(LoginSweep { sessions, codes })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::MemoryLoginState;
    use crate::store::suite::login_state::{LoginSubject, login_state_behaviour};

    fn open() -> LoginSubject {
        LoginSubject::new(Arc::new(MemoryLoginState::new()), ())
    }

    login_state_behaviour!(open);
}
