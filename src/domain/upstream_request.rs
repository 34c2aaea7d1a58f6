//! The authorization request the broker sends to the provider after consent, shaped
//! for the provider's dialect of RFC 8707 (`upstream.profile`).

use url::Url;

use super::pkce;
use crate::redact::Redacted;

/// How the provider wants to hear which API a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// RFC 8707 `resource` (oidc-provider, most certified providers).
    Generic,
    /// Keycloak: its own `audience` parameter; it does not know `resource`.
    Keycloak,
    /// Entra ID: rejects `resource` on v2 endpoints (AADSTS9010010); the API is named
    /// in the scope as `<resource>/.default`.
    Entra,
    /// Nothing is sent: the provider has no notion of audience at login.
    None,
}

impl Profile {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "generic" => Ok(Self::Generic),
            "keycloak" => Ok(Self::Keycloak),
            "entra" => Ok(Self::Entra),
            "none" => Ok(Self::None),
            other => Err(format!(
                "`{other}` is not one of generic, keycloak, entra, none"
            )),
        }
    }
}

/// What goes upstream. `Debug` hides the nonce and the PKCE verifier.
#[derive(Clone)]
pub struct UpstreamAuthorize<'a> {
    pub authorization_endpoint: &'a str,
    pub client_id: &'a str,
    pub callback: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub verifier: &'a str,
    /// Scopes asked of the provider (OpenID's are always included).
    pub scopes: &'a [String],
    /// The upstream name of the API (the resource's audience at the provider).
    pub audience: Option<&'a str>,
    /// Further APIs the grant must reach later by refreshing (the `refresh` exchange
    /// strategy): asked as more `resource`s where the provider understands them
    /// (generic). Entra's refresh tokens reach any consented API anyway; Keycloak and
    /// `none` have no way to say it.
    pub also: &'a [String],
    pub profile: Profile,
}

impl std::fmt::Debug for UpstreamAuthorize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAuthorize")
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("client_id", &self.client_id)
            .field("callback", &self.callback)
            .field("state", &self.state)
            .field("nonce", &Redacted)
            .field("verifier", &Redacted)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("also", &self.also)
            .field("profile", &self.profile)
            .finish()
    }
}

/// How Entra names an API in a scope: `<audience>/.default`.
pub fn entra_default(audience: &str) -> String {
    format!("{}/.default", audience.trim_end_matches('/'))
}

/// The URL to redirect the user's browser to.
pub fn build(request: &UpstreamAuthorize<'_>) -> Result<Url, String> {
    let mut url = Url::parse(request.authorization_endpoint)
        .map_err(|e| format!("the provider's authorization_endpoint is not a URL: {e}"))?;
    let mut scopes: Vec<String> = vec!["openid".to_owned()];
    for scope in request.scopes {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    if let (Profile::Entra, Some(audience)) = (request.profile, request.audience) {
        scopes.push(entra_default(audience));
    }
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", request.client_id)
            .append_pair("redirect_uri", request.callback)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", request.state)
            .append_pair("nonce", request.nonce)
            .append_pair("code_challenge", &pkce::challenge_of(request.verifier))
            .append_pair("code_challenge_method", "S256");
        match (request.profile, request.audience) {
            (Profile::Generic, audience) => {
                for resource in audience
                    .into_iter()
                    .chain(request.also.iter().map(String::as_str))
                {
                    query.append_pair("resource", resource);
                }
            }
            (Profile::Keycloak, Some(audience)) => {
                query.append_pair("audience", audience);
            }
            _ => {}
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(profile: Profile) -> UpstreamAuthorize<'static> {
        UpstreamAuthorize {
            authorization_endpoint: "https://idp.example/auth?tenant=x",
            client_id: "token-broker",
            callback: "https://broker.example/oauth/callback",
            state: "st",
            nonce: "no",
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            scopes: &[],
            audience: Some("https://mcp.example/mcp"),
            also: &[],
            profile,
        }
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_profile_carries_pkce_state_and_nonce() {
        for profile in [
            Profile::Generic,
            Profile::Keycloak,
            Profile::Entra,
            Profile::None,
        ] {
            let pairs = query(&build(&request(profile)).unwrap());
            assert_eq!(get(&pairs, "tenant"), Some("x"), "existing query kept");
            assert_eq!(
                get(&pairs, "code_challenge"),
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
            );
            assert_eq!(get(&pairs, "code_challenge_method"), Some("S256"));
            assert_eq!(get(&pairs, "state"), Some("st"));
            assert_eq!(get(&pairs, "nonce"), Some("no"));
        }
    }

    #[test]
    fn the_audience_is_said_the_way_each_provider_understands() {
        let generic = query(&build(&request(Profile::Generic)).unwrap());
        assert_eq!(get(&generic, "resource"), Some("https://mcp.example/mcp"));
        let keycloak = query(&build(&request(Profile::Keycloak)).unwrap());
        assert_eq!(get(&keycloak, "audience"), Some("https://mcp.example/mcp"));
        assert_eq!(get(&keycloak, "resource"), None);
        let entra = query(&build(&request(Profile::Entra)).unwrap());
        assert_eq!(get(&entra, "resource"), None);
        assert_eq!(
            get(&entra, "scope"),
            Some("openid https://mcp.example/mcp/.default")
        );
        let none = query(&build(&request(Profile::None)).unwrap());
        assert_eq!(get(&none, "resource"), None);
        assert_eq!(get(&none, "audience"), None);
    }

    #[test]
    fn apis_reached_by_refreshing_are_asked_for_where_the_provider_understands() {
        let also = ["https://notes.example/api".to_owned()];
        let resources = |profile| {
            let request = UpstreamAuthorize {
                also: &also,
                ..request(profile)
            };
            query(&build(&request).unwrap())
                .into_iter()
                .filter(|(k, _)| k == "resource")
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            resources(Profile::Generic),
            ["https://mcp.example/mcp", "https://notes.example/api"]
        );
        for profile in [Profile::Keycloak, Profile::Entra, Profile::None] {
            assert!(resources(profile).is_empty());
        }
    }
}
