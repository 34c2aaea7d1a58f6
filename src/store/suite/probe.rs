//! The readiness probe: answers on a working store and changes nothing.

use crate::store::Store;
use crate::store::suite::{client, grant};

pub async fn a_probe_succeeds_and_changes_nothing(store: &dyn Store) {
    store.probe().await.unwrap();
    assert_eq!(store.count_clients().await.unwrap(), 0);
    store.put_client(client("c1", 1, None)).await.unwrap();
    store.put_grant(grant("g1")).await.unwrap();
    store.probe().await.unwrap();
    // The probe's transaction, where there is one, is let go: writes go on.
    store.put_client(client("c2", 1, None)).await.unwrap();
    assert_eq!(store.count_clients().await.unwrap(), 2);
    assert!(store.get_grant("g1").await.unwrap().is_some());
}
