//! What was acknowledged is still there after a restart — an orderly one, or a
//! `kill -9` that gives sqlite no chance to tidy up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::{reopen, sealer, temp_db};
use crate::store::suite::{GRACE, client, grant, record};
use crate::store::{ClientOrigin, RotateOutcome, SqliteStore, Store, StoredClient};

fn proxied_client() -> StoredClient {
    StoredClient {
        secret_hash: Some([3; 32]),
        origin: ClientOrigin::Proxied {
            upstream_client_id: "up-1".into(),
            upstream_client_secret: Some("up-secret".into()),
            registration_client_uri: None,
            registration_access_token: Some("rat".into()),
            upstream_secret_expires_at: None,
        },
        ..client("c1", 10, Some(20))
    }
}

#[actix_web::test]
async fn reopening_the_file_keeps_clients_grants_and_refresh_tokens() {
    let (_dir, path) = temp_db();
    let store = reopen(&path);
    store.put_client(proxied_client()).await.unwrap();
    store.put_grant(grant("g1")).await.unwrap();
    let first = record("g1", 0);
    let first_hash = first.hash;
    store.put_refresh(first).await.unwrap();
    let second = record("g1", 5);
    let second_hash = second.hash;
    store
        .rotate_refresh(first_hash, second, 5, GRACE)
        .await
        .unwrap();
    drop(store);

    let store = reopen(&path);
    assert_eq!(
        store.get_client("c1").await.unwrap(),
        Some(proxied_client())
    );
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(grant("g1")));
    let spent = store.find_refresh(&first_hash).await.unwrap().unwrap();
    assert_eq!(spent.rotated.unwrap().successor, second_hash);
    assert!(store.find_refresh(&second_hash).await.unwrap().is_some());
    // The chain's history survived too: the spent token coming back after the
    // grace is still a replay.
    assert_eq!(
        store
            .rotate_refresh(first_hash, record("g1", 100), 100, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Replayed {
            grant_id: "g1".into()
        }
    );
}

/// Set by the parent test for its child process: the database path.
const CHILD_DB: &str = "TOKEN_BROKER_TEST_SQLITE_CHILD_DB";
/// Printed by the child once its writes were acknowledged.
const WRITTEN: &str = "sqlite-child-writes-acknowledged";

#[test]
fn acknowledged_writes_survive_kill_9() {
    let (_dir, path) = temp_db();
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("{module}::child_writes_then_waits_to_be_killed"),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acknowledged = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(WRITTEN));
    // SIGKILL: no destructor, no checkpoint, no close.
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(acknowledged, "the child never acknowledged its writes");
    assert!(!status.success());

    let store = reopen(&path);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(store.get_grant("g1").await.unwrap(), Some(grant("g1")));
        assert_eq!(
            store.get_client("c1").await.unwrap(),
            Some(proxied_client())
        );
        assert_eq!(
            store
                .find_refresh(&[42; 32])
                .await
                .unwrap()
                .unwrap()
                .grant_id,
            "g1"
        );
    });
}

/// The other half of `acknowledged_writes_survive_kill_9`, run only as its child.
#[test]
#[ignore = "run as a child process by acknowledged_writes_survive_kill_9"]
fn child_writes_then_waits_to_be_killed() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&path), sealer()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        store.put_client(proxied_client()).await.unwrap();
        store.put_grant(grant("g1")).await.unwrap();
        let mut token = record("g1", 0);
        token.hash = [42; 32];
        store.put_refresh(token).await.unwrap();
    });
    println!("{WRITTEN}");
    // Wait, store open, until the parent kills us (it never writes to stdin).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
