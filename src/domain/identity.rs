//! Who the user is, as the provider says it: email, preferred username and groups,
//! read from a verified token's claims (the ID token at login and at a provider
//! refresh, a provider access token verified directly) under the claim names the
//! operator configured (`[upstream.claims]`).
//!
//! Bounded, so that a user in thousands of groups cannot blow up grants, tokens or
//! headers: at most [`MAX_GROUPS`] groups are kept — every group an allow rule names
//! first (so a rule never misses a group because of the cap), then the others in the
//! provider's order — and a value over [`MAX_VALUE_BYTES`] bytes is dropped. A value
//! with a control character (or, for a group, a comma, which separates groups in
//! `X-Auth-Groups`) is dropped too: refused, never altered, so that what a rule matched
//! is exactly what the MCP server reads. A dropped group can only make a rule refuse.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most groups kept for a user.
pub const MAX_GROUPS: usize = 64;
/// The longest email, username or group name kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;
/// The longest groups header (`X-Auth-Groups`): whole groups, in the kept order
/// (ruled groups first), until the next would pass it.
pub const MAX_GROUPS_HEADER_BYTES: usize = 4096;

/// What the broker keeps of the user's identity. `groups: None` means the provider
/// said nothing about groups (no such claim): a group rule refuses then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The email, only when it counts ([`ClaimNames::email_verified`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

impl Identity {
    /// Whether nothing at all is known.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.username.is_none() && self.groups.is_none()
    }

    /// The email's domain, lower-cased (the part after the last `@`).
    pub fn email_domain(&self) -> Option<String> {
        let email = self.email.as_deref()?;
        let (_, domain) = email.rsplit_once('@')?;
        (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
    }

    /// The groups comma-joined for a header, at most [`MAX_GROUPS_HEADER_BYTES`].
    pub fn groups_header(&self) -> String {
        let mut out = String::new();
        for group in self.groups.iter().flatten() {
            let extra = group.len() + usize::from(!out.is_empty());
            if out.len() + extra > MAX_GROUPS_HEADER_BYTES {
                break;
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(group);
        }
        out
    }

    /// This identity (from the ID token) with what the userinfo endpoint said over it:
    /// userinfo is the fresher word, so each of the email, username and groups it
    /// states wins, and the ID token's fills those it does not state. Groups are taken
    /// whole from one source, never mixed (a group the provider dropped stays dropped).
    pub fn with_userinfo(self, userinfo: Identity) -> Identity {
        Identity {
            email: userinfo.email.or(self.email),
            username: userinfo.username.or(self.username),
            groups: userinfo.groups.or(self.groups),
        }
    }

    /// Whether the user is in `group` (exact, case-sensitive: providers' group names
    /// and ids are).
    pub fn in_group(&self, group: &str) -> bool {
        self.groups
            .as_ref()
            .is_some_and(|groups| groups.iter().any(|g| g == group))
    }
}

/// Which claims hold what (`[upstream.claims]`). A name is looked up as written
/// first, then, if it has dots, as a path into nested objects (Keycloak's
/// `realm_access.roles`); namespaced claims such as `https://example.com/groups` are
/// found by the first lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub email: String,
    /// The claim that must be `true` for the email to count; `None`: the email counts
    /// as the provider gives it (`email_verified = ""`, for providers such as Entra
    /// that never send the claim).
    pub email_verified: Option<String>,
    pub username: String,
    /// Claims whose values are merged into the groups (Entra: `groups` and `roles`).
    pub groups: Vec<String>,
    /// The groups allow rules name: kept before any other when the cap applies.
    pub ruled_groups: Vec<String>,
    /// `userinfo = true`: the provider's userinfo endpoint is asked too, after a login
    /// and a provider refresh, and its claims win ([`Identity::with_userinfo`]).
    pub userinfo: bool,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            email: "email".to_owned(),
            email_verified: Some("email_verified".to_owned()),
            username: "preferred_username".to_owned(),
            groups: vec!["groups".to_owned()],
            ruled_groups: Vec::new(),
            userinfo: false,
        }
    }
}

impl ClaimNames {
    /// The identity `claims` (a verified token's payload) state.
    pub fn identity(&self, claims: &Map<String, Value>) -> Identity {
        let verified = match &self.email_verified {
            None => true,
            Some(name) => {
                matches!(lookup(claims, name), Some(Value::Bool(true)))
                    || matches!(lookup(claims, name), Some(Value::String(s)) if s == "true")
            }
        };
        let email = text(claims, &self.email)
            .filter(|_| verified)
            .filter(|e| e.contains('@'));
        let username = text(claims, &self.username);
        let mut said = false;
        let mut all: Vec<&str> = Vec::new();
        for name in &self.groups {
            let Some(value) = lookup(claims, name) else {
                continue;
            };
            said = true;
            match value {
                Value::Array(items) => all.extend(items.iter().filter_map(Value::as_str)),
                Value::String(s) => all.extend(s.split([' ', ',']).filter(|g| !g.is_empty())),
                _ => {}
            }
        }
        Identity {
            email,
            username,
            groups: said.then(|| self.bounded(all)),
        }
    }

    /// Usable groups, each once: the ruled ones first, then the rest in order, at most
    /// [`MAX_GROUPS`].
    fn bounded(&self, all: Vec<&str>) -> Vec<String> {
        let usable: Vec<&str> = all.into_iter().filter(|g| usable_group(g)).collect();
        let ruled = usable
            .iter()
            .filter(|g| self.ruled_groups.iter().any(|r| r == *g));
        let others = usable
            .iter()
            .filter(|g| !self.ruled_groups.iter().any(|r| r == *g));
        let mut kept: Vec<String> = Vec::new();
        for group in ruled.chain(others) {
            if kept.len() == MAX_GROUPS {
                break;
            }
            if !kept.iter().any(|k| k == group) {
                kept.push((*group).to_owned());
            }
        }
        kept
    }
}

