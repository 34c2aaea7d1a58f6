//! `[[clients]]`: confidential clients the operator configures rather than registers —
//! machines (CI jobs, agents without a user) using `client_credentials` (the MCP OAuth
//! client-credentials extension), or any client that must exist before it could
//! register. Each authenticates with a secret (a secret reference, compared by digest)
//! or with its keys (`jwks` or `jwks_uri`: `private_key_jwt`, RFC 7523 §2.2), names the
//! resources it may ask for and the most scopes it may get. Registration management
//! never deletes them: they are not in the store.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::sections::Checker;
use super::{Environment, Problem, Secret};
use crate::domain::client_metadata::check_public_jwks;
use crate::domain::resource::same_resource;
use crate::domain::scope::Scopes;

/// The grant types a configured client may use.
const GRANTS: &[&str] = &[
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
];

/// One `[[clients]]` entry as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub client_id: Option<String>,
    pub name: Option<String>,
    pub client_secret: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
}

/// How a configured client proves itself at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    /// `client_secret`: `client_secret_basic` or `client_secret_post`.
    Secret(Secret),
    /// `jwks`: its public keys, inline as a table or a JSON string (`private_key_jwt`).
    Jwks(Value),
    /// `jwks_uri`: where its public keys are published (`private_key_jwt`).
    JwksUri(Url),
}

/// One pre-configured client.
#[derive(Debug, Clone)]
pub struct ConfiguredClient {
    /// `client_id`: unique, not a URL (those name metadata documents).
    pub client_id: String,
    /// `name`: shown on the consent page, if it logs users in.
    pub name: Option<String>,
    /// Exactly one of `client_secret`, `jwks`, `jwks_uri`.
    pub credential: ClientCredential,
    /// `grant_types` (default `["client_credentials"]`).
    pub grant_types: Vec<String>,
    /// `redirect_uris`: required with `authorization_code`, else none.
    pub redirect_uris: Vec<String>,
    /// `resources`: the `[[resources]]` URIs it may ask for (required, at least one).
    pub resources: Vec<String>,
    /// `scopes`: the most it may get (required, at least one).
    pub scopes: Scopes,
}

/// `resources`: the `[[resources]]` URIs, when that section is valid (else their
/// check is left to it).
pub fn clients(
    raw: Vec<RawClient>,
    resources: Option<&[String]>,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<Vec<ConfiguredClient>> {
    let before = problems.len();
    let mut out: Vec<ConfiguredClient> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        if let Some(id) = &entry.client_id {
            if seen.contains(id) {
                problems.push(Problem::new(
                    format!("clients[{index}].client_id"),
                    format!("`{id}` is listed twice"),
                ));
            }
            seen.push(id.clone());
        }
        if let Some(client) = client(index, entry, resources, env, problems) {
            out.push(client);
        }
    }
    (problems.len() == before).then_some(out)
}

