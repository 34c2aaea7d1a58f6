//! `/jwks.json`: the public keys that verify the broker's access tokens, including a
//! rotated-out key during its grace. Cacheable for a few minutes: a new key is
//! published well before it signs anything.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::server::AppState;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.signing.jwks(state.clock.unix()))
}
