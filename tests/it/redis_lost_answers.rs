//! A token request whose code Redis redeemed but whose tokens could not be issued —
//! Redis stalled right after the redemption, so the next store call (the grant's read)
//! got no answer — is answered 503, and the code is put back: the client's next try
//! gets its tokens, where before it was taken for a replay that revoked its grant.

use crate::login_consent::register;
use crate::login_flow::{login, redeem, verify};
use crate::redis_outage::broker_on;
use crate::replicas::Redis;

#[path = "../../src/store/redis/tests/relay.rs"]
mod relay;

use self::relay::Relay;

#[actix_web::test]
async fn a_code_whose_tokens_could_not_be_issued_is_redeemed_on_the_next_try() {
    let redis = Redis::start();
    let relay = Relay::start(redis.port);
    let (broker, _idp) = broker_on(&relay.url(), "").await;
    let client = register(broker.as_str(), "lost answers").await;
    let code = login(broker.as_str(), &client, &[]).await;

    // Redis redeems the code and answers; from the grant's read on (`HGETALL` of its
    // key, the next call), Redis runs what it is sent and answers nothing.
    relay.hold_from(b"replicas:grant:");
    let (status, body) = redeem(broker.as_str(), &client, &code).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        relay.holding(),
        "the request never read the grant: the test would prove nothing"
    );
    relay.hold(false);

    // The client tries again with its code: tokens, and they work.
    let (status, tokens) = redeem(broker.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(verify(broker.as_str(), access).await.0, 200);
    // And the code is spent now: a third presentation is the replay it always was.
    let (status, body) = redeem(broker.as_str(), &client, &code).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(verify(broker.as_str(), access).await.0, 401);
}
