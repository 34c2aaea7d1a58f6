//! The listing indexes on Redis: what a store written before they were kept holds is
//! listed all the same (backfilled by the first listing, re-indexed by the sweep).

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::store::redis::keys::Keys;
use crate::store::suite::{client, grant};
use crate::store::{GrantFilter, Page, Store};

fn drop_indexes(server: &RedisServer, keys: &Keys) {
    let mut conn = server.connection();
    let _: () = ::redis::cmd("DEL")
        .arg(keys.grants_listed())
        .arg(keys.grant_index("subject", "alice"))
        .arg(keys.grant_index("client", "c1"))
        .arg(keys.grant_index("resource", "https://mcp.example/mcp"))
        .arg(keys.client_index())
        .arg(keys.indexed())
        .query(&mut conn)
        .unwrap();
}

async fn alices(store: &dyn Store) -> usize {
    let filter = GrantFilter {
        subject: Some("alice".into()),
        ..GrantFilter::default()
    };
    store
        .list_grants(&filter, &Page::default())
        .await
        .unwrap()
        .items
        .len()
}

#[actix_web::test]
async fn grants_and_clients_stored_before_the_indexes_are_listed() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let keys = Keys::new(&prefix);
    let old = store_on(&server, &prefix);
    old.put_grant(grant("g1")).await.unwrap();
    old.put_grant(grant("g2")).await.unwrap();
    old.put_client(client("c1", 0, None)).await.unwrap();
    old.put_client(client("c2", 0, Some(5))).await.unwrap();
    drop_indexes(&server, &keys);

    // A new process: the first listing backfills.
    let upgraded = store_on(&server, &prefix);
    assert_eq!(alices(&upgraded).await, 2);
    let clients = upgraded.list_clients(&Page::default()).await.unwrap();
    assert_eq!(clients.items.len(), 2);

    // Grants an older replica stores after the backfill are indexed by the sweep.
    drop_indexes(&server, &keys);
    let _: () = ::redis::cmd("SET")
        .arg(keys.indexed())
        .arg("1")
        .query(&mut server.connection())
        .unwrap();
    let later = store_on(&server, &prefix);
    assert_eq!(alices(&later).await, 0);
    later.sweep_grants(0, 0, 0).await.unwrap();
    assert_eq!(alices(&later).await, 2);
}
