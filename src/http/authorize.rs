//! `GET /oauth/authorize`: the query and this browser's cookies handed to
//! `flows::login` (`Login::authorize`), its step answered as a page or a redirect.

use actix_web::{HttpRequest, HttpResponse, web};

use super::login::{refused, respond};
use super::login_cookies::{self, LoginCookies};
use super::params::Params;
use crate::flows::login::{AuthorizeRequest, Login, LoginError};

pub async fn authorize(
    login: web::Data<Login>,
    cookies: web::Data<LoginCookies>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let params = Params::new(query.into_inner());
    let browser = cookies.browser(&req);
    let request = match parse(&params) {
        Ok(request) => AuthorizeRequest {
            browser: browser.id.clone(),
            cookies: login_cookies::sent(&req),
            ..request
        },
        Err(error) => return refused(&error),
    };
    respond(login.authorize(request).await, &cookies, Some(browser))
}

/// The query's parameters. Until the client and redirect URI are known good, errors
/// are shown, not sent; other repeated single values are refused later, at the
/// client's redirect URI.
fn parse(params: &Params) -> Result<AuthorizeRequest, LoginError> {
    let (Ok(client_id), Ok(redirect_uri)) = (params.one("client_id"), params.one("redirect_uri"))
    else {
        return Err(LoginError::Repeated);
    };
    let client_id = client_id.ok_or(LoginError::NoClientId)?;
    let one = |name: &str| params.one(name).ok().flatten().map(str::to_owned);
    let repeated = [
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "state",
        "scope",
    ]
    .into_iter()
    .find_map(|name| params.one(name).err().map(|e| e.to_string()));
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.map(str::to_owned),
        response_type: one("response_type"),
        code_challenge: one("code_challenge"),
        code_challenge_method: one("code_challenge_method"),
        state: one("state"),
        scope: one("scope"),
        resources: params
            .all("resource")
            .into_iter()
            .map(str::to_owned)
            .collect(),
        repeated,
        ..AuthorizeRequest::default()
    })
}
