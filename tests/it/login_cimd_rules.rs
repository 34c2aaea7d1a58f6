//! The documents real clients publish, and what the user is told about them: a
//! ChatGPT-style document (`private_key_jwt` preferred, `none` offered, grants the
//! broker does not offer) logs in as a public client; a refused document's error page
//! names the rule it broke; the consent page shows where the answer goes and warns
//! when every address the document lists is on the user's device.

use serde_json::json;

use crate::login_cimd::{broker, document_server_with};
use crate::login_consent::{REDIRECT, answer, authorize_url, location, open_consent, query};
use crate::login_flow::{login, redeem, refresh};
use crate::support::http;

#[actix_web::test]
async fn a_chatgpt_style_document_logs_in_as_a_public_client() {
    let broker = broker().await;
    let client_id = document_server_with(json!({
        "client_name": "ChatGPT",
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg": "RS256",
        "jwks_uri": "https://chatgpt.example/oauth/jwks.json",
        "grant_types": ["authorization_code", "refresh_token",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"],
    }));
    let code = login(&broker, &client_id, &[]).await;
    let (status, body) = redeem(&broker, &client_id, &code).await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"].as_str().expect("refresh_token");
    let (status, body) = refresh(&broker, &client_id, refresh_token).await;
    assert_eq!(status, 200, "{body}");
    // Its extra grant is not one it may use here.
    let response = http()
        .post(broker.at("/oauth/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", client_id.as_str()),
            ("assertion", "x.y.z"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// The error page for `client_id`, which must be shown, never redirected.
async fn refusal_page(broker: &crate::support::TestBroker, client_id: &str) -> String {
    let response = http()
        .get(authorize_url(broker, client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "{client_id}");
    assert!(response.headers().get("location").is_none());
    response.text().await.unwrap()
}

#[actix_web::test]
async fn a_refused_document_is_shown_with_the_rule_it_broke() {
    let broker = broker().await;
    let cases = [
        (
            json!({"client_id": "https://elsewhere.example/client.json"}),
            "its client_id differs from the URL it was fetched from",
        ),
        (
            json!({"grant_types": ["client_credentials"]}),
            "grant_types does not include authorization_code",
        ),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://c.example/jwks.json"}),
            "does not offer `none`",
        ),
        (
            json!({"application_type": "web"}),
            "application_type is `web`, which allows https redirect URIs only",
        ),
    ];
    for (extra, reason) in cases {
        let client_id = document_server_with(extra.clone());
        let page = refusal_page(&broker, &client_id).await;
        assert!(page.contains("Client not accepted"), "{extra}: {page}");
        assert!(page.contains(reason), "{extra}: {page}");
    }
}

#[actix_web::test]
async fn a_localhost_only_document_client_is_warned_about_with_the_host_shown() {
    let broker = broker().await;
    let client_id = document_server_with(json!({"client_name": "Claude Code"}));
    let consent = open_consent(&authorize_url(&broker, &client_id, &[])).await;
    let page = &consent.page;
    assert!(
        page.contains("sent to <strong>127.0.0.1</strong>, an application on this device"),
        "{page}"
    );
    assert!(
        page.contains("Every address its metadata document lists"),
        "{page}"
    );
    // A document with a web address too: that host is what the page shows, unwarned.
    let web = "https://client.example/oauth/callback";
    let client_id = document_server_with(json!({"redirect_uris": [web, REDIRECT]}));
    let consent = open_consent(&authorize_url(
        &broker,
        &client_id,
        &[("redirect_uri", web)],
    ))
    .await;
    assert!(
        consent
            .page
            .contains("sent to <strong>client.example</strong>"),
        "{}",
        consent.page
    );
    assert!(!consent.page.contains("class=\"warn\""), "{}", consent.page);
    // Its deny goes back with `iss` (RFC 9207), like every answer.
    let denied = answer(&broker, &consent, "deny").await;
    let to = location(&denied);
    assert!(to.as_str().starts_with(web), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "iss").as_deref(), Some(broker.url.as_str()));
}
