//! `POST /oauth/consent`: the consent form's answer and the session's binding cookie
//! handed to `flows::login` (`Login::consent`: CSRF, approve or deny), its step
//! answered as a page or a redirect.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::login::respond;
use super::login_cookies::LoginCookies;
use crate::flows::login::{ConsentRequest, Login};

#[derive(Deserialize)]
pub struct ConsentForm {
    session: String,
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    remember: Option<String>,
}

pub async fn consent(
    login: web::Data<Login>,
    cookies: web::Data<LoginCookies>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let request = ConsentRequest {
        bound_csrf: cookies.bound_csrf(&req, &form.session),
        remember: form.remember.as_deref() == Some("on"),
        session: form.session,
        csrf: form.csrf,
        decision: form.decision,
    };
    respond(login.consent(request).await, &cookies, None)
}
