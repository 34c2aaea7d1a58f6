//! Identity Assertion JWT Authorization Grants (draft-ietf-oauth-identity-assertion-
//! authz-grant §4.3; the MCP extension "Enterprise-Managed Authorization" §4): an
//! RFC 8693 exchange with `requested_token_type=urn:ietf:params:oauth:token-type:id-jag`
//! trades the user's ID token (issued to the calling client) — or an access token the
//! client holds for the user — for a short-lived ID-JAG for the authorization server
//! named by `audience`, typed `oauth-id-jag+jwt` and signed with the IdP's keys. The
//! `client_id` claim is the calling client's id: the IdP assumes the client goes by the
//! same id at the authorization server (a shared namespace, as with Client ID Metadata
//! Documents, draft §5).

use std::time::Duration;

use serde_json::{Value, json};

use super::error::{ErrorCode, IdpError, err};
use super::idp::{Client, Idp, random_token};
use super::params::Params;
use super::token::TokenResponse;
use crate::domain::id_jag::{ID_JAG_TYPE, TOKEN_TYPE};
use crate::domain::scope::Scopes;

const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// How long an ID-JAG lives: the extension wants them short-lived.
pub const LIFETIME: Duration = Duration::from_secs(300);

/// Issues an ID-JAG for the exchange request `params` from `client`.
pub fn issue(idp: &Idp, client: &Client, params: &Params) -> Result<TokenResponse, IdpError> {
    let subject_token = params.required("subject_token")?;
    let sub = match params.required("subject_token_type")? {
        // Draft §4.3.3: the ID token's audience must be the client asking.
        ID_TOKEN_TYPE => idp.verify_id_token(subject_token, &client.client_id),
        ACCESS_TOKEN_TYPE => idp
            .verify_access(subject_token)
            .filter(|claims| claims.client_id == client.client_id)
            .map(|claims| claims.sub),
        other => {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("unsupported subject_token_type {other} for an ID-JAG"),
            ));
        }
    }
    .ok_or_else(|| {
        err(
            ErrorCode::InvalidGrant,
            "subject_token is invalid, expired or not issued to this client",
        )
    })?;
    let audience = params.required("audience")?;
    let resource = params.one("resource")?;
    let allowed = client.scopes.clone().unwrap_or_else(|| idp.supported());
    let scopes = match params.one("scope")? {
        Some(text) => Scopes::parse(text).map_err(|e| err(ErrorCode::InvalidScope, e))?,
        None => allowed.clone(),
    };
    let unknown = scopes.missing_from(&allowed);
    if !unknown.is_empty() {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("this client may not be granted: {unknown}"),
        ));
    }
    let now = idp.clock.unix();
    let mut claims = json!({
        "iss": idp.issuer,
        "sub": sub,
        "aud": audience,
        "client_id": client.client_id,
        "jti": random_token(),
        "iat": now,
        "exp": now + LIFETIME.as_secs(),
        "auth_time": now,
        "resource": resource,
        "scope": (!scopes.is_empty()).then(|| scopes.to_string()),
        "email": idp.user(&sub).map(|u| u.email.clone()),
    });
    if let Value::Object(map) = &mut claims {
        map.retain(|_, v| !v.is_null());
    }
    Ok(TokenResponse {
        access_token: idp.sign(ID_JAG_TYPE, &claims)?,
        // Draft §4.3.4: not an access token.
        token_type: "N_A",
        expires_in: LIFETIME.as_secs(),
        scope: (!scopes.is_empty()).then(|| scopes.to_string()),
        issued_token_type: Some(TOKEN_TYPE),
        ..TokenResponse::default()
    })
}
