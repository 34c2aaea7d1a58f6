//! The identity the broker keeps and passes on: `[upstream.claims]` (which claims
//! hold the email, username and groups), `[resources.allow]` (who may use a
//! resource: `domain::identity_rule`) and the header names in `[forward_auth]` that
//! carry the identity to the MCP server (oauth2-proxy's `X-Auth-Request-*` style).

use actix_web::http::header::HeaderName;
use serde::Deserialize;

use super::Problem;
use super::sections::Checker;
use crate::domain::identity::{ClaimNames, usable_group};
use crate::domain::identity_rule::AllowRule;

/// One claim name or several (`groups = "groups"` or `groups = ["groups", "roles"]`).
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// `[upstream.claims]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    pub email: Option<String>,
    /// `""`: the email counts without a verification claim (Entra).
    pub email_verified: Option<String>,
    pub username: Option<String>,
    pub groups: Option<OneOrMany>,
    /// Ask the provider's userinfo endpoint too (default false).
    pub userinfo: Option<bool>,
}

/// `[resources.allow]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    pub groups_any: Option<Vec<String>>,
    pub groups_all: Option<Vec<String>>,
    pub email_domains: Option<Vec<String>>,
    pub subjects: Option<Vec<String>>,
}

/// `[upstream.claims]`: defaults are the OIDC standard claims and `groups`
/// (Keycloak's group mapper; Entra's `groups` claim of object ids).
pub fn claims(raw: Option<RawClaims>, problems: &mut Vec<Problem>) -> Option<ClaimNames> {
    let Some(raw) = raw else {
        return Some(ClaimNames::default());
    };
    let defaults = ClaimNames::default();
    let mut c = Checker::new("upstream.claims", problems);
    let mut name = |key: &str, value: Option<String>, default: String| match value {
        None => Some(default),
        Some(v) if v.trim().is_empty() => {
            c.report(key, "must name a claim");
            None
        }
        Some(v) => Some(v),
    };
    let email = name("email", raw.email, defaults.email);
    let username = name("username", raw.username, defaults.username);
    let email_verified = match raw.email_verified {
        None => defaults.email_verified,
        Some(v) if v.trim().is_empty() => None,
        Some(v) => Some(v),
    };
    let groups = match raw.groups.map(OneOrMany::into_vec) {
        None => Some(defaults.groups),
        Some(list) if list.is_empty() || list.iter().any(|g| g.trim().is_empty()) => {
            c.report("groups", "must name one or more claims");
            None
        }
        Some(list) => Some(list),
    };
    if !c.ok() {
        return None;
    }
    Some(ClaimNames {
        email: email?,
        email_verified,
        username: username?,
        groups: groups?,
        ruled_groups: Vec::new(),
        userinfo: raw.userinfo.unwrap_or(false),
    })
}

