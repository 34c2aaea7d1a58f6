//! The admin listing: clients and grants a page at a time in id order, filtered, with
//! a cursor that survives writes.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{client, grant, record};
use crate::store::{GrantFilter, Page, RotateOutcome, Store};

/// Every grant id `filter` lists, walking pages of `limit`.
async fn walk(store: &dyn Store, filter: &GrantFilter, limit: usize) -> Vec<String> {
    let mut page = Page::first(limit);
    let mut seen = Vec::new();
    loop {
        let listing = store.list_grants(filter, &page).await.unwrap();
        assert!(listing.items.len() <= limit);
        seen.extend(listing.items.into_iter().map(|r| r.grant.grant_id));
        match listing.next {
            Some(next) => page.after = Some(next),
            None => return seen,
        }
    }
}

fn filter(subject: Option<&str>, client: Option<&str>, resource: Option<&str>) -> GrantFilter {
    GrantFilter {
        subject: subject.map(str::to_owned),
        client_id: client.map(str::to_owned),
        resource: resource.map(str::to_owned),
    }
}

pub async fn grants_are_listed_in_id_order_by_subject_client_and_resource(store: &dyn Store) {
    for i in 0..23u32 {
        let mut g = grant(&format!("g{i:02}"));
        g.subject = if i % 2 == 0 { "alice" } else { "bob" }.into();
        g.client_id = format!("c{}", i % 3);
        g.resource = (i % 5 != 0).then(|| "https://mcp.example/mcp".to_owned());
        store.put_grant(g).await.unwrap();
    }
    let all = walk(store, &GrantFilter::default(), 5).await;
    let expected: Vec<String> = (0..23).map(|i| format!("g{i:02}")).collect();
    assert_eq!(all, expected, "every grant exactly once, in id order");

    let alice = walk(store, &filter(Some("alice"), None, None), 4).await;
    assert_eq!(alice.len(), 12);
    let alice_c1 = walk(store, &filter(Some("alice"), Some("c1"), None), 2).await;
    assert_eq!(alice_c1, ["g04", "g10", "g16", "g22"]);
    let bob_c0_mcp = walk(
        store,
        &filter(Some("bob"), Some("c0"), Some("https://mcp.example/mcp")),
        50,
    )
    .await;
    assert_eq!(bob_c0_mcp, ["g03", "g09", "g21"], "g15 names no resource");
    let by_resource = walk(
        store,
        &filter(None, None, Some("https://mcp.example/mcp")),
        7,
    )
    .await;
    assert_eq!(by_resource.len(), 18);
    assert!(
        walk(store, &filter(Some("carol"), None, None), 10)
            .await
            .is_empty()
    );
}

pub async fn a_cursor_stays_valid_while_grants_are_added(store: &dyn Store) {
    for id in ["g10", "g20", "g30", "g40"] {
        store.put_grant(grant(id)).await.unwrap();
    }
    let first = store
        .list_grants(&GrantFilter::default(), &Page::first(2))
        .await
        .unwrap();
    let ids: Vec<_> = first
        .items
        .iter()
        .map(|r| r.grant.grant_id.clone())
        .collect();
    assert_eq!(ids, ["g10", "g20"]);
    assert_eq!(first.next.as_deref(), Some("g20"));
    // Added behind and ahead of the cursor.
    store.put_grant(grant("g15")).await.unwrap();
    store.put_grant(grant("g35")).await.unwrap();
    let rest = store
        .list_grants(
            &GrantFilter::default(),
            &Page {
                after: first.next,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let ids: Vec<_> = rest
        .items
        .iter()
        .map(|r| r.grant.grant_id.clone())
        .collect();
    assert_eq!(ids, ["g30", "g35", "g40"]);
    assert_eq!(rest.next, None);
}

pub async fn listed_grants_show_revocation_and_the_last_refresh(store: &dyn Store) {
    store.put_grant(grant("g1")).await.unwrap();
    store.put_grant(grant("g2")).await.unwrap();
    let first = record("g1", 0);
    let presented = first.hash;
    store.put_refresh(first).await.unwrap();
    let rotated = store
        .rotate_refresh(presented, record("g1", 40), 40, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(matches!(rotated, RotateOutcome::Rotated { .. }));
    store.revoke_grant("g2", 50).await.unwrap();

    let row = store.grant_row("g1").await.unwrap().unwrap();
    assert_eq!(row.last_refreshed_at, Some(40));
    assert_eq!(row.grant.revoked_at, None);
    let listing = store
        .list_grants(&GrantFilter::default(), &Page::default())
        .await
        .unwrap();
    assert_eq!(listing.items.len(), 2, "revoked grants are listed too");
    assert_eq!(listing.items[1].grant.revoked_at, Some(50));
    assert_eq!(listing.items[1].last_refreshed_at, None);
    assert!(store.grant_row("nope").await.unwrap().is_none());
}

pub async fn a_replaced_grant_moves_between_filters_and_a_swept_one_leaves(store: &dyn Store) {
    store.put_grant(grant("g1")).await.unwrap();
    let mut moved = grant("g1");
    moved.subject = "bob".into();
    moved.client_id = "c9".into();
    moved.resource = None;
    store.put_grant(moved).await.unwrap();
    assert!(
        walk(store, &filter(Some("alice"), None, None), 10)
            .await
            .is_empty()
    );
    assert!(
        walk(store, &filter(None, Some("c1"), None), 10)
            .await
            .is_empty()
    );
    assert_eq!(
        walk(store, &filter(Some("bob"), Some("c9"), None), 10).await,
        ["g1"]
    );

    store.put_grant(grant("g2")).await.unwrap();
    store.revoke_grant("g2", 10).await.unwrap();
    assert_eq!(store.sweep_grants(100, 50, 0).await.unwrap(), 1);
    assert_eq!(walk(store, &GrantFilter::default(), 10).await, ["g1"]);
    assert!(
        walk(store, &filter(Some("alice"), None, None), 10)
            .await
            .is_empty()
    );
}

pub async fn clients_are_listed_in_id_order_a_page_at_a_time(store: &dyn Store) {
    for i in (0..12).rev() {
        store
            .put_client(client(&format!("client-{i:02}"), i, None))
            .await
            .unwrap();
    }
    store.delete_client("client-05").await.unwrap();
    store.touch_client("client-03", 100).await.unwrap();
    let mut page = Page::first(5);
    let mut seen = Vec::new();
    loop {
        let listing = store.list_clients(&page).await.unwrap();
        seen.extend(listing.items);
        match listing.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let ids: Vec<_> = seen.iter().map(|c| c.client_id.as_str()).collect();
    let expected: BTreeSet<String> = (0..12)
        .filter(|i| *i != 5)
        .map(|i| format!("client-{i:02}"))
        .collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen[3].last_used_at, Some(100));
}
