//! `grant_type=refresh_token`: rotation, reuse detection, down-scoping and expiry.

use token_broker::dev_idp::DevIdpConfig;
use token_broker::dev_idp::config::ClientSpec;

use super::{Answer, BROKER, TestIdp, verify};

async fn refresh(idp: &TestIdp, token: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    idp.token(BROKER, &form).await
}

#[actix_web::test]
async fn refresh_rotates_and_the_old_token_is_refused_afterwards() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[]).await;
    let old = tokens.str("refresh_token");

    let rotated = refresh(&idp, old, &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.str("refresh_token");
    assert_ne!(new, old);
    assert_eq!(rotated.body["scope"], "notes:read openid profile");
    let (_, claims) = verify(rotated.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["sub"], "alice");
    assert!(!idp.active(old).await);
    assert!(idp.active(new).await);

    refresh(&idp, old, &[])
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn reusing_a_rotated_out_refresh_token_revokes_its_successor_too() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[]).await;
    let old = tokens.str("refresh_token");
    let rotated = refresh(&idp, old, &[]).await;
    let new = rotated.str("refresh_token");

    refresh(&idp, old, &[])
        .await
        .assert_error(400, "invalid_grant");
    assert!(!idp.active(new).await, "the whole family must end");
    refresh(&idp, new, &[])
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn refresh_can_narrow_the_scope_but_not_widen_it() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[("scope", "openid notes:read")]).await;
    let first = tokens.str("refresh_token");

    let wider = refresh(&idp, first, &[("scope", "openid notes:read notes:write")]).await;
    wider.assert_error(400, "invalid_scope");
    assert!(idp.active(first).await, "a refused refresh spends nothing");

    let narrow = refresh(&idp, first, &[("scope", "notes:read")]).await;
    assert_eq!(narrow.status, 200, "{}", narrow.body);
    assert_eq!(narrow.body["scope"], "notes:read");
    let (_, claims) = verify(narrow.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["scope"], "notes:read");

    // The rotated refresh token keeps the original grant (RFC 6749 §6).
    let again = refresh(&idp, narrow.str("refresh_token"), &[]).await;
    assert_eq!(again.body["scope"], "notes:read openid");
    idp.stop().await;
}

#[actix_web::test]
async fn expired_refresh_token_returns_invalid_grant() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[]).await;
    let token = tokens.str("refresh_token");
    idp.advance(86_400 - 60);
    assert!(idp.active(token).await, "still within its day");
    idp.advance(61);
    assert!(!idp.active(token).await);
    refresh(&idp, token, &[])
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn refresh_token_presented_by_another_client_is_invalid_grant() {
    let mut config = DevIdpConfig::default();
    config.clients.push(ClientSpec {
        client_id: "other-app".to_owned(),
        client_secret: Some("other-secret".to_owned()),
        redirect_uris: Vec::new(),
        grant_types: vec!["refresh_token".to_owned()],
        scopes: None,
    });
    let idp = TestIdp::start_with(config).await;
    let tokens = idp.code_flow(&[]).await;
    let token = tokens.str("refresh_token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let stolen = idp.token(("other-app", "other-secret"), &form).await;
    stolen.assert_error(400, "invalid_grant");
    assert!(idp.active(token).await, "the owner keeps its token");
    idp.stop().await;
}
