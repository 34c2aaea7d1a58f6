//! The authorization request (RFC 6749 §4.1.1 with OAuth 2.1's PKCE, RFC 8707
//! `resource`), checked against the registered client and the configured resources.
//! Until the client and its redirect URI are known good, an error is shown to the
//! user and never redirected: an unregistered redirect URI must receive nothing.

use super::pkce;
use super::redirect_uri;
use super::resource::same_resource;
use super::scope::Scopes;

/// The request's parameters (single values already de-duplicated by the caller).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams<'a> {
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub response_type: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub state: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub resources: Vec<&'a str>,
}

/// What the broker knows about the client named by `client_id`.
#[derive(Debug, Clone)]
pub struct ClientView<'a> {
    pub client_id: &'a str,
    pub redirect_uris: &'a [String],
}

/// A protected resource the broker may issue tokens for.
#[derive(Debug, Clone)]
pub struct ResourceView<'a> {
    pub uri: &'a str,
    pub scopes_supported: &'a [String],
}

/// Scopes every client may ask for besides the resources' own: OpenID's and
/// `offline_access`, which some clients need to be offered refresh tokens.
pub const BASE_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub client_id: String,
    /// The redirect URI exactly as presented (the token request must repeat it).
    pub redirect_uri: String,
    pub code_challenge: String,
    pub state: Option<String>,
    pub scopes: Scopes,
    /// The configured resource URI (as configured, whatever slash the client sent).
    pub resource: Option<String>,
}

/// Why the request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// Shown on an error page: the client or redirect URI cannot be trusted.
    #[error("{0}")]
    Show(String),
    /// Sent back to the (verified) redirect URI with `error`, `state` and `iss`.
    #[error("{error}: {description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Checks `params` for `client` against `resources`.
pub fn validate(
    params: &AuthorizeParams<'_>,
    client: Option<&ClientView<'_>>,
    resources: &[ResourceView<'_>],
) -> Result<Authorization, AuthorizeError> {
    let client = client.ok_or_else(|| AuthorizeError::Show("unknown client_id".to_owned()))?;
    let redirect = match (params.redirect_uri, client.redirect_uris) {
        (Some(presented), registered) if redirect_uri::any_matches(registered, presented) => {
            presented
        }
        (Some(_), _) => {
            return Err(AuthorizeError::Show(
                "redirect_uri is not registered for this client".to_owned(),
            ));
        }
        // RFC 6749 §3.1.2.3: optional only when exactly one URI is registered.
        (None, [only]) => only.as_str(),
        (None, _) => return Err(AuthorizeError::Show("redirect_uri is required".to_owned())),
    };
    let state = params.state.map(str::to_owned);
    let refuse = |error: &'static str, description: String| AuthorizeError::Redirect {
        redirect_uri: redirect.to_owned(),
        state: state.clone(),
        error,
        description,
    };
    if params.response_type != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "response_type must be code".to_owned(),
        ));
    }
    let challenge = params.code_challenge.ok_or_else(|| {
        refuse(
            "invalid_request",
            "code_challenge is required (PKCE S256)".to_owned(),
        )
    })?;
    pkce::check_challenge(challenge, params.code_challenge_method)
        .map_err(|e| refuse("invalid_request", e.to_string()))?;
    let resource = match params.resources.as_slice() {
        [] => None,
        [one] => Some(
            resources
                .iter()
                .find(|r| same_resource(r.uri, one))
                .ok_or_else(|| {
                    refuse(
                        "invalid_target",
                        format!("`{one}` is not a resource this server protects"),
                    )
                })?,
        ),
        _ => {
            return Err(refuse(
                "invalid_target",
                "ask for one resource at a time".to_owned(),
            ));
        }
    };
    let scopes =
        Scopes::parse(params.scope.unwrap_or("")).map_err(|e| refuse("invalid_scope", e))?;
    let mut allowed = Scopes::of(BASE_SCOPES.iter().copied());
    let offered: Vec<&ResourceView<'_>> = resource.into_iter().collect();
    let offered = if offered.is_empty() {
        resources.iter().collect()
    } else {
        offered
    };
    for r in offered {
        allowed = allowed.union(&Scopes::of(r.scopes_supported.iter().cloned()));
    }
    // The client's registered `scope` does not narrow this: RFC 7591 §2 calls it the
    // scopes the client "can use", and MCP clients register with the scope of their
    // first challenge, then ask for more when a tool needs it (step-up). The resource's
    // scopes bound the request, and the user approves it on the consent page.
    let excess = scopes.missing_from(&allowed);
    if !excess.is_empty() {
        return Err(refuse(
            "invalid_scope",
            format!("scope not allowed: {excess}"),
        ));
    }
    Ok(Authorization {
        client_id: client.client_id.to_owned(),
        redirect_uri: redirect.to_owned(),
        code_challenge: challenge.to_owned(),
        state,
        scopes,
        resource: resource.map(|r| r.uri.to_owned()),
    })
}

#[cfg(test)]
mod tests;
