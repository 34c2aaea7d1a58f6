//! One behaviour suite for every backend: each function states a rule of the `Store`
//! contract against whatever store it is handed, and `store_behaviour!` turns the
//! list into tests for one backend (see `memory/tests.rs`, `sqlite/tests.rs`).

mod clients;
mod concurrency;
mod grants;
mod listing;
pub mod login_state;
mod passthrough;
mod probe;
pub mod rate_limits;
mod rotation;
mod signing_keys;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

pub use clients::*;
pub use concurrency::*;
pub use grants::*;
pub use listing::*;
pub use passthrough::*;
pub use probe::*;
pub use rotation::*;
pub use signing_keys::*;

use crate::domain::refresh;
use crate::domain::scope::Scopes;
use crate::store::{ClientOrigin, Grant, RefreshRecord, Store, StoredClient, UpstreamTokens};

pub const GRACE: Duration = Duration::from_secs(10);

/// A backend under test, with whatever must outlive it (a temporary directory).
pub struct Subject {
    pub store: Arc<dyn Store>,
    _keep: Box<dyn Any + Send>,
}

impl Subject {
    pub fn new(store: Arc<dyn Store>, keep: impl Any + Send) -> Self {
        Self {
            store,
            _keep: Box::new(keep),
        }
    }
}

pub fn client(id: &str, issued_at: u64, last_used_at: Option<u64>) -> StoredClient {
    StoredClient {
        client_id: id.into(),
        secret_hash: None,
        metadata: serde_json::json!({}),
        fingerprint: [0; 32],
        issued_at,
        last_used_at,
        origin: ClientOrigin::Local,
    }
}

pub fn grant(id: &str) -> Grant {
    Grant {
        grant_id: id.into(),
        subject: "alice".into(),
        client_id: "c1".into(),
        scopes: Scopes::of(["notes:read", "offline_access"]),
        resource: Some("https://mcp.example/mcp".into()),
        upstream: UpstreamTokens {
            access_token: "upstream-at".into(),
            refresh_token: Some("upstream-rt".into()),
            expires_at: Some(100),
            scope: Some("openid".into()),
            obtained_at: None,
            // Kept (sealed) with the provider's tokens by every backend.
            identity: Some(crate::domain::identity::Identity {
                email: Some("alice@example.com".into()),
                username: Some("alice".into()),
                groups: Some(vec!["mcp-users".into(), "staff".into()]),
            }),
        },
        created_at: 0,
        revoked_at: None,
    }
}

/// A fresh refresh token of `grant_id` issued at `now`, living 1 000 s.
pub fn record(grant_id: &str, now: u64) -> RefreshRecord {
    let (_, hash) = refresh::new_token();
    RefreshRecord {
        hash,
        grant_id: grant_id.into(),
        scopes: Scopes::of(["notes:read"]),
        issued_at: now,
        expires_at: now + 1_000,
        rotated: None,
    }
}

/// Grant `g1` with one refresh token issued at 0; returns the token's hash.
pub async fn with_token(store: &dyn Store) -> [u8; 32] {
    store.put_grant(grant("g1")).await.unwrap();
    let first = record("g1", 0);
    let hash = first.hash;
    store.put_refresh(first).await.unwrap();
    hash
}

/// Of `candidates`, the tokens of `grant_id` that can still be presented without
/// being spent.
pub async fn unspent(store: &dyn Store, grant_id: &str, candidates: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for hash in candidates {
        if let Some(r) = store.find_refresh(hash).await.unwrap()
            && r.grant_id == grant_id
            && r.rotated.is_none()
        {
            out.push(r.hash);
        }
    }
    out
}

/// Declares one test per suite function for the backend `$open()` returns (a
/// [`Subject`]).
macro_rules! store_behaviour {
    ($open:path) => {
        $crate::store::suite::store_behaviour!(@async $open;
            stale_clients_are_the_unused_and_the_idle,
            clients_round_trip_with_every_origin,
            touching_a_client_keeps_its_latest_use,
            a_code_replay_revokes_every_token_issued_from_the_code,
            upstream_tokens_change_only_on_a_live_grant,
            grants_and_refresh_tokens_round_trip,
            replacing_a_grant_keeps_its_refresh_tokens,
            refresh_tokens_need_a_live_grant,
            sweep_drops_expired_tokens_and_dead_grants,
            rotation_spends_the_token_and_stores_its_successor,
            a_retry_within_the_grace_replaces_the_lost_successor,
            a_successor_superseded_by_a_retry_presented_later_revokes_the_grant,
            a_superseded_successor_is_a_replay_after_the_grace_too,
            a_replay_outside_the_grace_revokes_the_grant_and_its_chain,
            expired_unknown_and_revoked_change_nothing,
            a_retry_after_the_successor_was_used_is_a_replay,
            the_successor_joins_the_presented_tokens_grant,
            a_deleted_token_is_unknown,
            a_spent_token_presented_after_its_expiry_is_expired_not_a_replay,
            signing_keys_round_trip_oldest_activation_first,
            only_the_first_set_of_signing_keys_is_kept,
            retired_signing_keys_are_deleted,
            the_first_consent_cookie_key_is_kept,
            passthrough_tokens_are_found_by_digest_until_they_expire,
            an_assertion_is_spent_once_until_its_record_expires,
            grants_are_listed_in_id_order_by_subject_client_and_resource,
            a_cursor_stays_valid_while_grants_are_added,
            listed_grants_show_revocation_and_the_last_refresh,
            a_replaced_grant_moves_between_filters_and_a_swept_one_leaves,
            clients_are_listed_in_id_order_a_page_at_a_time,
            a_probe_succeeds_and_changes_nothing,
        );
        $crate::store::suite::store_behaviour!(@threads $open;
            concurrent_tasks_presenting_one_token_rotate_it_once,
            concurrent_presentations_rotate_exactly_once,
            concurrent_retries_within_the_grace_leave_one_live_chain,
            replicas_starting_together_keep_one_first_key,
            concurrent_rewrites_of_a_grant_keep_the_listing_consistent,
        );
    };
    (@async $open:path; $($name:ident),* $(,)?) => {$(
        #[actix_web::test]
        async fn $name() {
            let subject = $open();
            $crate::store::suite::$name(&*subject.store).await;
        }
    )*};
    (@threads $open:path; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let subject = $open();
            $crate::store::suite::$name(subject.store.clone());
        }
    )*};
}
pub(crate) use store_behaviour;
