//! `POST /oauth/revoke` (RFC 7009; the rules are `flows::grants`): 200 whether or
//! not the token was known (§2.2).

use actix_web::{HttpRequest, HttpResponse, web};

use super::clients::authenticate;
use super::error::ApiError;
use super::form::Form;
use crate::flows::clients::Clients;
use crate::flows::grants::Grants;

pub async fn revoke(
    grants: web::Data<Grants>,
    clients: web::Data<Clients>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let client = authenticate(&clients, &req, &params).await?;
    let token = params.required("token")?;
    let hint = params.one("token_type_hint")?;
    grants.revoke(&client, token, hint).await?;
    Ok(HttpResponse::Ok().finish())
}
