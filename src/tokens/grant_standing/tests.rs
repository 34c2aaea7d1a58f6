//! The scope cache against the memory store, with the broker's clock moved by hand.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::{Grant, MemoryStore, UpstreamTokens};

fn grant(id: &str, subject: &str, client: &str, scopes: &str) -> Grant {
    Grant {
        grant_id: id.to_owned(),
        subject: subject.to_owned(),
        client_id: client.to_owned(),
        scopes: Scopes::parse(scopes).unwrap(),
        resource: None,
        upstream: UpstreamTokens {
            access_token: "at".to_owned(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            obtained_at: None,
            identity: None,
        },
        created_at: 0,
        revoked_at: None,
    }
}

async fn cache_with(grants: &[Grant]) -> (ScopeCache, Arc<MemoryStore>, Clock) {
    let store = Arc::new(MemoryStore::new());
    for g in grants {
        store.put_grant(g.clone()).await.unwrap();
    }
    let clock = Clock::system();
    let cache = ScopeCache::new(
        store.clone(),
        clock.clone(),
        &ScopeCacheConfig {
            ttl: Duration::from_secs(300),
            capacity: 100,
        },
    );
    (cache, store, clock)
}

fn scopes_of(effective: &Effective) -> Option<String> {
    effective.scopes.as_ref().map(Scopes::to_string)
}

#[actix::test]
async fn a_change_in_the_store_shows_after_the_ttl_or_an_invalidation() {
    let (cache, store, clock) = cache_with(&[grant("g1", "alice", "c1", "a b")]).await;
    assert_eq!(
        scopes_of(&cache.effective("g1").await.unwrap()).as_deref(),
        Some("a b")
    );
    store
        .put_grant(grant("g1", "alice", "c1", "a"))
        .await
        .unwrap();
    assert_eq!(
        scopes_of(&cache.effective("g1").await.unwrap()).as_deref(),
        Some("a b"),
        "cached until the TTL"
    );
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        scopes_of(&cache.effective("g1").await.unwrap()).as_deref(),
        Some("a")
    );

    store
        .put_grant(grant("g1", "alice", "c1", "b"))
        .await
        .unwrap();
    cache.invalidate(&Invalidation::GrantId("g1".into())).await;
    assert_eq!(
        scopes_of(&cache.effective("g1").await.unwrap()).as_deref(),
        Some("b")
    );
}

#[actix::test]
async fn revoked_and_unknown_grants_have_no_scopes() {
    let (cache, store, clock) = cache_with(&[grant("g1", "alice", "c1", "a")]).await;
    store.revoke_grant("g1", clock.unix()).await.unwrap();
    let revoked = cache.effective("g1").await.unwrap();
    assert_eq!(revoked.scopes, None);
    assert_eq!(revoked.subject.as_deref(), Some("alice"));
    let unknown = cache.effective("nope").await.unwrap();
    assert_eq!(
        (unknown.subject.clone(), unknown.scopes.clone()),
        (None, None)
    );
}

#[actix::test]
async fn subject_and_client_invalidations_reach_only_theirs() {
    let (cache, store, _) = cache_with(&[
        grant("g1", "alice", "c1", "a"),
        grant("g2", "alice", "c2", "a"),
        grant("g3", "bob", "c1", "a"),
    ])
    .await;
    for id in ["g1", "g2", "g3"] {
        cache.effective(id).await.unwrap();
    }
    for id in ["g1", "g2", "g3"] {
        store
            .put_grant(grant(
                id,
                if id == "g3" { "bob" } else { "alice" },
                if id == "g2" { "c2" } else { "c1" },
                "z",
            ))
            .await
            .unwrap();
    }
    cache
        .invalidate(&Invalidation::Subject("alice".into()))
        .await;
    let now = |id: &'static str| {
        let cache = cache.clone();
        async move { scopes_of(&cache.effective(id).await.unwrap()).unwrap() }
    };
    assert_eq!(
        (now("g1").await, now("g2").await, now("g3").await),
        ("z".into(), "z".into(), "a".into())
    );
    cache.invalidate(&Invalidation::ClientId("c1".into())).await;
    assert_eq!(now("g3").await, "z");
}
