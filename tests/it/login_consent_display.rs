//! What the consent page says about the client: no name that displays as another
//! (control and format characters refused at registration, stripped from clients
//! stored before), the `client_id` beside the self-chosen name, and a private-use
//! redirect scheme shown as an app, never as a web host.

use serde_json::json;
use token_broker::store::{ClientOrigin, StoredClient};

use crate::login_consent::{REDIRECT, authorize_url, live_broker, open_consent, register};
use crate::support::http;

#[actix_web::test]
async fn registration_refuses_names_with_bidi_overrides_or_zero_width_characters() {
    let broker = live_broker().await;
    for name in ["Evil\u{202E}ppA dooG", "Cla\u{200B}ude", "App\u{2066}"] {
        let response = http()
            .post(broker.at("/oauth/register"))
            .json(&json!({
                "client_name": name,
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{name:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    }
    assert_eq!(broker.state.store.count_clients().await.unwrap(), 0);
}

#[actix_web::test]
async fn the_page_shows_the_client_id_and_strips_controls_from_stored_names() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    assert!(
        consent
            .page
            .contains(&format!("Client ID <code>{client}</code>")),
        "{}",
        consent.page
    );

    // Registered before the rule: the page drops the override.
    broker
        .state
        .store
        .put_client(StoredClient {
            client_id: "legacy-client".into(),
            secret_hash: None,
            metadata: json!({
                "client_name": "Evil\u{202E}ppA dooG",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
            }),
            fingerprint: [7; 32],
            issued_at: 0,
            last_used_at: None,
            origin: ClientOrigin::Local,
        })
        .await
        .unwrap();
    let consent = open_consent(&authorize_url(&broker, "legacy-client", &[])).await;
    assert!(!consent.page.contains('\u{202E}'), "{}", consent.page);
    assert!(
        consent
            .page
            .contains("Allow <strong>EvilppA dooG</strong>?")
    );
    assert!(
        consent
            .page
            .contains("Client ID <code>legacy-client</code>")
    );
}

#[actix_web::test]
async fn a_private_use_redirect_scheme_is_shown_as_an_app_not_as_a_host() {
    let broker = live_broker().await;
    let redirect = "cursor://anysphere.cursor-retrieval/oauth/callback";
    let registered: serde_json::Value = http()
        .post(broker.at("/oauth/register"))
        .json(&json!({
            "client_name": "Cursor",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = registered["client_id"].as_str().unwrap();
    let consent = open_consent(&authorize_url(
        &broker,
        client,
        &[("redirect_uri", redirect)],
    ))
    .await;
    let page = &consent.page;
    assert!(
        !page.contains("<strong>anysphere.cursor-retrieval</strong>"),
        "{page}"
    );
    assert!(page.contains("opens <code>cursor:</code> links"), "{page}");
    assert!(page.contains(&format!("<code>{redirect}</code>")), "{page}");
    assert!(page.contains("class=\"warn\""), "{page}");
    // Its only redirect URI is one any app on the device can claim.
    assert!(page.contains("Every address it registered"), "{page}");
    assert!(
        page.contains("Any app installed on your device can claim"),
        "{page}"
    );
}
