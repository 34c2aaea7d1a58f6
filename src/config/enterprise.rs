//! `[enterprise]`: the identity providers whose Identity Assertion JWT Authorization
//! Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant; the MCP extension
//! "Enterprise-Managed Authorization") the token endpoint honours. Nothing is trusted
//! until it is listed here — not even the upstream provider — and each entry says
//! which clients may present its grants, how its subjects become the broker's, and the
//! most scopes it may grant.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::Problem;
use super::issuer::Issuer;
use super::sections::{Checker, optional_duration};
use crate::domain::jws::Alg;
use crate::domain::scope::Scopes;

/// The longest an ID-JAG may live (`exp - iat`) unless an issuer says otherwise: the
/// extension wants them short-lived, and IdPs issue them for about five minutes.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(600);
/// What `max_lifetime` may be at most: a replay record lives as long as the grant.
const MAX_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// `[enterprise]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEnterprise {
    pub issuers: Option<Vec<RawTrustedIssuer>>,
}

/// One `[[enterprise.issuers]]` entry as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTrustedIssuer {
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub clients: Option<Vec<String>>,
    pub subject_claim: Option<String>,
    pub subject_prefix: Option<String>,
    pub max_scopes: Option<Vec<String>>,
    pub algorithms: Option<Vec<String>>,
    pub max_lifetime: Option<String>,
    pub allow_insecure_http: Option<bool>,
}

/// `[enterprise]`
#[derive(Debug, Clone, Default)]
pub struct EnterpriseConfig {
    /// `[[enterprise.issuers]]`, in configuration order (none: the ID-JAG grant is off
    /// and not advertised).
    pub issuers: Vec<TrustedIssuer>,
}

impl EnterpriseConfig {
    /// The entry for the `iss` of an assertion, compared character for character.
    pub fn issuer(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer.as_str() == iss)
    }
}

/// Which claim of an ID-JAG names the user (draft §3.1: `sub` is unique per issuer;
/// `email` is RECOMMENDED for subject resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectClaim {
    Sub,
    Email,
}

/// One trusted ID-JAG issuer.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// `issuer`: the `iss` its ID-JAGs carry, exactly.
    pub issuer: Issuer,
    /// `jwks_uri`: where its keys are. Absent: the upstream provider's keys when this
    /// is the upstream issuer, else the `jwks_uri` of its OpenID Connect discovery
    /// document.
    pub jwks_uri: Option<Url>,
    /// `clients`: the broker's client ids that may present its grants (the ID-JAG's
    /// `client_id` must name the authenticated client too).
    pub clients: Vec<String>,
    /// `subject_claim` (`sub` or `email`, default `sub`).
    pub subject_claim: SubjectClaim,
    /// `subject_prefix`: put before the claim's value to make the broker's subject
    /// (default empty: the upstream provider's subjects are the broker's).
    pub subject_prefix: String,
    /// `max_scopes`: the most it may grant; what is issued is the intersection of
    /// these, the ID-JAG's `scope` and the request's `scope`.
    pub max_scopes: Scopes,
    /// `algorithms`: the signature algorithms accepted from it (default RS256, PS256,
    /// ES256, EdDSA; never `none` or an HMAC).
    pub algorithms: Vec<Alg>,
    /// `max_lifetime`: the longest `exp - iat` accepted (default 10 min, at most 1 h).
    pub max_lifetime: Duration,
}

pub fn enterprise(raw: RawEnterprise, problems: &mut Vec<Problem>) -> Option<EnterpriseConfig> {
    let before = problems.len();
    let mut issuers: Vec<TrustedIssuer> = Vec::new();
    for (index, entry) in raw.issuers.unwrap_or_default().into_iter().enumerate() {
        if let Some(issuer) = trusted_issuer(index, entry, problems) {
            if issuers
                .iter()
                .any(|i| i.issuer.as_str() == issuer.issuer.as_str())
            {
                problems.push(Problem::new(
                    format!("enterprise.issuers[{index}].issuer"),
                    format!("`{}` is listed twice", issuer.issuer.as_str()),
                ));
            }
            issuers.push(issuer);
        }
    }
    (problems.len() == before).then_some(EnterpriseConfig { issuers })
}

