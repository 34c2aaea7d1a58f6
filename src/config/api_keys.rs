//! `[[api_keys]]`: static API keys, configured by hash only (`token-broker hash-key`
//! prints one), each acting as a subject with scopes, an optional expiry and tool
//! allow-list.

use super::Problem;
use super::raw::RawApiKey;
use super::resources::patterns;
use crate::domain::scope::Scopes;

/// One `[[api_keys]]` entry. The key itself is never configured, only its hash.
#[derive(Debug, Clone)]
pub struct ApiKeyConfig {
    /// `name`: a label for logs and metrics.
    pub name: String,
    /// `hash`: `sha256:<64 hex>` as printed by `token-broker hash-key`.
    pub hash: [u8; 32],
    /// `subject`: the principal the key acts as.
    pub subject: String,
    /// `scopes`: what the key may do.
    pub scopes: crate::domain::scope::Scopes,
    /// `expires_at`: RFC 3339 time after which the key is refused.
    pub expires_at: Option<u64>,
    /// `active`: false disables the key without removing it (default true).
    pub active: bool,
    /// `resources`: resource URIs it is valid for (default: all).
    pub resources: Option<Vec<String>>,
    /// `tools`: the only tools it may call (names or `prefix*`; default: any).
    pub tools: Option<std::sync::Arc<[crate::domain::tool_policy::ToolPattern]>>,
}

pub fn api_keys(raw: Vec<RawApiKey>, problems: &mut Vec<Problem>) -> Option<Vec<ApiKeyConfig>> {
    let before = problems.len();
    let mut out: Vec<ApiKeyConfig> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("api_keys[{index}].{field}");
        let mut report =
            |field: &str, message: String| problems.push(Problem::new(key(field), message));
        let name = entry.name.unwrap_or_else(|| format!("key-{index}"));
        if out.iter().any(|k| k.name == name) {
            report("name", format!("`{name}` is used twice"));
        }
        let hash = match entry.hash.as_deref().map(parse_key_hash) {
            Some(Ok(hash)) => Some(hash),
            Some(Err(e)) => {
                report("hash", e);
                None
            }
            None => {
                report(
                    "hash",
                    "missing (required; `token-broker hash-key` prints one)".to_owned(),
                );
                None
            }
        };
        let subject = entry.subject.filter(|s| !s.trim().is_empty());
        if subject.is_none() {
            report("subject", "missing (required)".to_owned());
        }
        let scopes = match Scopes::parse(&entry.scopes.unwrap_or_default().join(" ")) {
            Ok(scopes) => Some(scopes),
            Err(e) => {
                report("scopes", e);
                None
            }
        };
        let expires_at = match entry.expires_at.as_deref().map(humantime::parse_rfc3339) {
            None => Some(None),
            Some(Ok(time)) => Some(Some(
                time.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            )),
            Some(Err(_)) => {
                report(
                    "expires_at",
                    "must be an RFC 3339 UTC time such as 2027-01-31T00:00:00Z".to_owned(),
                );
                None
            }
        };
        let tools = match entry.tools {
            None => Some(None),
            Some(list) => match patterns(&list) {
                Ok(list) => Some(Some(list.into())),
                Err(e) => {
                    report("tools", e);
                    None
                }
            },
        };
        if let (Some(hash), Some(subject), Some(scopes), Some(expires_at), Some(tools)) =
            (hash, subject, scopes, expires_at, tools)
        {
            out.push(ApiKeyConfig {
                name,
                hash,
                subject,
                scopes,
                expires_at,
                active: entry.active.unwrap_or(true),
                resources: entry.resources,
                tools,
            });
        }
    }
    (problems.len() == before).then_some(out)
}

/// `sha256:` followed by 64 hex digits.
fn parse_key_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text
        .strip_prefix("sha256:")
        .ok_or_else(|| "must start with `sha256:` (use `token-broker hash-key`)".to_owned())?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be sha256: followed by 64 hex digits".to_owned());
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "must be sha256: followed by 64 hex digits".to_owned())?;
    }
    Ok(hash)
}
