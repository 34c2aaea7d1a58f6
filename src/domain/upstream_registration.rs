//! What proxy mode registers at the provider for one MCP client (RFC 7591): the
//! metadata of the broker's own leg — the broker's callback, the code and refresh
//! grants, `client_secret_basic` — never the MCP client's. Its `scope` must cover
//! everything the broker will ask the provider for on the client's behalf (`openid`,
//! `offline_access`, the client's scopes, as `upstream.profile` says them); a narrower
//! one makes every login end in the provider's `invalid_scope`.
//!
//! Per profile:
//! - `generic` and `none`: no `scope`. RFC 7591 §2 lets the provider apply its default,
//!   which for oidc-provider, Auth0-style and most certified providers is "any scope the
//!   provider offers"; a `scope` would be checked against the provider's own scope list,
//!   which seldom names an MCP server's scopes (oidc-provider refuses resource-server
//!   scopes there), and would then bound what the broker can ask. Nothing is lost: only
//!   the broker holds the upstream client's secret, and it asks only for what it
//!   validated against `scopes_supported`.
//! - `keycloak`: no `scope`. Keycloak turns a registration's `scope` into the client's
//!   default client scopes, replacing the realm's defaults and optional ones
//!   (`offline_access` among them); without it the realm's policy applies.
//! - `entra`: Entra names the API in the scope (`<audience>/.default`), so the scope is
//!   spelled out the way the login asks: `openid offline_access`, the client's scopes and
//!   each configured audience's `.default`.

use serde_json::{Value, json};

use super::scope::Scopes;
use super::upstream_request::{Profile, entra_default};

/// The grants the broker's leg uses: the login's code and the provider refresh that
/// keeps a grant's provider tokens fresh (`refresh_token`).
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

/// How the broker authenticates at the provider's token endpoint.
pub const TOKEN_ENDPOINT_AUTH_METHOD: &str = "client_secret_basic";

/// The `scope` to register for a client that registered `client_scopes`, or `None` to
/// leave it to the provider (see the module documentation).
pub fn scope(
    profile: Profile,
    client_scopes: Option<&Scopes>,
    audiences: &[String],
) -> Option<String> {
    match profile {
        Profile::Generic | Profile::None | Profile::Keycloak => None,
        Profile::Entra => {
            let mut scopes = vec!["openid".to_owned(), "offline_access".to_owned()];
            let named = client_scopes
                .into_iter()
                .flat_map(Scopes::iter)
                .map(str::to_owned)
                .chain(audiences.iter().map(|a| entra_default(a)));
            for scope in named {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            Some(scopes.join(" "))
        }
    }
}

/// How long before its expiry an upstream secret is renewed: a login that starts just
/// before must still be able to redeem its code.
pub const SECRET_RENEWAL_MARGIN_SECS: u64 = 300;

/// Whether an upstream secret expiring at `expires_at` (0 or `None`: never) must be
/// renewed before a login that starts `now`.
pub fn secret_expired(expires_at: Option<u64>, now: u64) -> bool {
    matches!(expires_at, Some(at) if at != 0 && at <= now.saturating_add(SECRET_RENEWAL_MARGIN_SECS))
}

/// The registration body for an MCP client named `client_name`.
pub fn body(callback: &str, client_name: Option<&str>, scope: Option<&str>) -> Value {
    let mut body = json!({
        "redirect_uris": [callback],
        "grant_types": GRANT_TYPES,
        "response_types": ["code"],
        "token_endpoint_auth_method": TOKEN_ENDPOINT_AUTH_METHOD,
        "client_name": format!("{} (via token-broker)", client_name.unwrap_or("MCP client")),
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk_scope() -> Scopes {
        Scopes::of(["notes:read", "notes:write"])
    }

    #[test]
    fn generic_none_and_keycloak_leave_the_scope_to_the_provider() {
        for profile in [Profile::Generic, Profile::None, Profile::Keycloak] {
            assert_eq!(scope(profile, Some(&sdk_scope()), &[]), None, "{profile:?}");
            assert_eq!(scope(profile, None, &[]), None, "{profile:?}");
            let body = body("https://b.example/oauth/callback", Some("SDK"), None);
            assert!(body.get("scope").is_none());
        }
    }

    #[test]
    fn entra_registers_what_the_login_asks_for() {
        let audiences = [
            "api://notes".to_owned(),
            "https://mcp.example/mcp/".to_owned(),
        ];
        assert_eq!(
            scope(Profile::Entra, Some(&sdk_scope()), &audiences).as_deref(),
            Some(
                "openid offline_access notes:read notes:write api://notes/.default \
                 https://mcp.example/mcp/.default"
            )
        );
        assert_eq!(
            scope(Profile::Entra, None, &[]).as_deref(),
            Some("openid offline_access")
        );
    }

    #[test]
    fn a_secret_is_renewed_shortly_before_it_expires_and_never_when_it_does_not() {
        assert!(!secret_expired(None, 1_000));
        assert!(!secret_expired(Some(0), u64::MAX));
        assert!(!secret_expired(
            Some(1_000 + SECRET_RENEWAL_MARGIN_SECS + 1),
            1_000
        ));
        assert!(secret_expired(
            Some(1_000 + SECRET_RENEWAL_MARGIN_SECS),
            1_000
        ));
        assert!(secret_expired(Some(999), 1_000));
    }

    #[test]
    fn the_body_describes_the_brokers_leg_not_the_mcp_client() {
        let body = body(
            "https://b.example/oauth/callback",
            Some("Claude"),
            Some("openid offline_access"),
        );
        assert_eq!(
            body["redirect_uris"],
            json!(["https://b.example/oauth/callback"])
        );
        assert_eq!(
            body["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(body["response_types"], json!(["code"]));
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
        assert_eq!(body["client_name"], "Claude (via token-broker)");
        assert_eq!(body["scope"], "openid offline_access");
    }
}
