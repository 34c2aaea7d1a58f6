//! A client identified by its Client ID Metadata Document (as Claude and VS Code do
//! with servers that advertise `client_id_metadata_document_supported`) logs in with
//! no registration; a URL that yields no valid document is an error page.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::login_consent::{REDIRECT, authorize_url, open_consent};
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http};

/// Serves `/client.json` describing a public client whose `client_id` is its own URL.
fn document_server() -> String {
    document_server_named("Metadata Document Client")
}

/// Like [`document_server`], the client named `name`.
fn document_server_named(name: &str) -> String {
    document_server_with(json!({ "client_name": name }))
}

/// Serves `/client.json`: a public client whose `client_id` is its own URL, named
/// "Metadata Document Client", redirecting to [`REDIRECT`], with `extra` members
/// merged over that (a `null` removes one).
pub fn document_server_with(extra: serde_json::Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/client.json");
    let mut doc = json!({
        "client_id": url,
        "client_name": "Metadata Document Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let (Some(doc), serde_json::Value::Object(extra)) = (doc.as_object_mut(), extra) {
        for (key, value) in extra {
            if value.is_null() {
                doc.remove(&key);
            } else {
                doc.insert(key, value);
            }
        }
    }
    let server = HttpServer::new(move || {
        let doc = doc.clone();
        App::new().route(
            "/client.json",
            web::get().to(move || {
                let doc = doc.clone();
                async move { HttpResponse::Ok().json(doc) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    url
}

pub async fn broker() -> TestBroker {
    let text = format!(
        "{}\n[registration]\nmetadata_documents_allow_loopback = true\n",
        config_text()
    );
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

#[actix_web::test]
async fn a_metadata_document_client_logs_in_without_registering() {
    let broker = broker().await;
    let metadata: serde_json::Value = http()
        .get(broker.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    let client_id = document_server();
    let code = login(&broker, &client_id, &[]).await;
    let (status, body) = redeem(&broker, &client_id, &code).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    assert_eq!(broker.state.store.count_clients().await.unwrap(), 0);
}

#[actix_web::test]
async fn a_url_without_a_valid_document_is_shown_never_redirected() {
    let broker = broker().await;
    let missing = format!("{}/nothing-here.json", broker.url);
    for client_id in [missing.as_str(), "https://10.0.0.1/client.json"] {
        let response = http()
            .get(authorize_url(&broker, client_id, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{client_id}");
        assert!(response.headers().get("location").is_none());
    }
}

#[actix_web::test]
async fn the_consent_page_names_the_documents_host_and_refuses_bidi_names() {
    let broker = broker().await;
    let client_id = document_server();
    let consent = open_consent(&authorize_url(&broker, &client_id, &[])).await;
    assert!(
        consent
            .page
            .contains("Described by <strong>127.0.0.1</strong>"),
        "{}",
        consent.page
    );
    let spoofing = document_server_named("Evil\u{202E}ppA dooG");
    let response = http()
        .get(authorize_url(&broker, &spoofing, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(!response.text().await.unwrap().contains('\u{202E}'));
}
