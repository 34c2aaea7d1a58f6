//! Token exchange over two `token-broker serve` processes on one Redis (see
//! `replicas`): 200 identical exchange misses spread over replicas A and B are one
//! exchange at the provider, all answered with the same downstream token; a revoke on
//! B ends A's exchanges for that grant. The same two processes on memory stores call
//! the provider once each, so the test can fail. The development IdP runs in the test
//! process, slowed so the misses overlap, and its call counters are read.

use std::time::Instant;

use serde_json::{Value, json};

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::replicas::{CALLER, NOTES, Redis, Replicas, Shared, until_refused};
use crate::support::{TestDevIdp, http};

/// The dev IdP's counter of token-exchange grants.
const EXCHANGES: &str = "token:urn:ietf:params:oauth:grant-type:token-exchange";

/// `per_replica` identical exchanges of `subject` on each of `replicas`, all in
/// flight at once; every answer's status and body.
pub(crate) async fn exchange_burst(
    replicas: &[&str],
    subject: &str,
    per_replica: usize,
) -> Vec<(u16, Value)> {
    let client = http();
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("audience", NOTES),
    ];
    let requests = (0..per_replica).flat_map(|_| replicas.iter()).map(|base| {
        let request = client
            .post(format!("{base}/oauth/token"))
            .basic_auth(CALLER.0, Some(CALLER.1))
            .form(&form)
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
    });
    futures_util::future::join_all(requests).await
}

/// The one downstream token every answer carries.
fn the_one_token(answers: &[(u16, Value)]) -> String {
    let first = answers[0].1["access_token"].as_str().unwrap_or_default();
    for (status, body) in answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["access_token"], first, "two downstream tokens");
    }
    first.to_owned()
}

/// Makes the dev IdP's token endpoint slow, so misses on both replicas overlap.
pub(crate) async fn slow_token_endpoint(idp: &TestDevIdp, ms: u64) {
    idp.fault(json!({ "endpoint": "token", "latency_ms": ms }))
        .await;
}

/// A provider token for the dev IdP's service account, for the resource at `issuer`:
/// a subject any replica verifies without a shared store.
async fn service_token(idp: &TestDevIdp, issuer: &str) -> String {
    let body: Value = http()
        .post(format!("{}/token", idp.url))
        .basic_auth("demo-service", Some("demo-service-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
            ("resource", &format!("{issuer}/mcp")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn two_hundred_identical_exchange_misses_over_two_replicas_are_one_upstream_exchange() {
    let redis = Redis::start();
    let idp = TestDevIdp::start().await;
    let replicas = Replicas::start(&idp, Shared::Redis(redis.url())).await;
    let (a, b) = (replicas.a(), replicas.b());
    let client = register(a.as_str(), "exchanging client").await;
    let code = login(a.as_str(), &client, &[]).await;
    let (status, tokens) = redeem(a.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let service = service_token(&idp, &a).await;
    slow_token_endpoint(&idp, 200).await;

    // A broker-issued subject (its grant's provider token is exchanged), then a
    // provider-issued one: 100 misses on each replica at once, one exchange each.
    for subject in [access, service.as_str()] {
        let before = idp.calls(EXCHANGES).await;
        let started = Instant::now();
        let answers = exchange_burst(&[a.as_str(), b.as_str()], subject, 100).await;
        eprintln!(
            "replicas: 200 identical exchanges over A and B with 200 ms at the provider answered in {:?}",
            started.elapsed()
        );
        assert_eq!(answers.len(), 200);
        let downstream = the_one_token(&answers);
        assert_ne!(downstream, subject, "never the client's token");
        assert_eq!(
            idp.calls(EXCHANGES).await,
            before + 1,
            "{}",
            replicas.logs()
        );
    }
    // Each replica counted what it coalesced: per subject, one replica's miss was
    // answered by the other's call, and up to 99 requests on each waited for their
    // replica's miss (the rest, arriving later, were cache hits).
    let (mut local, mut replica) = (0, 0);
    for base in [&a, &b] {
        let text = http()
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        local += series(
            &text,
            r#"token_broker_exchange_coalesced_total{where="local"}"#,
        );
        replica += series(
            &text,
            r#"token_broker_exchange_coalesced_total{where="replica"}"#,
        );
    }
    eprintln!("replicas: coalesced in process {local}, across replicas {replica}");
    assert_eq!(replica, 2, "one replica waited for the other, per subject");
    assert!((1..=2 * 198).contains(&local), "{local}");

    // A revocation on B reaches A, whose cached exchange does not outlive it.
    let revoked = http()
        .post(format!("{b}/oauth/revoke"))
        .form(&[
            ("client_id", client.as_str()),
            ("token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    until_refused(&a, access).await;
    let answers = exchange_burst(&[a.as_str()], access, 1).await;
    assert_eq!(answers[0].0, 400, "{}", answers[0].1);
    assert!(answers[0].1.get("access_token").is_none());
}

/// A counter's value in a Prometheus text exposition (0 when absent).
fn series(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn without_a_shared_store_each_replica_calls_the_provider_itself() {
    let idp = TestDevIdp::start().await;
    let replicas = Replicas::start(&idp, Shared::Nothing).await;
    let (a, b) = (replicas.a(), replicas.b());
    let service = service_token(&idp, &a).await;
    slow_token_endpoint(&idp, 200).await;

    let before = idp.calls(EXCHANGES).await;
    let answers = exchange_burst(&[a.as_str(), b.as_str()], &service, 100).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    // Coalesced within each process, not between them.
    assert_eq!(idp.calls(EXCHANGES).await, before + 2);
}
