//! `POST /token`: client authentication, then one function per grant. The exchange
//! grants (RFC 8693 and Entra's on-behalf-of) live in `exchange.rs`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::authorize::is_resource;
use super::config::{JWT_BEARER, TOKEN_EXCHANGE};
use super::error::{ErrorCode, IdpError, err};
use super::exchange;
use super::idp::{AccessGrant, Client, Idp, Issued, Refresh, random_token};
use super::params::Form;
use super::params::Params;
use crate::domain::pkce;
use crate::domain::scope::Scopes;
use crate::redact::Redacted;

/// The successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1). `Debug` hides
/// the tokens.
#[derive(Serialize, Default)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Entra's on-behalf-of responses carry this too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext_expires_in: Option<u64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &Redacted)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &Redacted::option(&self.refresh_token))
            .field("id_token", &Redacted::option(&self.id_token))
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .field("ext_expires_in", &self.ext_expires_in)
            .finish()
    }
}

pub async fn token(
    idp: web::Data<Idp>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, IdpError> {
    let grant_type = params.required("grant_type")?;
    idp.faults.record(&format!("token:{grant_type}"));
    let client = super::resource::authenticate(&idp, &req, &params)?;
    if !client.allows_grant(grant_type) {
        return Err(if is_known(grant_type) {
            err(
                ErrorCode::UnauthorizedClient,
                format!("client may not use {grant_type}"),
            )
        } else {
            err(
                ErrorCode::UnsupportedGrantType,
                format!("unsupported grant_type {grant_type}"),
            )
        });
    }
    let response = match grant_type {
        "authorization_code" => authorization_code(&idp, &client, &params)?,
        "refresh_token" => refresh_token(&idp, &client, &params)?,
        "client_credentials" => client_credentials(&idp, &client, &params)?,
        TOKEN_EXCHANGE => exchange::token_exchange(&idp, &client, &params)?,
        JWT_BEARER => exchange::on_behalf_of(&idp, &client, &params)?,
        other => {
            return Err(err(
                ErrorCode::UnsupportedGrantType,
                format!("unsupported grant_type {other}"),
            ));
        }
    };
    Ok(HttpResponse::Ok().json(response))
}

fn is_known(grant: &str) -> bool {
    matches!(
        grant,
        "authorization_code" | "refresh_token" | "client_credentials" | TOKEN_EXCHANGE | JWT_BEARER
    )
}

fn authorization_code(
    idp: &Idp,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, IdpError> {
    let code_value = params.required("code")?;
    let redirect = params.required("redirect_uri")?;
    let verifier = params.required("code_verifier")?;
    let now = idp.clock.unix();
    let mut store = idp.store()?;
    let code = store
        .codes
        .get(code_value)
        .cloned()
        .ok_or_else(|| err(ErrorCode::InvalidGrant, "unknown authorization code"))?;
    if let Some(issued) = &code.redeemed {
        // RFC 6749 §4.1.2: a replayed code revokes what it issued.
        Idp::revoke_issued(
            &mut store,
            issued,
            now + idp.config.access_token_ttl.as_secs(),
        );
        return Err(err(
            ErrorCode::InvalidGrant,
            "authorization code already used",
        ));
    }
    if now >= code.expires_at {
        return Err(err(ErrorCode::InvalidGrant, "authorization code expired"));
    }
    if code.client_id != client.client_id {
        return Err(err(
            ErrorCode::InvalidGrant,
            "code was issued to another client",
        ));
    }
    if code.redirect_uri != redirect {
        return Err(err(
            ErrorCode::InvalidGrant,
            "redirect_uri differs from the authorization request",
        ));
    }
    pkce::verify(verifier, &code.challenge)
        .map_err(|e| err(ErrorCode::InvalidGrant, e.to_string()))?;
    let audiences = token_audiences(&resources(params)?, &code.resources, &client.client_id)?;

    let (access, claims) = idp.mint_access(AccessGrant {
        sub: &code.sub,
        client_id: &client.client_id,
        audiences: &audiences,
        scopes: &code.scopes,
        act: None,
        entra: false,
    })?;
    let family = random_token();
    let refresh = client.allows_grant("refresh_token").then(|| {
        idp.issue_refresh(
            &mut store,
            Refresh {
                client_id: client.client_id.clone(),
                sub: code.sub.clone(),
                scopes: code.scopes.clone(),
                resources: code.resources.clone(),
                expires_at: now + idp.config.refresh_token_ttl.as_secs(),
                family: family.clone(),
            },
        )
    });
    if let Some(stored) = store.codes.get_mut(code_value) {
        stored.redeemed = Some(Issued {
            jti: Some(claims.jti.clone()),
            family: refresh.as_ref().map(|_| family),
        });
    }
    drop(store);
    let id_token = if code.scopes.contains("openid") {
        Some(idp.mint_id_token(&code.sub, &client.client_id, code.nonce.as_deref(), &access)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: idp.config.access_token_ttl.as_secs(),
        refresh_token: refresh,
        id_token,
        scope: Some(code.scopes.to_string()),
        ..TokenResponse::default()
    })
}

fn refresh_token(idp: &Idp, client: &Client, params: &Params) -> Result<TokenResponse, IdpError> {
    let presented = params.required("refresh_token")?;
    let now = idp.clock.unix();
    let mut store = idp.store()?;
    if let Some(family) = store.spent.get(presented).cloned() {
        // Reuse of a rotated-out token: someone else holds the family; end it.
        store.refresh.retain(|_, r| r.family != family);
        return Err(err(
            ErrorCode::InvalidGrant,
            "refresh token was already used",
        ));
    }
    let old = store
        .refresh
        .get(presented)
        .cloned()
        .ok_or_else(|| err(ErrorCode::InvalidGrant, "unknown or revoked refresh token"))?;
    if now >= old.expires_at {
        return Err(err(ErrorCode::InvalidGrant, "refresh token expired"));
    }
    if old.client_id != client.client_id {
        return Err(err(
            ErrorCode::InvalidGrant,
            "refresh token was issued to another client",
        ));
    }
    let scopes = match params.one("scope")? {
        None => old.scopes.clone(),
        Some(text) => {
            let asked = Scopes::parse(text).map_err(|e| err(ErrorCode::InvalidScope, e))?;
            if !asked.is_subset(&old.scopes) {
                return Err(err(
                    ErrorCode::InvalidScope,
                    format!("not granted: {}", asked.missing_from(&old.scopes)),
                ));
            }
            asked
        }
    };
    let audiences = token_audiences(&resources(params)?, &old.resources, &client.client_id)?;
    store.refresh.remove(presented);
    store.spent.insert(presented.to_owned(), old.family.clone());
    let refresh = idp.issue_refresh(
        &mut store,
        Refresh {
            expires_at: now + idp.config.refresh_token_ttl.as_secs(),
            ..old.clone()
        },
    );
    drop(store);
    let (access, _) = idp.mint_access(AccessGrant {
        sub: &old.sub,
        client_id: &client.client_id,
        audiences: &audiences,
        scopes: &scopes,
        act: None,
        entra: false,
    })?;
    // OIDC Core §12.2: a refresh may bring a new ID token, saying who the user is now.
    let id_token = if scopes.contains("openid") {
        Some(idp.mint_id_token(&old.sub, &client.client_id, None, &access)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: idp.config.access_token_ttl.as_secs(),
        refresh_token: Some(refresh),
        id_token,
        scope: Some(scopes.to_string()),
        ..TokenResponse::default()
    })
}

fn client_credentials(
    idp: &Idp,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, IdpError> {
    if client.secret.is_none() {
        return Err(err(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let allowed = client.scopes.clone().unwrap_or_else(|| idp.supported());
    let scopes = match params.one("scope")? {
        None => Scopes::default(),
        Some(text) => Scopes::parse(text).map_err(|e| err(ErrorCode::InvalidScope, e))?,
    };
    if !scopes.is_subset(&allowed) {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("not allowed: {}", scopes.missing_from(&allowed)),
        ));
    }
    let mut targets: Vec<&str> = resources(params)?;
    targets.extend(params.all("audience"));
    let audiences = token_audiences(&targets, &[], &client.client_id)?;
    let (access, _) = idp.mint_access(AccessGrant {
        sub: &client.client_id,
        client_id: &client.client_id,
        audiences: &audiences,
        scopes: &scopes,
        act: None,
        entra: false,
    })?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: idp.config.access_token_ttl.as_secs(),
        scope: (!scopes.is_empty()).then(|| scopes.to_string()),
        ..TokenResponse::default()
    })
}

/// The `resource` parameters, each an absolute URI without fragment (RFC 8707 §2).
pub fn resources(params: &Params) -> Result<Vec<&str>, IdpError> {
    let resources = params.all("resource");
    match resources.iter().find(|r| !is_resource(r)) {
        Some(bad) => Err(err(
            ErrorCode::InvalidTarget,
            format!("`{bad}` is not an absolute URI without fragment"),
        )),
        None => Ok(resources),
    }
}

/// The audiences of a new token: the requested resources (each within what the grant
/// covers, when it names any), else the grant's resources, else the client itself.
pub fn token_audiences(
    requested: &[&str],
    granted: &[String],
    client_id: &str,
) -> Result<Vec<String>, IdpError> {
    if !granted.is_empty()
        && let Some(outside) = requested.iter().find(|r| !granted.iter().any(|g| g == *r))
    {
        return Err(err(
            ErrorCode::InvalidTarget,
            format!("`{outside}` was not authorized"),
        ));
    }
    Ok(if !requested.is_empty() {
        requested.iter().map(|r| (*r).to_owned()).collect()
    } else if !granted.is_empty() {
        granted.to_vec()
    } else {
        vec![client_id.to_owned()]
    })
}

#[cfg(test)]
mod tests {
    use super::TokenResponse;

    #[test]
    fn debug_never_shows_the_tokens() {
        let response = TokenResponse {
            access_token: "at-s3cret".into(),
            refresh_token: Some("rt-s3cret".into()),
            id_token: Some("idt-s3cret".into()),
            ..Default::default()
        };
        let text = format!("{response:?}");
        assert!(
            !text.contains("s3cret") && text.contains("<redacted>"),
            "{text}"
        );
    }
}