fn trusted_issuer(
    index: usize,
    raw: RawTrustedIssuer,
    problems: &mut Vec<Problem>,
) -> Option<TrustedIssuer> {
    let mut c = Checker::new(format!("enterprise.issuers[{index}]"), problems);
    let allow_http = raw.allow_insecure_http.unwrap_or(false);
    if raw.issuer.is_none() {
        c.report("issuer", "missing (required)");
    }
    let issuer = c.parse("issuer", raw.issuer, |t| {
        Issuer::parse_upstream(&t, allow_http)
    });
    let jwks_uri = c.parse("jwks_uri", raw.jwks_uri, |t| {
        let url = Url::parse(&t).map_err(|e| format!("`{t}` is not a URL: {e}"))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match url.scheme() {
            "https" => Ok(url),
            "http" if allow_http || loopback => Ok(url),
            _ => Err(format!("`{t}` must be an https URL")),
        }
    });
    let clients = raw.clients.unwrap_or_default();
    if clients.is_empty() {
        c.report(
            "clients",
            "name the client ids that may present this issuer's grants (required)",
        );
    } else if clients.iter().any(|id| id.trim().is_empty()) {
        c.report("clients", "a client id must not be empty");
    }
    let subject_claim = c.parse(
        "subject_claim",
        Some(raw.subject_claim.unwrap_or_else(|| "sub".to_owned())),
        |t| match t.as_str() {
            "sub" => Ok(SubjectClaim::Sub),
            "email" => Ok(SubjectClaim::Email),
            other => Err(format!("`{other}` is not sub or email")),
        },
    );
    let max_scopes = match raw.max_scopes {
        None => {
            c.report(
                "max_scopes",
                "missing (required): the most this issuer may grant",
            );
            None
        }
        Some(list) => c.parse("max_scopes", Some(list.join(" ")), |t| {
            let scopes = Scopes::parse(&t)?;
            if scopes.is_empty() {
                Err("name at least one scope".to_owned())
            } else {
                Ok(scopes)
            }
        }),
    };
    let algorithms = c.parse(
        "algorithms",
        Some(raw.algorithms.unwrap_or_else(|| {
            ["RS256", "PS256", "ES256", "EdDSA"]
                .map(String::from)
                .to_vec()
        })),
        |names| {
            let mut out = Vec::new();
            for name in names {
                if name.starts_with("HS") {
                    return Err(format!("`{name}`: HMAC algorithms are never accepted"));
                }
                let alg: Alg = name.parse().map_err(|_| {
                    format!("`{name}` is not an asymmetric JWS algorithm (RS256, PS256, ES256, ES384, ES512, EdDSA, …)")
                })?;
                out.push(alg);
            }
            if out.is_empty() {
                return Err("name at least one algorithm".to_owned());
            }
            Ok(out)
        },
    );
    let max_lifetime = optional_duration(
        &mut c,
        "max_lifetime",
        raw.max_lifetime,
        DEFAULT_MAX_LIFETIME,
    );
    if let Some(lifetime) = max_lifetime
        && (lifetime.is_zero() || lifetime > MAX_MAX_LIFETIME)
    {
        c.report("max_lifetime", "must be between 1s and 1h");
    }
    if !c.ok() {
        return None;
    }
    Some(TrustedIssuer {
        issuer: issuer?,
        jwks_uri,
        clients,
        subject_claim: subject_claim?,
        subject_prefix: raw.subject_prefix.unwrap_or_default(),
        max_scopes: max_scopes?,
        algorithms: algorithms?,
        max_lifetime: max_lifetime?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> RawTrustedIssuer {
        RawTrustedIssuer {
            issuer: Some("https://idp.example".into()),
            clients: Some(vec!["wiki".into()]),
            max_scopes: Some(vec!["notes:read".into()]),
            ..RawTrustedIssuer::default()
        }
    }

    #[test]
    fn an_entry_needs_issuer_clients_and_max_scopes() {
        let mut problems = Vec::new();
        let raw = RawEnterprise {
            issuers: Some(vec![RawTrustedIssuer::default()]),
        };
        assert!(enterprise(raw, &mut problems).is_none());
        let text = problems.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert!(
            text.iter()
                .any(|p| p.contains("enterprise.issuers[0].issuer"))
        );
        assert!(
            text.iter()
                .any(|p| p.contains("enterprise.issuers[0].clients"))
        );
        assert!(
            text.iter()
                .any(|p| p.contains("enterprise.issuers[0].max_scopes"))
        );
    }

    #[test]
    fn hmac_plain_http_and_duplicates_are_refused() {
        let mut problems = Vec::new();
        let mut hmac = entry();
        hmac.algorithms = Some(vec!["HS256".into()]);
        let mut http = entry();
        http.issuer = Some("http://idp.example".into());
        let raw = RawEnterprise {
            issuers: Some(vec![entry(), entry(), hmac, http]),
        };
        assert!(enterprise(raw, &mut problems).is_none());
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn es512_may_be_named_and_unknown_names_are_refused() {
        let mut es512 = entry();
        es512.algorithms = Some(vec!["ES512".into(), "EdDSA".into()]);
        let config = enterprise(
            RawEnterprise {
                issuers: Some(vec![es512]),
            },
            &mut Vec::new(),
        )
        .unwrap();
        let issuer = config.issuer("https://idp.example").unwrap();
        assert_eq!(issuer.algorithms, [Alg::ES512, Alg::EdDSA]);
        for name in ["es512", "none", "XS256"] {
            let mut odd = entry();
            odd.algorithms = Some(vec![name.into()]);
            let mut problems = Vec::new();
            let raw = RawEnterprise {
                issuers: Some(vec![odd]),
            };
            assert!(enterprise(raw, &mut problems).is_none(), "{name}");
            assert!(
                problems[0]
                    .to_string()
                    .contains("not an asymmetric JWS algorithm"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn defaults_are_sub_no_prefix_and_ten_minutes() {
        let config = enterprise(
            RawEnterprise {
                issuers: Some(vec![entry()]),
            },
            &mut Vec::new(),
        )
        .unwrap();
        let issuer = config.issuer("https://idp.example").unwrap();
        assert_eq!(issuer.subject_claim, SubjectClaim::Sub);
        assert_eq!(issuer.max_lifetime, DEFAULT_MAX_LIFETIME);
        assert!(issuer.algorithms.contains(&Alg::RS256));
        assert!(config.issuer("https://idp.example/").is_none());
    }
}
