use std::time::Duration;

use super::*;
use crate::domain::scope::Scopes;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn request() -> Authorization {
    Authorization {
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        code_challenge: CHALLENGE.into(),
        state: Some("s".into()),
        scopes: Scopes::parse("notes:read").unwrap(),
        resource: Some("https://mcp.example/mcp".into()),
    }
}

fn grant() -> CodeGrant {
    CodeGrant {
        grant_id: "g1".into(),
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        code_challenge: CHALLENGE.into(),
        scopes: Scopes::parse("notes:read").unwrap(),
        resource: None,
        subject: "alice".into(),
    }
}

fn redeem(code: &str, verifier: &str) -> RedeemProxyCode {
    RedeemProxyCode {
        code: code.into(),
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        verifier: verifier.into(),
    }
}

#[actix::test]
async fn a_session_is_approved_then_taken_once() {
    let addr = Sessions::new(SessionLimits::default(), Clock::system()).start();
    let ticket = addr
        .send(StartSession { request: request() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        addr.send(ReadSession {
            id: ticket.id.clone()
        })
        .await
        .unwrap(),
        Ok(request())
    );
    let forged = addr
        .send(ApproveSession {
            id: ticket.id.clone(),
            csrf: "forged".into(),
            remember: Remember::No,
        })
        .await
        .unwrap();
    assert_eq!(forged, Err(SessionError::Csrf));
    let leg = addr
        .send(ApproveSession {
            id: ticket.id.clone(),
            csrf: ticket.csrf.clone(),
            remember: Remember::No,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leg.state, ticket.id);
    let again = addr
        .send(ApproveSession {
            id: ticket.id.clone(),
            csrf: ticket.csrf.clone(),
            remember: Remember::No,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, leg, "a double click gets the same upstream leg");
    assert_eq!(
        addr.send(TakeSession {
            state: leg.state.clone(),
            csrf: "another browser".into(),
        })
        .await
        .unwrap(),
        Err(SessionError::Csrf),
        "the callback must come back to the browser that started the login"
    );
    let (taken, taken_leg) = addr
        .send(TakeSession {
            state: leg.state.clone(),
            csrf: ticket.csrf.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken, taken_leg), (request(), leg.clone()));
    assert_eq!(
        addr.send(TakeSession {
            state: leg.state,
            csrf: ticket.csrf
        })
        .await
        .unwrap(),
        Err(SessionError::UnknownSession)
    );
}

#[actix::test]
async fn unapproved_denied_and_expired_sessions_end_there() {
    let clock = Clock::system();
    let addr = Sessions::new(SessionLimits::default(), clock.clone()).start();
    let ticket = addr
        .send(StartSession { request: request() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        addr.send(TakeSession {
            state: ticket.id.clone(),
            csrf: ticket.csrf.clone(),
        })
        .await
        .unwrap(),
        Err(SessionError::NotApproved)
    );
    let ticket = addr
        .send(StartSession { request: request() })
        .await
        .unwrap()
        .unwrap();
    let denied = addr
        .send(DenySession {
            id: ticket.id.clone(),
            csrf: ticket.csrf.clone(),
        })
        .await
        .unwrap();
    assert_eq!(denied, Ok(request()));
    let ticket = addr
        .send(StartSession { request: request() })
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(601));
    let late = addr
        .send(ApproveSession {
            id: ticket.id,
            csrf: ticket.csrf,
            remember: Remember::No,
        })
        .await
        .unwrap();
    assert_eq!(late, Err(SessionError::UnknownSession));
    assert_eq!(addr.send(SweepSessions).await.unwrap().sessions, 1);
}

#[actix::test]
async fn the_session_bound_answers_full_without_evicting() {
    let limits = SessionLimits {
        max_sessions: 2,
        ..SessionLimits::default()
    };
    let addr = Sessions::new(limits, Clock::system()).start();
    let first = addr
        .send(StartSession { request: request() })
        .await
        .unwrap()
        .unwrap();
    addr.send(StartSession { request: request() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        addr.send(StartSession { request: request() })
            .await
            .unwrap(),
        Err(SessionError::Full)
    );
    assert!(
        addr.send(ReadSession { id: first.id })
            .await
            .unwrap()
            .is_ok()
    );
}

#[actix::test]
async fn a_code_is_redeemed_once_and_a_replay_names_the_grant() {
    let addr = Sessions::new(SessionLimits::default(), Clock::system()).start();
    let code = addr
        .send(MintProxyCode { grant: grant() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        addr.send(redeem(&code, VERIFIER))
            .await
            .unwrap()
            .map(|r| r.grant),
        Ok(grant())
    );
    assert_eq!(
        addr.send(redeem(&code, VERIFIER))
            .await
            .unwrap()
            .map(|r| r.grant),
        Err(SessionError::Replayed {
            grant_id: "g1".into()
        })
    );
    assert_eq!(
        addr.send(redeem("unknown", VERIFIER))
            .await
            .unwrap()
            .map(|r| r.grant),
        Err(SessionError::InvalidCode)
    );
}

#[actix::test]
async fn mismatched_redemptions_do_not_spend_the_code() {
    let clock = Clock::system();
    let addr = Sessions::new(SessionLimits::default(), clock.clone()).start();
    let code = addr
        .send(MintProxyCode { grant: grant() })
        .await
        .unwrap()
        .unwrap();
    let wrong_verifier = "x".repeat(43);
    assert!(matches!(
        addr.send(redeem(&code, &wrong_verifier))
            .await
            .unwrap()
            .map(|r| r.grant),
        Err(SessionError::Mismatch(_))
    ));
    let mut other_client = redeem(&code, VERIFIER);
    other_client.client_id = "c2".into();
    assert!(matches!(
        addr.send(other_client).await.unwrap(),
        Err(SessionError::Mismatch(_))
    ));
    let mut other_redirect = redeem(&code, VERIFIER);
    other_redirect.redirect_uri = "http://127.0.0.1:5001/cb".into();
    assert!(matches!(
        addr.send(other_redirect).await.unwrap(),
        Err(SessionError::Mismatch(_))
    ));
    assert!(addr.send(redeem(&code, VERIFIER)).await.unwrap().is_ok());
    let expired = addr
        .send(MintProxyCode { grant: grant() })
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        addr.send(redeem(&expired, VERIFIER))
            .await
            .unwrap()
            .map(|r| r.grant),
        Err(SessionError::InvalidCode)
    );
}

#[actix::test]
async fn a_spent_code_without_its_binding_is_a_mismatch_not_a_replay() {
    let addr = Sessions::new(SessionLimits::default(), Clock::system()).start();
    let code = addr
        .send(MintProxyCode { grant: grant() })
        .await
        .unwrap()
        .unwrap();
    assert!(addr.send(redeem(&code, VERIFIER)).await.unwrap().is_ok());
    let wrong_verifier = redeem(&code, &"x".repeat(43));
    let mut other_client = redeem(&code, VERIFIER);
    other_client.client_id = "c2".into();
    let mut other_redirect = redeem(&code, VERIFIER);
    other_redirect.redirect_uri = "http://127.0.0.1:5001/cb".into();
    for stranger in [wrong_verifier, other_client, other_redirect] {
        assert!(matches!(
            addr.send(stranger).await.unwrap(),
            Err(SessionError::Mismatch(_))
        ));
    }
    // The client it was minted for, with its verifier, replaying: the grant must go.
    assert_eq!(
        addr.send(redeem(&code, VERIFIER))
            .await
            .unwrap()
            .map(|r| r.grant),
        Err(SessionError::Replayed {
            grant_id: "g1".into()
        })
    );
}

#[actix::test]
async fn the_sweep_is_counted_in_metrics() {
    let clock = Clock::system();
    let metrics = crate::telemetry::metrics::Metrics::new().unwrap();
    let addr = Sessions::new(SessionLimits::default(), clock.clone())
        .with_metrics(metrics.clone())
        .start();
    for _ in 0..2 {
        addr.send(StartSession { request: request() })
            .await
            .unwrap()
            .unwrap();
    }
    clock.advance(Duration::from_secs(601));
    assert_eq!(addr.send(SweepSessions).await.unwrap().sessions, 2);
    let text = metrics.render().unwrap();
    assert!(
        text.contains("token_broker_login_state_expired_total{kind=\"session\"} 2"),
        "{text}"
    );
}

#[actix::test]
async fn the_handle_runs_a_login_to_its_code_and_the_code_once() {
    let sessions = SessionsHandle::spawn(Sessions::new(SessionLimits::default(), Clock::system()));
    let ticket = sessions.start(request()).await.unwrap();
    assert_eq!(sessions.read(&ticket.id).await, Ok(request()));
    let leg = sessions
        .approve(&ticket.id, &ticket.csrf, Remember::Asked)
        .await
        .unwrap();
    assert_eq!(leg.state, ticket.id);
    let (taken, same) = sessions.take(&ticket.id, &ticket.csrf).await.unwrap();
    assert_eq!((taken, same), (request(), leg));
    let code = sessions.mint_code(grant()).await.unwrap();
    assert_eq!(
        sessions
            .redeem_code(redeem(&code, VERIFIER))
            .await
            .map(|r| r.grant),
        Ok(grant())
    );
    assert_eq!(
        sessions
            .redeem_code(redeem(&code, VERIFIER))
            .await
            .map(|r| r.grant),
        Err(SessionError::Replayed {
            grant_id: "g1".into()
        })
    );
}

#[actix::test]
async fn a_stopped_actor_answers_stopped_through_the_handle() {
    let arbiter = actix::Arbiter::new();
    let addr = Sessions::start_in_arbiter(&arbiter.handle(), |_| {
        Sessions::new(SessionLimits::default(), Clock::system())
    });
    arbiter.stop();
    arbiter.join().unwrap();
    let sessions = SessionsHandle::from_addr(addr);
    assert_eq!(sessions.start(request()).await, Err(SessionError::Stopped));
    assert_eq!(
        sessions.deny("id", "csrf").await,
        Err(SessionError::Stopped)
    );
    assert_eq!(
        sessions
            .redeem_code(redeem("code", VERIFIER))
            .await
            .map(|r| r.grant),
        Err(SessionError::Stopped)
    );
    assert_eq!(sessions.sweep().await, SweepCounts::default());
}
