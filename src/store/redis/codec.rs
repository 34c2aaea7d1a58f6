//! Conversions between the store's types and Redis values, and Redis's errors as
//! [`StoreError`]s.
//!
//! Records are hashes of named fields. Times are decimal seconds, hashes lower-case
//! hex (the scripts build keys from them), sealed values raw bytes. An absent
//! optional value is an absent field.

use std::collections::HashMap;

use ::redis::{ErrorKind, RedisError, Value};

use super::keys::hex;
use crate::clock::UnixSeconds;
use crate::domain::scope::Scopes;
use crate::store::StoreError;
use crate::store::seal::SealError;

/// A hash as read (`HGETALL`, or a script returning one).
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, Vec<u8>>);

impl Fields {
    /// Reads a flat `[field, value, …]` array (RESP2, Lua) or a map (RESP3); nil is
    /// empty.
    pub fn from_value(value: Value) -> Result<Self, StoreError> {
        let pairs: Vec<(Value, Value)> = match value {
            Value::Nil => Vec::new(),
            Value::Map(pairs) => pairs,
            Value::Array(items) => {
                if items.len() % 2 != 0 {
                    return Err(corrupt("a hash with an odd number of items"));
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    pairs.push((k, v));
                }
                pairs
            }
            other => return Err(corrupt(format!("expected a hash, got {other:?}"))),
        };
        let mut fields = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let name = String::from_utf8(bytes(k)?)
                .map_err(|_| corrupt("a field name that is not UTF-8"))?;
            fields.insert(name, bytes(v)?);
        }
        Ok(Self(fields))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn bytes(&self, name: &str) -> Result<&[u8], StoreError> {
        self.opt_bytes(name)
            .ok_or_else(|| corrupt(format!("field `{name}` missing")))
    }

    pub fn opt_bytes(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(Vec::as_slice)
    }

    pub fn text(&self, name: &str) -> Result<String, StoreError> {
        text(name, self.bytes(name)?)
    }

    pub fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.opt_bytes(name).map(|b| text(name, b)).transpose()
    }

    pub fn unix(&self, name: &str) -> Result<UnixSeconds, StoreError> {
        let value = self.text(name)?;
        value
            .parse()
            .map_err(|_| corrupt(format!("field `{name}` is not a time: {value:?}")))
    }

    pub fn opt_unix(&self, name: &str) -> Result<Option<UnixSeconds>, StoreError> {
        match self.opt_bytes(name) {
            None => Ok(None),
            Some(_) => self.unix(name).map(Some),
        }
    }

    pub fn hash(&self, name: &str) -> Result<[u8; 32], StoreError> {
        parse_hex(&self.text(name)?)
    }

    pub fn opt_hash(&self, name: &str) -> Result<Option<[u8; 32]>, StoreError> {
        self.opt_text(name)?.as_deref().map(parse_hex).transpose()
    }

    pub fn scopes(&self, name: &str) -> Result<Scopes, StoreError> {
        Scopes::parse(&self.text(name)?).map_err(|e| corrupt(format!("stored scopes: {e}")))
    }
}

/// A record as written: field names and values, optional ones left out when absent.
#[derive(Debug, Default)]
pub struct Record(Vec<(&'static str, Vec<u8>)>);

impl Record {
    pub fn text(mut self, name: &'static str, value: &str) -> Self {
        self.0.push((name, value.as_bytes().to_vec()));
        self
    }

    pub fn opt_text(self, name: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    pub fn unix(self, name: &'static str, value: UnixSeconds) -> Self {
        self.text(name, &value.to_string())
    }

    pub fn opt_unix(self, name: &'static str, value: Option<UnixSeconds>) -> Self {
        match value {
            Some(v) => self.unix(name, v),
            None => self,
        }
    }

    pub fn hash(self, name: &'static str, value: &[u8; 32]) -> Self {
        self.text(name, &hex(value))
    }

    pub fn opt_hash(self, name: &'static str, value: Option<&[u8; 32]>) -> Self {
        match value {
            Some(v) => self.hash(name, v),
            None => self,
        }
    }

    pub fn bytes(mut self, name: &'static str, value: Vec<u8>) -> Self {
        self.0.push((name, value));
        self
    }

    pub fn pairs(&self) -> &[(&'static str, Vec<u8>)] {
        &self.0
    }
}

fn bytes(value: Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(n) => Ok(n.to_string().into_bytes()),
        other => Err(corrupt(format!("expected a string, got {other:?}"))),
    }
}

fn text(name: &str, bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("field `{name}` is not UTF-8")))
}

pub fn parse_hex(text: &str) -> Result<[u8; 32], StoreError> {
    let bad = || corrupt(format!("not a 32-byte hex hash: {text:?}"));
    if text.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// A string reply as text (a script's decision word).
pub fn word(value: &Value) -> Result<&str, StoreError> {
    match value {
        Value::BulkString(b) => {
            std::str::from_utf8(b).map_err(|_| corrupt("a reply that is not UTF-8"))
        }
        Value::SimpleString(s) => Ok(s),
        other => Err(corrupt(format!("expected a word, got {other:?}"))),
    }
}

/// Seconds a record may live in Redis, from `now` to `expires_at` (at least one: a
/// zero or negative expiry would delete it at once, or be refused). Relative to the
/// broker's clock, so a clock moved by tests or skewed against Redis's does not
/// shorten or stretch it. Kept within what `EXPIRE` accepts.
pub fn ttl(now: UnixSeconds, expires_at: UnixSeconds) -> u64 {
    const MAX: u64 = 1 << 31;
    expires_at.saturating_sub(now).clamp(1, MAX)
}

pub fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt(message.into())
}

/// A sealed value that does not open is a corrupt (or foreign, or tampered) record.
pub fn seal_error(e: SealError) -> StoreError {
    corrupt(e.to_string())
}

/// Redis's failures: replies of the wrong shape (or a key of the wrong type) are
/// corrupt records; everything else — refused or dropped connections, timeouts, a
/// server still loading, a read-only replica, authentication — leaves the store
/// unavailable. Every write is one script or one `MULTI`, so none is half applied.
pub fn redis_error(e: RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => corrupt(format!("redis: {e}")),
        // WRONGTYPE: a key of another kind; CORRUPT: a script found an unreadable
        // value (lua/common.lua) and stopped before writing.
        _ if matches!(e.code(), Some("WRONGTYPE" | "CORRUPT")) => corrupt(format!("redis: {e}")),
        _ => StoreError::Unavailable(format!("redis: {e}")),
    }
}
