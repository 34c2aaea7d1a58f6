//! Registration's de-duplication memory on Redis: what one replica remembers, the
//! others recall, for the window only, under the broker's prefix.

use std::time::Duration;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::store::RecentClients;

const WINDOW: Duration = Duration::from_secs(600);

#[actix_web::test]
async fn what_one_store_remembers_another_recalls_for_the_window() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let (a, b) = (store_on(&server, &prefix), store_on(&server, &prefix));
    let fingerprint = [7u8; 32];
    assert_eq!(b.recall(&fingerprint).await.unwrap(), None);
    a.remember(&fingerprint, "c1", WINDOW).await.unwrap();
    assert_eq!(b.recall(&fingerprint).await.unwrap().as_deref(), Some("c1"));
    // A newer client replaces it.
    b.remember(&fingerprint, "c2", WINDOW).await.unwrap();
    assert_eq!(a.recall(&fingerprint).await.unwrap().as_deref(), Some("c2"));
    assert_eq!(a.recall(&[8u8; 32]).await.unwrap(), None);

    // Redis forgets it when the window ends.
    let key = format!("{prefix}public_client:{}", "07".repeat(32));
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&key)
        .query(&mut server.connection())
        .unwrap();
    assert!(0 < ttl && ttl <= 600_000, "{key}: {ttl} ms");
    // Another broker (prefix) on the same Redis knows nothing of it.
    let other = store_on(&server, &super::prefix());
    assert_eq!(other.recall(&fingerprint).await.unwrap(), None);
}
