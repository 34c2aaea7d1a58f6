//! Registered clients: what is stored comes back, and clean-up finds the right ones.

use super::client;
use crate::store::{ClientOrigin, Store, StoredClient};

pub async fn stale_clients_are_the_unused_and_the_idle(store: &dyn Store) {
    store
        .put_client(client("never-used-old", 10, None))
        .await
        .unwrap();
    store
        .put_client(client("never-used-new", 100, None))
        .await
        .unwrap();
    store
        .put_client(client("idle", 10, Some(20)))
        .await
        .unwrap();
    store
        .put_client(client("active", 10, Some(95)))
        .await
        .unwrap();
    let mut stale: Vec<String> = store
        .stale_clients(50, 90)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    stale.sort();
    assert_eq!(stale, ["idle", "never-used-old"]);
    store.touch_client("never-used-old", 60).await.unwrap();
    assert_eq!(store.stale_clients(50, 50).await.unwrap().len(), 1);
    assert!(store.delete_client("idle").await.unwrap());
    assert!(!store.delete_client("idle").await.unwrap());
    assert_eq!(store.count_clients().await.unwrap(), 3);
}

pub async fn clients_round_trip_with_every_origin(store: &dyn Store) {
    let proxied = StoredClient {
        client_id: "proxied".into(),
        secret_hash: Some([7; 32]),
        metadata: serde_json::json!({"redirect_uris": ["https://app.example/cb"], "client_name": "App"}),
        fingerprint: [9; 32],
        issued_at: 1_700_000_000,
        last_used_at: Some(1_700_000_100),
        origin: ClientOrigin::Proxied {
            upstream_client_id: "up-1".into(),
            upstream_client_secret: Some("up-secret".into()),
            registration_client_uri: Some("https://idp.example/reg/up-1".into()),
            registration_access_token: Some("rat".into()),
            upstream_secret_expires_at: Some(1_700_086_400),
        },
    };
    let bare_proxy = StoredClient {
        client_id: "bare".into(),
        origin: ClientOrigin::Proxied {
            upstream_client_id: "up-2".into(),
            upstream_client_secret: None,
            registration_client_uri: None,
            registration_access_token: None,
            upstream_secret_expires_at: None,
        },
        ..client("bare", 5, None)
    };
    let document = StoredClient {
        origin: ClientOrigin::MetadataDocument,
        ..client("https://app.example/client.json", 6, None)
    };
    let local = client("local", 7, None);
    for c in [&proxied, &bare_proxy, &document, &local] {
        store.put_client(c.clone()).await.unwrap();
        assert_eq!(
            store.get_client(&c.client_id).await.unwrap().as_ref(),
            Some(c)
        );
    }
    assert!(store.get_client("nobody").await.unwrap().is_none());
    // A put replaces the whole client.
    let replaced = StoredClient {
        origin: ClientOrigin::Local,
        ..proxied.clone()
    };
    store.put_client(replaced.clone()).await.unwrap();
    assert_eq!(store.get_client("proxied").await.unwrap(), Some(replaced));
    assert_eq!(store.count_clients().await.unwrap(), 4);
}

pub async fn touching_a_client_keeps_its_latest_use(store: &dyn Store) {
    store.put_client(client("c", 10, None)).await.unwrap();
    store.touch_client("c", 50).await.unwrap();
    store.touch_client("c", 40).await.unwrap();
    let c = store.get_client("c").await.unwrap().unwrap();
    assert_eq!(c.last_used_at, Some(50));
    store.touch_client("nobody", 50).await.unwrap();
    assert!(store.get_client("nobody").await.unwrap().is_none());
}
