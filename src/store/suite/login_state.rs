//! The `LoginState` contract, for every implementation: each function states one rule
//! against whatever it is handed, and `login_state_behaviour!` turns the list into
//! tests (see `memory/login_state.rs`, `redis/tests/login_state.rs`). Time is passed
//! in throughout: expiry needs no sleeping.

use std::any::Any;
use std::sync::{Arc, Barrier};

use crate::domain::authorize::Authorization;
use crate::domain::scope::Scopes;
use crate::store::{
    Admission, CodeGrant, LoginSession, LoginState, LoginSweep, Redeemer, Redemption, Remember,
    SessionStep, StoredCode, UpstreamLeg,
};

/// An implementation under test, with whatever must outlive it (a Redis server).
pub struct LoginSubject {
    pub state: Arc<dyn LoginState>,
    _keep: Box<dyn Any + Send>,
}

impl LoginSubject {
    pub fn new(state: Arc<dyn LoginState>, keep: impl Any + Send) -> Self {
        Self {
            state,
            _keep: Box::new(keep),
        }
    }
}

/// Far beyond what any test holds.
pub const ROOMY: usize = 1_000;

pub fn request() -> Authorization {
    Authorization {
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        state: Some("client state".into()),
        scopes: Scopes::of(["notes:read", "offline_access"]),
        resource: Some("https://mcp.example/mcp".into()),
    }
}

/// A fresh session expiring at `expires_at`, with CSRF token `csrf-1`.
pub fn session(expires_at: u64) -> LoginSession {
    LoginSession {
        request: request(),
        csrf: "csrf-1".into(),
        expires_at,
        leg: None,
    }
}

pub fn leg(id: &str, verifier: &str) -> UpstreamLeg {
    UpstreamLeg {
        state: id.into(),
        verifier: verifier.into(),
        nonce: format!("nonce-of-{verifier}"),
        remember: Remember::For(format!("subject-of-{verifier}")),
    }
}

pub fn code_grant(grant_id: &str) -> CodeGrant {
    CodeGrant {
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: Scopes::of(["notes:read"]),
        resource: None,
        subject: "alice".into(),
    }
}

pub async fn a_session_is_approved_once_and_taken_once(state: &dyn LoginState) {
    let put = state.put_session("s1", session(600), 0, ROOMY).await;
    assert_eq!(put.unwrap(), Admission::Stored);
    assert_eq!(
        state.get_session("s1", 10).await.unwrap(),
        Some(session(600))
    );
    assert_eq!(state.get_session("s2", 10).await.unwrap(), None);

    let forged = state.approve_session("s1", "forged", leg("s1", "v1"), 10);
    assert_eq!(forged.await.unwrap(), SessionStep::Csrf);
    let approved = state.approve_session("s1", "csrf-1", leg("s1", "v1"), 10);
    assert_eq!(approved.await.unwrap(), SessionStep::Done(leg("s1", "v1")));
    // A double click (or a replayed form) gets the first leg, not a new one.
    let again = state.approve_session("s1", "csrf-1", leg("s1", "v2"), 11);
    assert_eq!(again.await.unwrap(), SessionStep::Done(leg("s1", "v1")));
    let stored = state.get_session("s1", 12).await.unwrap().unwrap();
    assert_eq!(stored.leg, Some(leg("s1", "v1")));

    // Another browser's token leaves the session in place.
    let other = state.take_session("s1", "csrf-2", 20).await.unwrap();
    assert_eq!(other, SessionStep::Csrf);
    let taken = state.take_session("s1", "csrf-1", 20).await.unwrap();
    assert_eq!(taken, SessionStep::Done((request(), leg("s1", "v1"))));
    let twice = state.take_session("s1", "csrf-1", 20).await.unwrap();
    assert_eq!(twice, SessionStep::Unknown);
    assert_eq!(state.get_session("s1", 20).await.unwrap(), None);
}