/// `[resources.allow]` of the resource whose keys `key` makes: every list given must
/// be non-empty, and at least one given.
pub fn allow(
    raw: Option<RawAllow>,
    key: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Option<Option<AllowRule>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let before = problems.len();
    let mut list = |field: &str, value: Option<Vec<String>>, ok: fn(&str) -> bool, what: &str| {
        let value = value?;
        if value.is_empty() {
            problems.push(Problem::new(
                key(&format!("allow.{field}")),
                "must not be empty",
            ));
        } else if let Some(bad) = value.iter().find(|v| !ok(v)) {
            problems.push(Problem::new(
                key(&format!("allow.{field}")),
                format!("`{bad}` is not {what}"),
            ));
        }
        Some(value)
    };
    let groups_any = list(
        "groups_any",
        raw.groups_any,
        usable_group,
        "a group name (non-empty, no comma or control character)",
    );
    let groups_all = list(
        "groups_all",
        raw.groups_all,
        usable_group,
        "a group name (non-empty, no comma or control character)",
    );
    let email_domains = list(
        "email_domains",
        raw.email_domains,
        domain,
        "a domain (e.g. example.com, no @)",
    );
    let subjects = list("subjects", raw.subjects, |s| !s.is_empty(), "a subject");
    if groups_any.is_none() && groups_all.is_none() && email_domains.is_none() && subjects.is_none()
    {
        problems.push(Problem::new(
            key("allow"),
            "names no condition: give groups_any, groups_all, email_domains or subjects (or remove it)",
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(Some(AllowRule {
        groups_any: groups_any.unwrap_or_default(),
        groups_all: groups_all.unwrap_or_default(),
        email_domains: email_domains
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        subjects: subjects.unwrap_or_default(),
    }))
}

/// A DNS name: labels of letters, digits and hyphens, at least one dot.
fn domain(text: &str) -> bool {
    text.contains('.')
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The headers that carry the identity to the MCP server (forward-auth's 200 and the
/// gateway's request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// `email_header` (default `X-Auth-Email`): the verified email.
    pub email: HeaderName,
    /// `user_header` (default `X-Auth-User`): the preferred username.
    pub user: HeaderName,
    /// `groups_header` (default `X-Auth-Groups`): the groups, comma-joined.
    pub groups: HeaderName,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            email: HeaderName::from_static("x-auth-email"),
            user: HeaderName::from_static("x-auth-user"),
            groups: HeaderName::from_static("x-auth-groups"),
        }
    }
}

/// Headers the broker sets itself or that carry something else.
fn taken(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization"
            | "host"
            | "cookie"
            | "set-cookie"
            | "forwarded"
            | "www-authenticate"
            | "x-auth-subject"
            | "x-auth-scopes"
            | "x-auth-client-id"
            | "x-auth-access-token"
            | "x-auth-status"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
    ) || name.as_str().starts_with("content-")
        || name.as_str().starts_with("mcp-")
        || name.as_str().starts_with("ratelimit")
}

/// The three names from `[forward_auth]`: header names, not taken, all different.
pub fn headers(
    email: Option<String>,
    user: Option<String>,
    groups: Option<String>,
    c: &mut Checker<'_>,
) -> Option<IdentityHeaders> {
    let defaults = IdentityHeaders::default();
    let mut one = |key: &str, value: Option<String>, default: HeaderName| match value {
        None => Some(default),
        some => c.parse(key, some, |v| {
            let name = HeaderName::from_bytes(v.trim().as_bytes())
                .map_err(|_| format!("`{v}` is not a header name"))?;
            if taken(&name) {
                return Err(format!("`{v}` carries something else"));
            }
            Ok(name)
        }),
    };
    let email = one("email_header", email, defaults.email);
    let user = one("user_header", user, defaults.user);
    let groups = one("groups_header", groups, defaults.groups);
    let (email, user, groups) = (email?, user?, groups?);
    if email == user || email == groups || user == groups {
        c.report(
            "groups_header",
            "email_header, user_header and groups_header must differ",
        );
        return None;
    }
    Some(IdentityHeaders {
        email,
        user,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(raw: RawAllow) -> Result<Option<AllowRule>, Vec<Problem>> {
        let mut problems = Vec::new();
        let key = |f: &str| format!("resources[0].{f}");
        allow(Some(raw), &key, &mut problems).ok_or(problems)
    }

    fn words(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn nonsense_rules_are_refused_with_their_key() {
        let cases = [
            RawAllow::default(),
            RawAllow {
                groups_any: words(&[]),
                ..RawAllow::default()
            },
            RawAllow {
                groups_all: words(&["a,b"]),
                ..RawAllow::default()
            },
            RawAllow {
                email_domains: words(&["@example.com"]),
                ..RawAllow::default()
            },
            RawAllow {
                email_domains: words(&["localhost"]),
                ..RawAllow::default()
            },
            RawAllow {
                subjects: words(&[""]),
                ..RawAllow::default()
            },
        ];
        for raw in cases {
            let problems = rule(raw).err().unwrap_or_default();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].to_string().contains("resources[0].allow"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn domains_are_lower_cased() {
        let parsed = rule(RawAllow {
            email_domains: words(&["Example.COM"]),
            ..RawAllow::default()
        });
        let domains = parsed.ok().flatten().map(|r| r.email_domains);
        assert_eq!(domains, words(&["example.com"]));
    }

    #[test]
    fn header_names_must_be_free_and_different() {
        let check = |e: Option<&str>, u: Option<&str>, g: Option<&str>| {
            let mut problems = Vec::new();
            let mut c = Checker::new("forward_auth", &mut problems);
            let own = |v: Option<&str>| v.map(str::to_owned);
            let out = headers(own(e), own(u), own(g), &mut c);
            (out, problems)
        };
        let (ok, _) = check(None, Some("X-Forwarded-User"), None);
        assert_eq!(
            ok.map(|h| h.user),
            Some(HeaderName::from_static("x-forwarded-user"))
        );
        for (e, u, g) in [
            (Some("Authorization"), None, None),
            (None, Some("X-Auth-Subject"), None),
            (None, None, Some("bad header")),
            (Some("X-A"), Some("x-a"), None),
        ] {
            let (out, problems) = check(e, u, g);
            assert!(out.is_none() && !problems.is_empty(), "{e:?} {u:?} {g:?}");
        }
    }
}