/// A claim by name, or by its dotted path.
fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    if !name.contains('.') {
        return None;
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    lookup(claims, name)
        .and_then(Value::as_str)
        .filter(|v| usable(v))
        .map(str::to_owned)
}

/// Non-empty, bounded, without control characters: safe in a header value as is.
pub fn usable(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_VALUE_BYTES && !value.chars().any(char::is_control)
}

/// A usable value that does not contain the groups' separator.
pub fn usable_group(value: &str) -> bool {
    usable(value) && !value.contains(',')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn an_unverified_email_does_not_count_unless_configured() {
        let names = ClaimNames::default();
        let said = claims(json!({"email": "a@example.com", "email_verified": false}));
        assert_eq!(names.identity(&said).email, None);
        let absent = claims(json!({"email": "a@example.com"}));
        assert_eq!(names.identity(&absent).email, None);
        let verified = claims(json!({"email": "a@example.com", "email_verified": true}));
        assert_eq!(
            names.identity(&verified).email.as_deref(),
            Some("a@example.com")
        );
        let trusting = ClaimNames {
            email_verified: None,
            ..ClaimNames::default()
        };
        assert_eq!(
            trusting.identity(&absent).email.as_deref(),
            Some("a@example.com")
        );
    }

    #[test]
    fn groups_come_as_arrays_or_strings_from_several_claims_or_nested_paths() {
        let names = ClaimNames {
            groups: vec!["groups".into(), "realm_access.roles".into()],
            ..ClaimNames::default()
        };
        let said = claims(json!({
            "groups": "a b,c",
            "realm_access": {"roles": ["d", "a", 7]},
        }));
        assert_eq!(
            names.identity(&said).groups,
            Some(vec!["a".into(), "b".into(), "c".into(), "d".into()])
        );
        assert_eq!(names.identity(&claims(json!({}))).groups, None);
        assert_eq!(
            names.identity(&claims(json!({"groups": []}))).groups,
            Some(Vec::new())
        );
        let namespaced = ClaimNames {
            groups: vec!["https://example.com/groups".into()],
            ..ClaimNames::default()
        };
        let said = claims(json!({"https://example.com/groups": ["x"]}));
        assert_eq!(namespaced.identity(&said).groups, Some(vec!["x".into()]));
    }

    #[test]
    fn five_thousand_groups_keep_the_ruled_ones_and_stop_at_the_cap() {
        let names = ClaimNames {
            ruled_groups: vec!["g-4999".into()],
            ..ClaimNames::default()
        };
        let many: Vec<String> = (0..5000).map(|i| format!("g-{i}")).collect();
        let groups = names
            .identity(&claims(json!({ "groups": many })))
            .groups
            .unwrap_or_default();
        assert_eq!(groups.len(), MAX_GROUPS);
        assert_eq!(groups.first().map(String::as_str), Some("g-4999"));
        assert_eq!(groups.get(1).map(String::as_str), Some("g-0"));
    }

    #[test]
    fn values_that_are_not_header_safe_are_dropped_not_altered() {
        let names = ClaimNames::default();
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        let said = claims(json!({
            "preferred_username": "bob\r\nX-Auth-Groups: admins",
            "groups": ["ok", "bad\u{7}", "a,b", long, "ok"],
        }));
        let identity = names.identity(&said);
        assert_eq!(identity.username, None);
        assert_eq!(identity.groups, Some(vec!["ok".into()]));
    }

    #[test]
    fn the_groups_header_holds_whole_groups_within_its_bound() {
        let identity = Identity {
            groups: Some((0..MAX_GROUPS).map(|i| format!("{i:0>200}")).collect()),
            ..Identity::default()
        };
        let header = identity.groups_header();
        assert!(header.len() <= MAX_GROUPS_HEADER_BYTES);
        assert!(
            header.split(',').all(|g| g.len() == 200),
            "whole groups only"
        );
        assert_eq!(header.split(',').count(), 20);
    }

    #[test]
    fn userinfo_wins_for_what_it_states_and_the_id_token_fills_the_rest() {
        let names = ClaimNames::default();
        let id_token = names.identity(&claims(json!({
            "email": "old@example.com", "email_verified": true,
            "preferred_username": "alice", "groups": ["staff", "mcp-users"],
        })));
        let userinfo = names.identity(&claims(json!({
            "sub": "alice", "email": "new@example.com", "email_verified": true,
            "groups": ["staff"],
        })));
        let merged = id_token.clone().with_userinfo(userinfo);
        assert_eq!(merged.email.as_deref(), Some("new@example.com"));
        assert_eq!(merged.username.as_deref(), Some("alice"));
        assert_eq!(merged.groups, Some(vec!["staff".into()]), "not a union");

        let silent = names.identity(&claims(json!({"sub": "alice"})));
        assert_eq!(id_token.clone().with_userinfo(silent), id_token);
        // An unverified email at userinfo states nothing: the ID token's stays.
        let unverified = names.identity(&claims(json!({"email": "x@evil.example"})));
        assert_eq!(
            id_token.clone().with_userinfo(unverified).email.as_deref(),
            Some("old@example.com")
        );
        let only_userinfo = Identity::default()
            .with_userinfo(names.identity(&claims(json!({"groups": ["admins"]}))));
        assert_eq!(only_userinfo.groups, Some(vec!["admins".into()]));
    }

    #[test]
    fn the_domain_is_after_the_last_at_and_lower_cased() {
        let identity = Identity {
            email: Some("\"a@b\"@Example.COM".into()),
            ..Identity::default()
        };
        assert_eq!(identity.email_domain().as_deref(), Some("example.com"));
    }
}