pub async fn an_unapproved_session_taken_or_denied_ends(state: &dyn LoginState) {
    let mut bare = session(600);
    bare.request.state = None;
    bare.request.resource = None;
    bare.request.scopes = Scopes::default();
    state
        .put_session("s0", bare.clone(), 0, ROOMY)
        .await
        .unwrap();
    let forged = state.take_session("s0", "forged", 1).await.unwrap();
    assert_eq!(forged, SessionStep::Csrf);
    // A callback before consent is out of order: the login must start again.
    let early = state.take_session("s0", "csrf-1", 1).await.unwrap();
    assert_eq!(early, SessionStep::NotApproved);
    assert_eq!(state.get_session("s0", 1).await.unwrap(), None);

    state
        .put_session("s1", bare.clone(), 0, ROOMY)
        .await
        .unwrap();
    assert_eq!(
        state.get_session("s1", 1).await.unwrap(),
        Some(bare.clone())
    );
    let forged = state.deny_session("s1", "forged", 2).await.unwrap();
    assert_eq!(forged, SessionStep::Csrf);
    let denied = state.deny_session("s1", "csrf-1", 2).await.unwrap();
    assert_eq!(denied, SessionStep::Done(bare.request));
    assert_eq!(state.get_session("s1", 2).await.unwrap(), None);
    let late = state.deny_session("s1", "csrf-1", 2).await.unwrap();
    assert_eq!(late, SessionStep::Unknown);
}

pub async fn sessions_expire_by_the_time_passed_in(state: &dyn LoginState) {
    state
        .put_session("s1", session(100), 0, ROOMY)
        .await
        .unwrap();
    state
        .put_session("s2", session(200), 0, ROOMY)
        .await
        .unwrap();
    let approved = state.approve_session("s2", "csrf-1", leg("s2", "v"), 1);
    assert!(matches!(approved.await.unwrap(), SessionStep::Done(_)));
    assert!(state.get_session("s1", 99).await.unwrap().is_some());
    assert_eq!(state.get_session("s1", 100).await.unwrap(), None);
    let approve = state.approve_session("s1", "csrf-1", leg("s1", "v"), 100);
    assert_eq!(approve.await.unwrap(), SessionStep::Unknown);
    let deny = state.deny_session("s1", "csrf-1", 100).await.unwrap();
    assert_eq!(deny, SessionStep::Unknown);
    let take = state.take_session("s2", "csrf-1", 200).await.unwrap();
    assert_eq!(take, SessionStep::Unknown);

    let swept = state.sweep_login_state(150).await.unwrap();
    assert_eq!(
        swept,
        LoginSweep {
            sessions: 1,
            codes: 0
        }
    );
    assert!(state.get_session("s2", 150).await.unwrap().is_some());
    let swept = state.sweep_login_state(200).await.unwrap();
    assert_eq!(
        swept,
        LoginSweep {
            sessions: 1,
            codes: 0
        }
    );
    let swept = state.sweep_login_state(300).await.unwrap();
    assert_eq!(swept, LoginSweep::default());
}

pub async fn the_session_bound_refuses_without_evicting(state: &dyn LoginState) {
    assert_eq!(
        state.put_session("s1", session(100), 0, 2).await.unwrap(),
        Admission::Stored
    );
    assert_eq!(
        state.put_session("s2", session(600), 0, 2).await.unwrap(),
        Admission::Stored
    );
    assert_eq!(
        state.put_session("s3", session(600), 0, 2).await.unwrap(),
        Admission::Full
    );
    assert!(state.get_session("s1", 1).await.unwrap().is_some());
    assert_eq!(state.get_session("s3", 1).await.unwrap(), None);
    // An expired session makes room; a taken one leaves it.
    assert_eq!(
        state.put_session("s3", session(600), 100, 2).await.unwrap(),
        Admission::Stored
    );
    state
        .approve_session("s2", "csrf-1", leg("s2", "v"), 101)
        .await
        .unwrap();
    let taken = state.take_session("s2", "csrf-1", 101).await.unwrap();
    assert!(matches!(taken, SessionStep::Done(_)));
    assert_eq!(
        state.put_session("s4", session(600), 101, 2).await.unwrap(),
        Admission::Stored
    );
    assert_eq!(
        state.put_session("s5", session(600), 101, 2).await.unwrap(),
        Admission::Full
    );
}

