//! Provider tokens handed out in passthrough mode: found by digest until they expire,
//! replaced by a second record of the same digest, kept by the sweep while live.

use crate::store::{PassthroughToken, Store};

fn handed_out(digest: u8, grant_id: &str, expires_at: u64) -> PassthroughToken {
    PassthroughToken {
        digest: [digest; 32],
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        expires_at,
    }
}

pub async fn an_assertion_is_spent_once_until_its_record_expires(store: &dyn Store) {
    assert!(store.spend_assertion([7; 32], 100, 0).await.unwrap());
    assert!(!store.spend_assertion([7; 32], 100, 50).await.unwrap());
    assert!(!store.spend_assertion([7; 32], 300, 99).await.unwrap());
    assert!(store.spend_assertion([8; 32], 100, 50).await.unwrap());
    // The sweep keeps what lives. (Past `until` the assertion itself has expired and
    // is refused for that, so whether its record is gone then does not matter.)
    store.sweep_grants(60, 0, 0).await.unwrap();
    assert!(!store.spend_assertion([8; 32], 100, 60).await.unwrap());
}

pub async fn passthrough_tokens_are_found_by_digest_until_they_expire(store: &dyn Store) {
    store
        .put_passthrough(handed_out(1, "g1", 100), 0)
        .await
        .unwrap();
    store
        .put_passthrough(handed_out(2, "g2", 100), 0)
        .await
        .unwrap();
    assert_eq!(
        store.find_passthrough(&[1; 32], 99).await.unwrap(),
        Some(handed_out(1, "g1", 100))
    );
    assert_eq!(store.find_passthrough(&[1; 32], 100).await.unwrap(), None);
    assert_eq!(store.find_passthrough(&[3; 32], 0).await.unwrap(), None);
    // Handed out again (a refresh returning the same provider token): a later expiry.
    store
        .put_passthrough(handed_out(1, "g1", 200), 120)
        .await
        .unwrap();
    assert_eq!(
        store.find_passthrough(&[1; 32], 150).await.unwrap(),
        Some(handed_out(1, "g1", 200))
    );
    // The sweep (Redis: the native TTL) reclaims only what expired.
    store.sweep_grants(150, 0, 0).await.unwrap();
    assert!(
        store
            .find_passthrough(&[1; 32], 150)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_passthrough(&[2; 32], 150)
            .await
            .unwrap()
            .is_none()
    );
}
