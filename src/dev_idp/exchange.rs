//! The exchange grants: RFC 8693 token exchange (an ID-JAG when asked for one:
//! `id_jag.rs`), and the JWT-bearer on-behalf-of grant
//! in the shape Entra ID uses, so the broker's exchange strategies can be tested.

use serde_json::json;

use super::error::{ErrorCode, IdpError, err};
use super::idp::{AccessGrant, Client, Idp};
use super::params::Params;
use super::token::{TokenResponse, resources, token_audiences};
use crate::domain::scope::Scopes;

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The knob that makes exchanges fail, as an IdP without exchange rights would.
fn refused(idp: &Idp) -> Option<IdpError> {
    let code = idp.faults.refuse_exchange()?;
    let code =
        serde_json::from_value::<ErrorCode>(json!(code)).unwrap_or(ErrorCode::UnauthorizedClient);
    Some(err(code, "token exchange is refused by this provider"))
}

/// RFC 8693 §2.1: a token for the requested audience/resource with the subject's
/// `sub` and a down-scoped `scope`.
pub fn token_exchange(
    idp: &Idp,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, IdpError> {
    if let Some(error) = refused(idp) {
        return Err(error);
    }
    if params.one("requested_token_type")? == Some(crate::domain::id_jag::TOKEN_TYPE) {
        return super::id_jag::issue(idp, client, params);
    }
    let subject_token = params.required("subject_token")?;
    let subject_type = params.required("subject_token_type")?;
    if subject_type != ACCESS_TOKEN_TYPE && subject_type != JWT_TOKEN_TYPE {
        return Err(err(
            ErrorCode::InvalidRequest,
            format!("unsupported subject_token_type {subject_type}"),
        ));
    }
    if let Some(requested) = params.one("requested_token_type")?
        && requested != ACCESS_TOKEN_TYPE
        && requested != JWT_TOKEN_TYPE
    {
        return Err(err(
            ErrorCode::InvalidRequest,
            format!("cannot issue requested_token_type {requested}"),
        ));
    }
    let subject = idp.verify_access(subject_token).ok_or_else(|| {
        err(
            ErrorCode::InvalidGrant,
            "subject_token is invalid, expired or revoked",
        )
    })?;
    let act = match params.one("actor_token")? {
        None => None,
        Some(actor_token) => {
            let actor = idp.verify_access(actor_token).ok_or_else(|| {
                err(
                    ErrorCode::InvalidGrant,
                    "actor_token is invalid, expired or revoked",
                )
            })?;
            Some(json!({ "sub": actor.sub }))
        }
    };
    let subject_scopes = subject.scopes();
    let scopes = match params.one("scope")? {
        None => subject_scopes.clone(),
        Some(text) => Scopes::parse(text).map_err(|e| err(ErrorCode::InvalidScope, e))?,
    };
    if !scopes.is_subset(&subject_scopes) {
        return Err(err(
            ErrorCode::InvalidScope,
            format!(
                "the subject token does not carry: {}",
                scopes.missing_from(&subject_scopes)
            ),
        ));
    }
    let mut targets = resources(params)?;
    targets.extend(params.all("audience"));
    let audiences = token_audiences(&targets, &[], &client.client_id)?;
    let (access, _) = idp.mint_access(AccessGrant {
        sub: &subject.sub,
        client_id: &client.client_id,
        audiences: &audiences,
        scopes: &scopes,
        act,
        entra: false,
    })?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: idp.config.access_token_ttl.as_secs(),
        scope: (!scopes.is_empty()).then(|| scopes.to_string()),
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        ..TokenResponse::default()
    })
}

/// Entra's on-behalf-of flow: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
/// `requested_token_use=on_behalf_of`, the user's token as `assertion` (its `aud` must
/// be the calling client), and `scope` naming the downstream API as
/// `<resource>/<scope>` (or `<resource>/.default` for everything the user has).
pub fn on_behalf_of(
    idp: &Idp,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, IdpError> {
    if let Some(error) = refused(idp) {
        return Err(error);
    }
    if params.one("requested_token_use")? != Some("on_behalf_of") {
        return Err(err(
            ErrorCode::InvalidRequest,
            "requested_token_use must be on_behalf_of",
        ));
    }
    let assertion = params.required("assertion")?;
    let subject = idp.verify_access(assertion).ok_or_else(|| {
        err(
            ErrorCode::InvalidGrant,
            "assertion is invalid, expired or revoked",
        )
    })?;
    if !subject.audiences().iter().any(|a| a == &client.client_id) {
        return Err(err(
            ErrorCode::InvalidGrant,
            "assertion audience does not match the calling client",
        ));
    }
    let requested =
        Scopes::parse(params.required("scope")?).map_err(|e| err(ErrorCode::InvalidScope, e))?;
    let mut resource: Option<&str> = None;
    let mut names = Vec::new();
    for full in requested.iter() {
        let (res, name) = full.rsplit_once('/').ok_or_else(|| {
            err(
                ErrorCode::InvalidScope,
                format!("`{full}` must be <resource>/<scope>"),
            )
        })?;
        if resource.is_some_and(|r| r != res) {
            return Err(err(
                ErrorCode::InvalidScope,
                "all scopes must name the same resource",
            ));
        }
        resource = Some(res);
        names.push(name);
    }
    let resource = resource.ok_or_else(|| err(ErrorCode::InvalidScope, "scope is required"))?;
    let scopes = if names == [".default"] {
        subject.scopes()
    } else {
        Scopes::of(names)
    };
    let unknown = scopes.missing_from(&idp.supported());
    if !unknown.is_empty() {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("unknown scope: {unknown}"),
        ));
    }
    let (access, _) = idp.mint_access(AccessGrant {
        sub: &subject.sub,
        client_id: &client.client_id,
        audiences: &[resource.to_owned()],
        scopes: &scopes,
        act: None,
        entra: true,
    })?;
    let ttl = idp.config.access_token_ttl.as_secs();
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ttl,
        ext_expires_in: Some(ttl),
        scope: Some(requested.to_string()),
        ..TokenResponse::default()
    })
}
