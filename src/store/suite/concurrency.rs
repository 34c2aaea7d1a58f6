//! Many presentations of one token at once, from separate threads and runtimes as
//! separate workers would make them: rotation stays atomic.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::{GRACE, record, unspent, with_token};
use crate::store::{RotateOutcome, Store};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Grant `g1` with one refresh token, set up on a throwaway runtime.
fn with_token_blocking(store: &Arc<dyn Store>) -> [u8; 32] {
    runtime().block_on(with_token(&**store))
}

/// Presents `first` from `n` threads at once, each with its own successor; returns
/// the outcomes and every successor's hash.
fn present_concurrently(
    store: &Arc<dyn Store>,
    first: [u8; 32],
    n: usize,
    grace: Duration,
) -> (Vec<RotateOutcome>, Vec<[u8; 32]>) {
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                let next = record("g1", 5);
                let hash = next.hash;
                start.wait();
                let outcome = runtime()
                    .block_on(store.rotate_refresh(first, next, 5, grace))
                    .unwrap();
                (outcome, hash)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).unzip()
}

pub fn concurrent_tasks_presenting_one_token_rotate_it_once(store: Arc<dyn Store>) {
    let first = with_token_blocking(&store);
    let (outcomes, _) = present_concurrently(&store, first, 64, Duration::ZERO);
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
}

pub fn concurrent_presentations_rotate_exactly_once(store: Arc<dyn Store>) {
    let first = with_token_blocking(&store);
    let (outcomes, successors) = present_concurrently(&store, first, 32, Duration::ZERO);
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    // Every loser presented a spent token outside the (zero) grace: the grant is gone.
    assert!(outcomes.contains(&RotateOutcome::Replayed {
        grant_id: "g1".into()
    }));
    let every: Vec<[u8; 32]> = std::iter::once(first).chain(successors).collect();
    assert!(
        runtime()
            .block_on(unspent(&*store, "g1", &every))
            .is_empty()
    );
}

pub fn concurrent_retries_within_the_grace_leave_one_live_chain(store: Arc<dyn Store>) {
    let first = with_token_blocking(&store);
    let (outcomes, successors) = present_concurrently(&store, first, 32, GRACE);
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { retried: false, .. }))
        .count();
    let retries = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { retried: true, .. }))
        .count();
    assert_eq!((fresh, retries), (1, 31), "{outcomes:?}");
    let rt = runtime();
    let spent = rt.block_on(store.find_refresh(&first)).unwrap().unwrap();
    let every: Vec<[u8; 32]> = std::iter::once(first).chain(successors).collect();
    assert_eq!(
        rt.block_on(unspent(&*store, "g1", &every)),
        [spent.rotated.unwrap().successor]
    );
}

/// Replicas rewriting one grant at once with different subjects and clients: the
/// listing indexes end up saying what the stored grant says — it is listed under its
/// final subject and client, and under no other.
pub fn concurrent_rewrites_of_a_grant_keep_the_listing_consistent(store: Arc<dyn Store>) {
    use crate::store::{GrantFilter, Page};

    let n = 16;
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                let mut grant = super::grant("g1");
                grant.subject = format!("user-{}", i % 4);
                grant.client_id = format!("client-{}", i % 3);
                start.wait();
                runtime().block_on(store.put_grant(grant)).unwrap();
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let rt = runtime();
    let stored = rt.block_on(store.get_grant("g1")).unwrap().unwrap();
    let listed_under = |subject: Option<String>, client_id: Option<String>| {
        let filter = GrantFilter {
            subject,
            client_id,
            resource: None,
        };
        rt.block_on(store.list_grants(&filter, &Page::default()))
            .unwrap()
            .items
            .len()
    };
    for i in 0..4 {
        let subject = format!("user-{i}");
        let expected = usize::from(subject == stored.subject);
        assert_eq!(listed_under(Some(subject), None), expected);
    }
    for i in 0..3 {
        let client = format!("client-{i}");
        let expected = usize::from(client == stored.client_id);
        assert_eq!(listed_under(None, Some(client)), expected);
    }
    assert_eq!(listed_under(None, None), 1);
}
