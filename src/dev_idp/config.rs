//! The development IdP's configuration: users, clients, keys, lifetimes and faults to
//! inject from the start. Everything has a default, so `token-broker dev-idp` needs
//! no file at all; `--config FILE` (TOML, unknown keys refused) replaces any part.

use std::time::Duration;

use serde::Deserialize;

use super::faults::FaultSpec;
use super::keys::SigningAlg;
use crate::redact::Redacted;

/// A user the IdP logs in without a form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub sub: String,
    pub name: String,
    pub email: String,
    /// Stated in ID tokens as `groups`; changed at run time by `POST /_dev/groups`.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A client known to the IdP from the start (others register through `/register`).
/// `Debug` hides the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub client_id: String,
    /// Absent for a public client.
    pub client_secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Scopes the client may receive; absent means every supported scope.
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field("client_secret", &Redacted::option(&self.client_secret))
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDevIdp {
    issuer: Option<String>,
    signing_alg: Option<SigningAlg>,
    access_token_ttl: Option<String>,
    refresh_token_ttl: Option<String>,
    code_ttl: Option<String>,
    key_grace: Option<String>,
    scopes_supported: Option<Vec<String>>,
    default_scopes: Option<Vec<String>>,
    default_user: Option<String>,
    users: Option<Vec<User>>,
    clients: Option<Vec<ClientSpec>>,
    faults: Option<Vec<FaultSpec>>,
    opaque_access_tokens: Option<bool>,
    dynamic_registration: Option<bool>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct DevIdpConfig {
    /// The issuer; `None` means `http://` + the bound address.
    pub issuer: Option<String>,
    pub signing_alg: SigningAlg,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
    /// How long a rotated-out key stays in the JWKS.
    pub key_grace: Duration,
    pub scopes_supported: Vec<String>,
    /// Granted when an authorization request names no scope.
    pub default_scopes: Vec<String>,
    /// Logged in when the request carries no `login_hint`.
    pub default_user: String,
    pub users: Vec<User>,
    pub clients: Vec<ClientSpec>,
    pub faults: Vec<FaultSpec>,
    /// Issue opaque access tokens (resource servers must introspect them) instead of JWTs.
    pub opaque_access_tokens: bool,
    /// Offer RFC 7591 registration (default true); false mimics Entra or Google.
    pub dynamic_registration: bool,
    /// Registered clients' secrets expire this long after registration
    /// (`client_secret_expires_at`); `None`, the default: never. Tests only.
    pub registered_secret_ttl: Option<Duration>,
}

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

impl Default for DevIdpConfig {
    fn default() -> Self {
        let all_grants = [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            TOKEN_EXCHANGE,
            JWT_BEARER,
        ];
        Self {
            issuer: None,
            signing_alg: SigningAlg::Rs256,
            access_token_ttl: Duration::from_secs(300),
            refresh_token_ttl: Duration::from_secs(86_400),
            code_ttl: Duration::from_secs(60),
            key_grace: Duration::from_secs(600),
            scopes_supported: [
                "openid",
                "profile",
                "email",
                "offline_access",
                "notes:read",
                "notes:write",
            ]
            .map(String::from)
            .to_vec(),
            default_scopes: ["openid", "profile", "notes:read"]
                .map(String::from)
                .to_vec(),
            default_user: "alice".to_owned(),
            users: vec![
                User {
                    sub: "alice".to_owned(),
                    name: "Alice Example".to_owned(),
                    email: "alice@example.com".to_owned(),
                    groups: vec!["mcp-users".to_owned(), "staff".to_owned()],
                },
                User {
                    sub: "bob".to_owned(),
                    name: "Bob Example".to_owned(),
                    email: "bob@example.com".to_owned(),
                    groups: vec!["staff".to_owned()],
                },
            ],
            clients: vec![
                ClientSpec {
                    client_id: "token-broker".to_owned(),
                    client_secret: Some("token-broker-secret".to_owned()),
                    redirect_uris: vec![
                        "http://127.0.0.1/oauth/callback".to_owned(),
                        "http://localhost/oauth/callback".to_owned(),
                    ],
                    grant_types: all_grants.map(String::from).to_vec(),
                    scopes: None,
                },
                // An enterprise user's MCP client: signs the user in (an ID token) and
                // trades it for ID-JAGs (`id_jag.rs`).
                ClientSpec {
                    client_id: "demo-agent".to_owned(),
                    client_secret: Some("demo-agent-secret".to_owned()),
                    redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
                    grant_types: ["authorization_code", "refresh_token", TOKEN_EXCHANGE]
                        .map(String::from)
                        .to_vec(),
                    scopes: None,
                },
                ClientSpec {
                    client_id: "demo-service".to_owned(),
                    client_secret: Some("demo-service-secret".to_owned()),
                    redirect_uris: Vec::new(),
                    grant_types: ["client_credentials", TOKEN_EXCHANGE]
                        .map(String::from)
                        .to_vec(),
                    scopes: None,
                },
            ],
            faults: Vec::new(),
            opaque_access_tokens: false,
            dynamic_registration: true,
            registered_secret_ttl: None,
        }
    }
}

impl DevIdpConfig {
    /// Reads a TOML file; keys it leaves out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let value: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        let raw: RawDevIdp = serde_path_to_error::deserialize(value)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        let mut config = Self::default();
        let duration = |key: &str, text: Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(t) => {
                humantime::parse_duration(&t).map_err(|_| format!("{key}: `{t}` is not a duration"))
            }
        };
        config.issuer = raw.issuer.or(config.issuer);
        config.signing_alg = raw.signing_alg.unwrap_or(config.signing_alg);
        config.access_token_ttl = duration(
            "access_token_ttl",
            raw.access_token_ttl,
            config.access_token_ttl,
        )?;
        config.refresh_token_ttl = duration(
            "refresh_token_ttl",
            raw.refresh_token_ttl,
            config.refresh_token_ttl,
        )?;
        config.code_ttl = duration("code_ttl", raw.code_ttl, config.code_ttl)?;
        config.key_grace = duration("key_grace", raw.key_grace, config.key_grace)?;
        config.scopes_supported = raw.scopes_supported.unwrap_or(config.scopes_supported);
        config.default_scopes = raw.default_scopes.unwrap_or(config.default_scopes);
        config.default_user = raw.default_user.unwrap_or(config.default_user);
        config.users = raw.users.unwrap_or(config.users);
        config.clients = raw.clients.unwrap_or(config.clients);
        config.faults = raw.faults.unwrap_or_default();
        config.opaque_access_tokens = raw.opaque_access_tokens.unwrap_or(false);
        config.dynamic_registration = raw.dynamic_registration.unwrap_or(true);
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.users.iter().any(|u| u.sub == self.default_user) {
            return Err(format!(
                "default_user `{}` is not among users",
                self.default_user
            ));
        }
        if let Some(bad) = self
            .default_scopes
            .iter()
            .find(|s| !self.scopes_supported.contains(s))
        {
            return Err(format!(
                "default_scopes: `{bad}` is not in scopes_supported"
            ));
        }
        for client in &self.clients {
            if client.grant_types.iter().any(|g| g == "authorization_code")
                && client.redirect_uris.is_empty()
            {
                return Err(format!(
                    "client `{}` uses authorization_code but has no redirect_uris",
                    client.client_id
                ));
            }
        }
        Ok(())
    }
}