pub async fn a_code_is_redeemed_once_and_a_replay_names_the_grant(state: &dyn LoginState) {
    let put = state.put_code("k1", code_grant("g1"), 60, 0, ROOMY).await;
    assert_eq!(put.unwrap(), Admission::Stored);
    let fresh = StoredCode {
        grant: code_grant("g1"),
        expires_at: 60,
        redeemed: false,
    };
    assert_eq!(state.find_code("k1", 1).await.unwrap(), Some(fresh.clone()));
    assert_eq!(state.find_code("k2", 1).await.unwrap(), None);

    let first = state
        .redeem_code("k1", Redeemer::random(), 2)
        .await
        .unwrap();
    assert_eq!(first, Redemption::Redeemed(code_grant("g1")));
    let spent = state.find_code("k1", 3).await.unwrap();
    assert_eq!(
        spent,
        Some(StoredCode {
            redeemed: true,
            ..fresh
        })
    );
    let again = state
        .redeem_code("k1", Redeemer::random(), 3)
        .await
        .unwrap();
    assert_eq!(
        again,
        Redemption::Replayed {
            grant_id: "g1".into()
        }
    );
    assert_eq!(
        state
            .redeem_code("k2", Redeemer::random(), 3)
            .await
            .unwrap(),
        Redemption::Invalid
    );
}

/// A redemption whose tokens were never handed out is put back by the request that
/// made it, and by nothing else: the code is then redeemed as if for the first time.
pub async fn only_its_redeemer_puts_a_redemption_back(state: &dyn LoginState) {
    state
        .put_code("k1", code_grant("g1"), 60, 0, ROOMY)
        .await
        .unwrap();
    // Nothing to put back before the code is spent, nor for an unknown code.
    let first = Redeemer::random();
    assert!(!state.unredeem_code("k1", first).await.unwrap());
    assert!(!state.unredeem_code("k2", first).await.unwrap());

    let redeemed = state.redeem_code("k1", first, 2).await.unwrap();
    assert_eq!(redeemed, Redemption::Redeemed(code_grant("g1")));
    // Another request (a replay's, say) cannot unspend it.
    let other = Redeemer::random();
    assert!(!state.unredeem_code("k1", other).await.unwrap());
    assert!(state.find_code("k1", 3).await.unwrap().unwrap().redeemed);

    assert!(state.unredeem_code("k1", first).await.unwrap());
    assert!(!state.find_code("k1", 3).await.unwrap().unwrap().redeemed);
    // Once only: the put-back is done.
    assert!(!state.unredeem_code("k1", first).await.unwrap());

    // The client's next try redeems it, and what follows is a replay as before.
    let again = Redeemer::random();
    let second = state.redeem_code("k1", again, 4).await.unwrap();
    assert_eq!(second, Redemption::Redeemed(code_grant("g1")));
    assert!(!state.unredeem_code("k1", first).await.unwrap());
    assert_eq!(
        state
            .redeem_code("k1", Redeemer::random(), 5)
            .await
            .unwrap(),
        Redemption::Replayed {
            grant_id: "g1".into()
        }
    );
}

/// The token endpoint checks who presents a spent code before treating it as a
/// replay, so the binding must outlive the redemption until the code would expire.
pub async fn a_spent_codes_binding_stays_readable_until_it_expires(state: &dyn LoginState) {
    let put = state.put_code("k1", code_grant("g1"), 60, 0, ROOMY).await;
    assert_eq!(put.unwrap(), Admission::Stored);
    state
        .redeem_code("k1", Redeemer::random(), 2)
        .await
        .unwrap();
    let spent = state.find_code("k1", 59).await.unwrap();
    assert_eq!(
        spent,
        Some(StoredCode {
            grant: code_grant("g1"),
            expires_at: 60,
            redeemed: true,
        })
    );
    assert_eq!(state.find_code("k1", 60).await.unwrap(), None);
}

