//! OpenID discovery (and the same document as RFC 8414 metadata) and the JWKS.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::config::{JWT_BEARER, TOKEN_EXCHANGE};
use super::idp::Idp;

pub async fn discovery(idp: web::Data<Idp>) -> HttpResponse {
    let mut doc = json!({
        "issuer": idp.issuer,
        "authorization_endpoint": idp.endpoint("/authorize"),
        "token_endpoint": idp.endpoint("/token"),
        "jwks_uri": idp.endpoint("/jwks"),
        "registration_endpoint": idp.endpoint("/register"),
        "introspection_endpoint": idp.endpoint("/introspect"),
        "revocation_endpoint": idp.endpoint("/revoke"),
        "userinfo_endpoint": idp.endpoint("/userinfo"),
        "scopes_supported": idp.config.scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE, JWT_BEARER
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": idp.keys.algs(idp.clock.unix()),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "name", "email", "email_verified", "preferred_username", "groups", "nonce"],
        "authorization_response_iss_parameter_supported": true,
        // draft-ietf-oauth-identity-assertion-authz-grant §6: it issues ID-JAGs.
        "identity_chaining_requested_token_types_supported": [crate::domain::id_jag::TOKEN_TYPE],
    });
    if !idp.config.dynamic_registration
        && let Some(map) = doc.as_object_mut()
    {
        map.remove("registration_endpoint");
    }
    HttpResponse::Ok().json(doc)
}

pub async fn jwks(idp: web::Data<Idp>) -> HttpResponse {
    HttpResponse::Ok().json(idp.keys.jwks(idp.clock.unix()))
}
