//! Login state on Redis: the behaviour suite, and what replicas sharing one Redis
//! rely on — a session or code handled on one is handled for all.

use std::sync::Arc;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::store::suite::login_state::{
    self as suite, LoginSubject, ROOMY, code_grant, leg, login_state_behaviour, request, session,
};
use crate::store::{LoginState, Redeemer, Redemption, SessionStep};

fn open() -> LoginSubject {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    LoginSubject::new(Arc::new(store), server)
}

login_state_behaviour!(open);

/// Two replicas' handles on one Redis, under one prefix.
fn replicas(server: &RedisServer) -> [Arc<dyn LoginState>; 2] {
    let prefix = prefix();
    [
        Arc::new(store_on(server, &prefix)),
        Arc::new(store_on(server, &prefix)),
    ]
}

#[actix_web::test]
async fn a_login_started_on_one_replica_continues_on_another_once() {
    let server = RedisServer::shared();
    let [a, b] = replicas(&server);
    a.put_session("s1", session(600), 0, ROOMY).await.unwrap();
    assert_eq!(b.get_session("s1", 1).await.unwrap(), Some(session(600)));
    let approved = b.approve_session("s1", "csrf-1", leg("s1", "v1"), 2);
    assert_eq!(approved.await.unwrap(), SessionStep::Done(leg("s1", "v1")));
    let again = a.approve_session("s1", "csrf-1", leg("s1", "v2"), 3);
    assert_eq!(again.await.unwrap(), SessionStep::Done(leg("s1", "v1")));
    let taken = a.take_session("s1", "csrf-1", 4).await.unwrap();
    assert_eq!(taken, SessionStep::Done((request(), leg("s1", "v1"))));
    let twice = b.take_session("s1", "csrf-1", 4).await.unwrap();
    assert_eq!(twice, SessionStep::Unknown);
}

#[actix_web::test]
async fn a_code_redeemed_on_one_replica_is_a_replay_on_another() {
    let server = RedisServer::shared();
    let [a, b] = replicas(&server);
    a.put_code("k1", code_grant("g1"), 60, 0, ROOMY)
        .await
        .unwrap();
    assert_eq!(
        a.redeem_code("k1", Redeemer::random(), 1).await.unwrap(),
        Redemption::Redeemed(code_grant("g1"))
    );
    assert_eq!(
        b.redeem_code("k1", Redeemer::random(), 2).await.unwrap(),
        Redemption::Replayed {
            grant_id: "g1".into()
        }
    );
}

#[test]
fn concurrent_redemptions_across_replicas_redeem_once() {
    let server = RedisServer::shared();
    suite::concurrent_redemptions_redeem_once(&replicas(&server));
}

#[test]
fn concurrent_takes_across_replicas_take_once() {
    let server = RedisServer::shared();
    suite::concurrent_takes_take_once(&replicas(&server));
}

#[test]
fn concurrent_approvals_across_replicas_agree_on_one_leg() {
    let server = RedisServer::shared();
    suite::concurrent_approvals_agree_on_one_leg(&replicas(&server));
}

/// Sessions and codes carry native TTLs (their remaining life on the broker's
/// clock); only hashes of their ids appear in keys, and no code or session id is
/// stored anywhere.
#[actix_web::test]
async fn sessions_and_codes_expire_natively_and_are_stored_only_hashed() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let secret_id = "session-id-that-must-not-be-stored";
    let secret_code = "proxy-code-that-must-not-be-stored";
    store
        .put_session(secret_id, session(1_600), 1_000, ROOMY)
        .await
        .unwrap();
    store
        .approve_session(secret_id, "csrf-1", leg(secret_id, "v1"), 1_000)
        .await
        .unwrap();
    store
        .put_code(secret_code, code_grant("g1"), 1_060, 1_000, ROOMY)
        .await
        .unwrap();
    store
        .redeem_code(secret_code, Redeemer::random(), 1_001)
        .await
        .unwrap();
    let mut conn = server.connection();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap();
    let hex = |s: &str| crate::store::redis::keys::hex(&crate::store::login_state::key(s));
    let (session_key, code_key) = (
        format!("{prefix}login:{}", hex(secret_id)),
        format!("{prefix}code:{}", hex(secret_code)),
    );
    assert!(keys.contains(&session_key), "{keys:?}");
    assert!(keys.contains(&code_key), "{keys:?}");
    let ttl = |conn: &mut ::redis::Connection, key: &str| -> i64 {
        ::redis::cmd("TTL").arg(key).query(conn).unwrap()
    };
    let session_ttl = ttl(&mut conn, &session_key);
    assert!((590..=600).contains(&session_ttl), "{session_ttl}");
    // Redeeming keeps the tombstone's expiry.
    let code_ttl = ttl(&mut conn, &code_key);
    assert!((50..=60).contains(&code_ttl), "{code_ttl}");
    for key in &keys {
        assert!(!key.contains(secret_id) && !key.contains(secret_code));
        let kind: String = ::redis::cmd("TYPE").arg(key).query(&mut conn).unwrap();
        let dump: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => ::redis::cmd("HGETALL").arg(key).query(&mut conn).unwrap(),
            _ => ::redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap(),
        };
        let text = String::from_utf8_lossy(&dump.concat()).into_owned();
        assert!(
            !text.contains(secret_id) && !text.contains(secret_code),
            "{key}: {text}"
        );
    }
}