pub async fn codes_expire_by_the_time_passed_in(state: &dyn LoginState) {
    state
        .put_code("k1", code_grant("g1"), 60, 0, ROOMY)
        .await
        .unwrap();
    state
        .put_code("k2", code_grant("g2"), 60, 0, ROOMY)
        .await
        .unwrap();
    state
        .put_code("k3", code_grant("g3"), 120, 0, ROOMY)
        .await
        .unwrap();
    let redeemed = state
        .redeem_code("k2", Redeemer::random(), 10)
        .await
        .unwrap();
    assert_eq!(redeemed, Redemption::Redeemed(code_grant("g2")));
    assert_eq!(state.find_code("k1", 60).await.unwrap(), None);
    assert_eq!(
        state
            .redeem_code("k1", Redeemer::random(), 60)
            .await
            .unwrap(),
        Redemption::Invalid
    );
    // A spent code's tombstone goes with its expiry: then it is merely unknown.
    assert_eq!(
        state
            .redeem_code("k2", Redeemer::random(), 60)
            .await
            .unwrap(),
        Redemption::Invalid
    );
    let swept = state.sweep_login_state(60).await.unwrap();
    assert_eq!(
        swept,
        LoginSweep {
            sessions: 0,
            codes: 2
        }
    );
    assert_eq!(
        state
            .redeem_code("k3", Redeemer::random(), 61)
            .await
            .unwrap(),
        Redemption::Redeemed(code_grant("g3"))
    );
}

