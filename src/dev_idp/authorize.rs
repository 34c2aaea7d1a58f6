//! `GET /authorize`: the authorization-code flow with PKCE S256. No login form: the
//! configured user, or the one named in `login_hint`, is logged in at once.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use url::Url;

use super::error::{ErrorCode, IdpError, err};
use super::idp::{Code, Idp, random_token};
use super::params::{ParamError, Params};
use crate::domain::scope::Scopes;
use crate::domain::{pkce, redirect_uri};

pub async fn authorize(
    idp: web::Data<Idp>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, IdpError> {
    let params = Params::new(query.into_inner());
    // Until client and redirect URI are known good, errors are shown, never redirected.
    let client_id = params.required("client_id")?;
    let client = idp
        .store()?
        .clients
        .get(client_id)
        .cloned()
        .ok_or_else(|| err(ErrorCode::InvalidRequest, "unknown client_id"))?;
    let redirect = params.required("redirect_uri")?;
    if !redirect_uri::any_matches(&client.redirect_uris, redirect) {
        return Err(err(
            ErrorCode::InvalidRequest,
            "redirect_uri is not registered for this client",
        ));
    }
    let target =
        Url::parse(redirect).map_err(|_| IdpError::invalid_request("redirect_uri is not a URL"))?;
    let state = params.one("state").ok().flatten().map(str::to_owned);
    let respond = |pairs: Vec<(&str, String)>| {
        let mut url = target.clone();
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, &v);
            }
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &idp.issuer);
        }
        HttpResponse::Found()
            .insert_header((header::LOCATION, url.to_string()))
            .finish()
    };
    match issue_code(&idp, &params, &client, redirect) {
        Ok(code) => Ok(respond(vec![("code", code)])),
        Err((code, description)) => Ok(respond(vec![
            ("error", code.as_str().to_owned()),
            ("error_description", description),
        ])),
    }
}

/// Checks the rest of the request and stores a code; errors go back to the client.
fn issue_code(
    idp: &Idp,
    params: &Params,
    client: &super::idp::Client,
    redirect: &str,
) -> Result<String, (ErrorCode, String)> {
    let bad = |code: ErrorCode, text: &str| (code, text.to_owned());
    // Worded as the broker's own `invalid_request` errors read in a redirect.
    let invalid = |e: ParamError| (ErrorCode::InvalidRequest, format!("invalid request: {e}"));
    if params.one("response_type").map_err(invalid)? != Some("code") {
        return Err(bad(
            ErrorCode::UnsupportedResponseType,
            "response_type must be code",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(bad(
            ErrorCode::UnauthorizedClient,
            "client may not use the code flow",
        ));
    }
    let challenge = params
        .one("code_challenge")
        .map_err(invalid)?
        .ok_or_else(|| {
            bad(
                ErrorCode::InvalidRequest,
                "code_challenge is required (PKCE)",
            )
        })?;
    pkce::check_challenge(
        challenge,
        params.one("code_challenge_method").map_err(invalid)?,
    )
    .map_err(|e| (ErrorCode::InvalidRequest, e.to_string()))?;
    let scopes = match params.one("scope").map_err(invalid)? {
        None => Scopes::of(idp.config.default_scopes.iter().cloned()),
        Some(text) => Scopes::parse(text).map_err(|e| (ErrorCode::InvalidScope, e))?,
    };
    let allowed = client.scopes.clone().unwrap_or_else(|| idp.supported());
    let unknown = scopes.missing_from(&allowed.intersection(&idp.supported()));
    if !unknown.is_empty() {
        return Err((
            ErrorCode::InvalidScope,
            format!("scope not allowed: {unknown}"),
        ));
    }
    let resources = params.all("resource");
    if let Some(bad_resource) = resources.iter().find(|r| !is_resource(r)) {
        return Err((
            ErrorCode::InvalidTarget,
            format!("`{bad_resource}` is not an absolute URI without fragment"),
        ));
    }
    let sub = params
        .one("login_hint")
        .map_err(invalid)?
        .unwrap_or(&idp.config.default_user);
    if idp.user(sub).is_none() {
        return Err(bad(ErrorCode::AccessDenied, "unknown user"));
    }
    let code = random_token();
    let record = Code {
        client_id: client.client_id.clone(),
        redirect_uri: redirect.to_owned(),
        challenge: challenge.to_owned(),
        sub: sub.to_owned(),
        scopes,
        resources: resources.into_iter().map(String::from).collect(),
        nonce: params.one("nonce").map_err(invalid)?.map(String::from),
        expires_at: idp.clock.unix() + idp.config.code_ttl.as_secs(),
        redeemed: None,
    };
    let mut store = idp
        .store()
        .map_err(|e| (ErrorCode::ServerError, e.to_string()))?;
    idp.sweep(&mut store);
    store.codes.insert(code.clone(), record);
    Ok(code)
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub fn is_resource(text: &str) -> bool {
    Url::parse(text).is_ok_and(|u| u.fragment().is_none())
}
