//! `/jwks.json`: the public keys that verify the broker's access tokens, including a
//! rotated-out key during its grace. Cacheable for a few minutes: a new key is
//! published well before it signs anything (`rotate-keys` refuses an activation
//! sooner than the reload interval plus this cache lifetime).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::clock::Clock;
use crate::tokens::signing::{JWKS_MAX_AGE, SigningKeys};

pub async fn jwks(signing: web::Data<SigningKeys>, clock: web::Data<Clock>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={}", JWKS_MAX_AGE.as_secs()),
        ))
        .json(signing.jwks(clock.unix()))
}
