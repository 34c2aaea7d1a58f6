//! Discovery, the JWKS, and the shape of the tokens the IdP signs.

use serde_json::{Value, json};
use token_broker::dev_idp::DevIdpConfig;
use token_broker::dev_idp::keys::SigningAlg;

use super::{TestIdp, verify};
use crate::support::http;

#[actix_web::test]
async fn both_discovery_documents_name_every_endpoint_under_the_issuer() {
    let idp = TestIdp::start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc = idp.get(path).await;
        assert_eq!(doc.status, 200, "{path}");
        let doc = doc.body;
        assert_eq!(doc["issuer"], idp.url);
        for (key, endpoint) in [
            ("authorization_endpoint", "/authorize"),
            ("token_endpoint", "/token"),
            ("jwks_uri", "/jwks"),
            ("registration_endpoint", "/register"),
            ("introspection_endpoint", "/introspect"),
            ("revocation_endpoint", "/revoke"),
            ("userinfo_endpoint", "/userinfo"),
        ] {
            assert_eq!(doc[key], idp.at(endpoint), "{path} {key}");
        }
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let grants = doc["grant_types_supported"].as_array().unwrap();
        for grant in [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ] {
            assert!(grants.contains(&json!(grant)), "{grant}");
        }
    }
    idp.stop().await;
}

#[actix_web::test]
async fn every_endpoint_listed_in_discovery_answers() {
    let idp = TestIdp::start().await;
    let doc = idp.get("/.well-known/openid-configuration").await.body;
    let client = http();
    for (key, method) in [
        ("authorization_endpoint", "GET"),
        ("token_endpoint", "FORM"),
        ("jwks_uri", "GET"),
        ("registration_endpoint", "JSON"),
        ("introspection_endpoint", "FORM"),
        ("revocation_endpoint", "FORM"),
        ("userinfo_endpoint", "GET"),
    ] {
        let url = doc[key].as_str().unwrap();
        let request = match method {
            "FORM" => client.post(url).form(&[("token", "x")]),
            "JSON" => client.post(url).json(&json!({})),
            _ => client.get(url),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        // An empty request is refused by the endpoint itself, not by routing.
        assert!(
            ![404, 405].contains(&status) && status < 500,
            "{key}: {status}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{key}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body.is_object(), "{key}: {body}");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn jwks_publishes_one_rsa_signing_key_with_kid_use_and_alg() {
    let idp = TestIdp::start().await;
    let jwks = idp.get("/jwks").await.body;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(key["n"].is_string() && key["e"].is_string());
    assert!(
        key.get("d").is_none(),
        "the private part must not be published"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn access_tokens_are_at_jwt_signed_by_a_jwks_key_and_aimed_at_the_resource() {
    let idp = TestIdp::start().await;
    let tokens = idp
        .code_flow(&[("resource", "https://notes.example/api")])
        .await;
    let (typ, claims) = verify(tokens.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["aud"], "https://notes.example/api");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "token-broker");
    assert_eq!(claims["scope"], "notes:read openid profile");
    for claim in ["exp", "iat", "nbf", "jti"] {
        assert!(!claims[claim].is_null(), "{claim} missing: {claims}");
    }
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 300);
    idp.stop().await;
}

#[actix_web::test]
async fn id_token_carries_the_nonce_and_is_addressed_to_the_client() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[("nonce", "n-0S6_WzA2Mj")]).await;
    let (typ, claims) = verify(tokens.str("id_token"), &idp.jwks().await, &idp.url);
    assert_eq!(typ.as_deref(), Some("JWT"));
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["aud"], "token-broker");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice Example");
    assert!(claims["at_hash"].is_string());
    idp.stop().await;
}

#[actix_web::test]
async fn id_token_without_a_requested_nonce_has_no_nonce_claim() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[]).await;
    let (_, claims) = verify(tokens.str("id_token"), &idp.jwks().await, &idp.url);
    assert!(claims.get("nonce").is_none(), "{claims}");
    let without_openid = idp.code_flow(&[("scope", "notes:read")]).await;
    assert!(without_openid.body.get("id_token").is_none());
    idp.stop().await;
}

#[actix_web::test]
async fn es256_and_eddsa_providers_sign_tokens_that_verify_against_their_jwks() {
    for (alg, name, kty) in [
        (SigningAlg::Es256, "ES256", "EC"),
        (SigningAlg::EdDsa, "EdDSA", "OKP"),
    ] {
        let idp = TestIdp::start_with(DevIdpConfig {
            signing_alg: alg,
            ..Default::default()
        })
        .await;
        let doc = idp.get("/.well-known/openid-configuration").await.body;
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!([name]));
        let jwks = idp.get("/jwks").await.body;
        assert_eq!(jwks["keys"][0]["kty"], kty, "{name}");
        assert_eq!(jwks["keys"][0]["alg"], name);

        let tokens = idp.code_flow(&[]).await;
        let jwks = idp.jwks().await;
        for token in [tokens.str("access_token"), tokens.str("id_token")] {
            let header = jsonwebtoken::decode_header(token).unwrap();
            assert_eq!(format!("{:?}", header.alg), name);
            let (_, claims) = verify(token, &jwks, &idp.url);
            assert_eq!(claims["sub"], "alice");
        }
        assert!(idp.active(tokens.str("access_token")).await, "{name}");
        idp.stop().await;
    }
}
