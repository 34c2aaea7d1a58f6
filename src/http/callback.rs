//! `GET /oauth/callback`: the provider's answer, the session's binding cookie and
//! this browser's id handed to `flows::login` (`Login::callback`: the session taken
//! once, the code redeemed, the ID token checked, the grant stored, a code for the
//! client), its step answered as a redirect or a page.

use actix_web::{HttpRequest, HttpResponse, web};

use super::login::{refused, respond};
use super::login_cookies::LoginCookies;
use super::params::Params;
use crate::flows::login::{CallbackRequest, Login, LoginError};

pub async fn callback(
    login: web::Data<Login>,
    cookies: web::Data<LoginCookies>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let params = Params::new(query.into_inner());
    let Ok(Some(session)) = params.one("state") else {
        return refused(&LoginError::NoState);
    };
    let browser = cookies.browser(&req);
    // A repeated parameter counts as absent.
    let one = |name: &str| params.one(name).ok().flatten().map(str::to_owned);
    let answer = CallbackRequest {
        state: session.to_owned(),
        code: one("code"),
        iss: one("iss"),
        error: one("error"),
        error_description: one("error_description"),
        bound_csrf: cookies.bound_csrf(&req, session),
        browser: browser.id.clone(),
    };
    respond(login.callback(answer).await, &cookies, Some(browser))
}