pub async fn the_code_bound_refuses_without_evicting(state: &dyn LoginState) {
    for (code, expires_at) in [("k1", 60), ("k2", 120)] {
        let put = state
            .put_code(code, code_grant(code), expires_at, 0, 2)
            .await;
        assert_eq!(put.unwrap(), Admission::Stored);
    }
    let full = state.put_code("k3", code_grant("k3"), 60, 0, 2).await;
    assert_eq!(full.unwrap(), Admission::Full);
    assert_eq!(
        state
            .redeem_code("k3", Redeemer::random(), 1)
            .await
            .unwrap(),
        Redemption::Invalid
    );
    // A redeemed code still counts (its tombstone catches replays); an expired one
    // makes room.
    state
        .redeem_code("k1", Redeemer::random(), 1)
        .await
        .unwrap();
    let full = state.put_code("k3", code_grant("k3"), 90, 1, 2).await;
    assert_eq!(full.unwrap(), Admission::Full);
    let room = state.put_code("k3", code_grant("k3"), 180, 60, 2).await;
    assert_eq!(room.unwrap(), Admission::Stored);
    assert!(state.find_code("k2", 60).await.unwrap().is_some());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `step(i)` from `n` threads at once (each with its own runtime, as separate
/// workers or replicas would), picking `states[i % len]`; the outcomes in order.
pub fn at_once<T, F, Fut>(states: &[Arc<dyn LoginState>], n: usize, step: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn LoginState>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T>,
{
    let start = Arc::new(Barrier::new(n));
    let step = Arc::new(step);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let state = states[i % states.len()].clone();
            let (start, step) = (start.clone(), step.clone());
            std::thread::spawn(move || {
                let rt = runtime();
                start.wait();
                rt.block_on(step(state))
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// 16 redemptions of one code at once: one gets the grant, every other a replay.
pub fn concurrent_redemptions_redeem_once(states: &[Arc<dyn LoginState>]) {
    runtime()
        .block_on(states[0].put_code("k1", code_grant("g1"), 60, 0, ROOMY))
        .unwrap();
    let outcomes = at_once(states, 16, |state| async move {
        state
            .redeem_code("k1", Redeemer::random(), 5)
            .await
            .unwrap()
    });
    let redeemed = outcomes
        .iter()
        .filter(|o| **o == Redemption::Redeemed(code_grant("g1")))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| matches!(o, Redemption::Replayed { grant_id } if grant_id == "g1"))
        .count();
    assert_eq!((redeemed, replayed), (1, 15), "{outcomes:?}");
}

/// 16 takes of one approved session at once: exactly one gets it.
pub fn concurrent_takes_take_once(states: &[Arc<dyn LoginState>]) {
    let rt = runtime();
    rt.block_on(states[0].put_session("s1", session(600), 0, ROOMY))
        .unwrap();
    rt.block_on(states[0].approve_session("s1", "csrf-1", leg("s1", "v"), 1))
        .unwrap();
    let outcomes = at_once(states, 16, |state| async move {
        state.take_session("s1", "csrf-1", 5).await.unwrap()
    });
    let taken = outcomes
        .iter()
        .filter(|o| matches!(o, SessionStep::Done(_)))
        .count();
    let unknown = outcomes
        .iter()
        .filter(|o| **o == SessionStep::Unknown)
        .count();
    assert_eq!((taken, unknown), (1, 15), "{outcomes:?}");
}

/// 16 approvals of one session at once, each with its own leg: all get the same one.
pub fn concurrent_approvals_agree_on_one_leg(states: &[Arc<dyn LoginState>]) {
    runtime()
        .block_on(states[0].put_session("s1", session(600), 0, ROOMY))
        .unwrap();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outcomes = at_once(states, 16, move |state| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let candidate = leg("s1", &format!("v{n}"));
            state
                .approve_session("s1", "csrf-1", candidate, 1)
                .await
                .unwrap()
        }
    });
    let first = &outcomes[0];
    assert!(matches!(first, SessionStep::Done(_)), "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o == first), "{outcomes:?}");
}

/// Declares one test per suite function for the implementation `$open()` returns (a
/// [`LoginSubject`]).
pub async fn live_sessions_are_listed_without_their_secrets(state: &dyn LoginState) {
    use crate::store::{Page, SessionFilter};
    for i in 0..7u64 {
        let mut s = session(if i == 6 { 50 } else { 600 });
        if i % 2 == 1 {
            s.request.client_id = "c2".into();
        }
        let id = format!("s{i}");
        state.put_session(&id, s, 0, ROOMY).await.unwrap();
    }
    let approved = state
        .approve_session("s0", "csrf-1", leg("s0", "v0"), 10)
        .await
        .unwrap();
    assert!(matches!(approved, SessionStep::Done(_)));
    let mut page = Page::first(2);
    let mut rows = Vec::new();
    loop {
        let listing = state
            .list_sessions(&SessionFilter::default(), &page, 100)
            .await
            .unwrap();
        assert!(listing.items.len() <= 2);
        rows.extend(listing.items);
        match listing.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(rows.len(), 6, "the expired session is not listed");
    let mut ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
    let s0 = crate::store::login_state::key("s0");
    let s0_hex: String = s0.iter().map(|b| format!("{b:02x}")).collect();
    let first = rows.iter().find(|r| r.id == s0_hex).unwrap();
    assert!(first.approved);
    assert_eq!(first.resource.as_deref(), Some("https://mcp.example/mcp"));
    assert_eq!(rows.iter().filter(|r| r.approved).count(), 1);
    let c2 = state
        .list_sessions(
            &SessionFilter {
                client_id: Some("c2".into()),
                resource: None,
            },
            &Page::default(),
            100,
        )
        .await
        .unwrap();
    assert_eq!(c2.items.len(), 3);
    assert!(c2.items.iter().all(|r| r.client_id == "c2"));
}

macro_rules! login_state_behaviour {
    ($open:path) => {
        $crate::store::suite::login_state::login_state_behaviour!(@async $open;
            a_session_is_approved_once_and_taken_once,
            an_unapproved_session_taken_or_denied_ends,
            sessions_expire_by_the_time_passed_in,
            live_sessions_are_listed_without_their_secrets,
            the_session_bound_refuses_without_evicting,
            a_code_is_redeemed_once_and_a_replay_names_the_grant,
            only_its_redeemer_puts_a_redemption_back,
            a_spent_codes_binding_stays_readable_until_it_expires,
            codes_expire_by_the_time_passed_in,
            the_code_bound_refuses_without_evicting,
        );
        $crate::store::suite::login_state::login_state_behaviour!(@threads $open;
            concurrent_redemptions_redeem_once,
            concurrent_takes_take_once,
            concurrent_approvals_agree_on_one_leg,
        );
    };
    (@async $open:path; $($name:ident),* $(,)?) => {$(
        #[actix_web::test]
        async fn $name() {
            let subject = $open();
            $crate::store::suite::login_state::$name(&*subject.state).await;
        }
    )*};
    (@threads $open:path; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let subject = $open();
            $crate::store::suite::login_state::$name(std::slice::from_ref(&subject.state));
        }
    )*};
}
pub(crate) use login_state_behaviour;