fn client(
    index: usize,
    raw: RawClient,
    known: Option<&[String]>,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<ConfiguredClient> {
    let mut c = Checker::new(format!("clients[{index}]"), problems);
    let client_id = match raw.client_id {
        None => {
            c.report("client_id", "missing (required)");
            None
        }
        Some(id) if id.trim().is_empty() || id.len() > 255 => {
            c.report("client_id", "must be 1 to 255 characters");
            None
        }
        Some(id) if id.starts_with("https://") || id.starts_with("http://") => {
            c.report(
                "client_id",
                "a URL names a client metadata document; choose a plain identifier",
            );
            None
        }
        Some(id) => Some(id),
    };
    let given = [
        raw.client_secret.is_some(),
        raw.jwks.is_some(),
        raw.jwks_uri.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        c.report(
            "client_secret",
            "give exactly one of client_secret, jwks and jwks_uri",
        );
    }
    let credential = if let Some(spec) = raw.client_secret {
        c.parse("client_secret", Some(spec), |spec| {
            let secret = Secret::resolve(&spec, env)?;
            if secret.expose().len() < 16 {
                return Err("at least 16 characters".to_owned());
            }
            Ok(ClientCredential::Secret(secret))
        })
    } else if let Some(jwks) = raw.jwks {
        c.parse("jwks", Some(jwks), |jwks| {
            // A table, or the JSON document as a string (pasted as published).
            let jwks = match jwks {
                Value::String(text) => serde_json::from_str(&text)
                    .map_err(|e| format!("not a JSON Web Key Set: {e}"))?,
                other => other,
            };
            check_public_jwks(&jwks)?;
            Ok(ClientCredential::Jwks(jwks))
        })
    } else {
        c.parse("jwks_uri", raw.jwks_uri, |text| {
            let url = Url::parse(&text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            match url.scheme() {
                "https" => Ok(ClientCredential::JwksUri(url)),
                "http" if loopback => Ok(ClientCredential::JwksUri(url)),
                _ => Err(format!("`{text}` must be an https URL")),
            }
        })
    };
    let grant_types = raw
        .grant_types
        .unwrap_or_else(|| vec!["client_credentials".to_owned()]);
    if grant_types.is_empty() {
        c.report("grant_types", "name at least one grant type");
    }
    for grant in &grant_types {
        if !GRANTS.contains(&grant.as_str()) {
            c.report(
                "grant_types",
                format!("`{grant}` is not one of {}", GRANTS.join(", ")),
            );
        }
    }
    let redirect_uris = raw.redirect_uris.unwrap_or_default();
    let code = grant_types.iter().any(|g| g == "authorization_code");
    if code && redirect_uris.is_empty() {
        c.report(
            "redirect_uris",
            "required with the authorization_code grant",
        );
    }
    if !code && !redirect_uris.is_empty() {
        c.report(
            "redirect_uris",
            "only for the authorization_code grant (add it to grant_types, or remove these)",
        );
    }
    for uri in &redirect_uris {
        if Url::parse(uri).is_err() {
            c.report("redirect_uris", format!("`{uri}` is not an absolute URI"));
        }
    }
    let resources = raw.resources.unwrap_or_default();
    if resources.is_empty() {
        c.report(
            "resources",
            "name the [[resources]] URIs this client may ask for (required)",
        );
    }
    for uri in &resources {
        if known.is_some_and(|known| !known.iter().any(|k| same_resource(k, uri))) {
            c.report("resources", format!("`{uri}` is not a [[resources]] uri"));
        }
    }
    let scopes = match raw.scopes {
        None => {
            c.report("scopes", "missing (required): the most this client may get");
            None
        }
        Some(list) => c.parse("scopes", Some(list.join(" ")), |text| {
            let scopes = Scopes::parse(&text)?;
            if scopes.is_empty() {
                Err("name at least one scope".to_owned())
            } else {
                Ok(scopes)
            }
        }),
    };
    if !c.ok() {
        return None;
    }
    Some(ConfiguredClient {
        client_id: client_id?,
        name: raw.name,
        credential: credential?,
        grant_types,
        redirect_uris,
        resources,
        scopes: scopes?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry() -> RawClient {
        RawClient {
            client_id: Some("ci-bot".into()),
            client_secret: Some("a-long-enough-secret".into()),
            resources: Some(vec!["https://mcp.example/mcp".into()]),
            scopes: Some(vec!["notes:read".into()]),
            ..RawClient::default()
        }
    }

    fn problems_of(raw: Vec<RawClient>) -> Vec<String> {
        let mut problems = Vec::new();
        let env = Environment::from_pairs(Vec::new());
        assert!(clients(raw, None, &env, &mut problems).is_none());
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_secret_client_defaults_to_client_credentials() {
        let env = Environment::from_pairs(Vec::new());
        let list = clients(vec![entry()], None, &env, &mut Vec::new()).unwrap();
        assert_eq!(list[0].grant_types, ["client_credentials"]);
        assert!(matches!(list[0].credential, ClientCredential::Secret(_)));
    }

    #[test]
    fn duplicates_two_credentials_and_missing_fields_are_refused() {
        let text = problems_of(vec![entry(), entry()]);
        assert!(text.iter().any(|p| p.contains("listed twice")), "{text:?}");
        let mut both = entry();
        both.jwks_uri = Some("https://keys.example/jwks".into());
        let text = problems_of(vec![both]);
        assert!(text.iter().any(|p| p.contains("exactly one")), "{text:?}");
        let text = problems_of(vec![RawClient::default()]);
        for key in ["client_id", "client_secret", "resources", "scopes"] {
            assert!(
                text.iter()
                    .any(|p| p.contains(&format!("clients[0].{key}"))),
                "{key}: {text:?}"
            );
        }
    }

    #[test]
    fn private_keys_hmac_keys_and_code_without_redirects_are_refused() {
        let mut private = entry();
        private.client_secret = None;
        private.jwks = Some(json!({"keys": [{"kty": "EC", "crv": "P-256", "d": "secret",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}));
        let text = problems_of(vec![private]);
        assert!(text.iter().any(|p| p.contains("private")), "{text:?}");
        let mut code = entry();
        code.grant_types = Some(vec!["authorization_code".into()]);
        let text = problems_of(vec![code]);
        assert!(text.iter().any(|p| p.contains("redirect_uris")), "{text:?}");
    }
}
