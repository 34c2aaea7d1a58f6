//! `upstream.client_auth = "private_key_jwt"` against the oidc-provider rig, whose
//! client `token-broker-jwt` has no secret, only the public key the test generated: the
//! broker's code redemption, its refresh of the grant's provider tokens and its token
//! exchange each authenticate with a client assertion signed by the configured key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use token_broker::tokens::keypair::{KeyPair, SigningAlg};

use crate::e2e_oidc_login::log_in_at_provider;
use crate::e2e_oidc_provider::start_rig_with;
use crate::login_consent::{query, register};
use crate::login_flow::{redeem, token};
use crate::support::{TestBroker, UPSTREAM_PLACEHOLDER, config_text, http};

const NOTES: &str = "https://notes.example/api";
const CALLER: (&str, &str) = ("notes-mcp", "notes-mcp-secret-0123456789");

fn pem(key: &KeyPair) -> String {
    let body = STANDARD.encode(key.pkcs8());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn provider_tokens(broker: &TestBroker, access: &str) -> (String, Option<u64>) {
    let grant = broker.grant_behind(access).await;
    (grant.upstream.access_token, grant.upstream.expires_at)
}

#[actix_web::test]
async fn the_broker_authenticates_at_oidc_provider_with_its_private_key() {
    for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
        let key = KeyPair::generate(alg).unwrap();
        let jwks = json!({ "keys": [key.jwk] }).to_string();
        let rig = start_rig_with(&[("OIDC_PROVIDER_CLIENT_JWKS", &jwks)]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker-key.pem");
        std::fs::write(&path, pem(&key)).unwrap();
        let upstream = format!(
            "client_id = \"token-broker-jwt\"\nclient_auth = \"private_key_jwt\"\nclient_key = \"file:{}\"\nclient_key_id = \"{}\"",
            path.display(),
            key.kid
        );
        let text = format!(
            r#"{}
[[exchange.audiences]]
audience = "{NOTES}"
scopes = ["notes:read", "notes:write"]

[[exchange.clients]]
client_id = "{}"
client_secret = "{}"
audiences = ["{NOTES}"]
"#,
            config_text()
                .replace(UPSTREAM_PLACEHOLDER, &rig.issuer)
                .replace(
                    "client_id = \"token-broker\"\nclient_secret = \"test-secret\"",
                    &upstream
                ),
            CALLER.0,
            CALLER.1
        );
        let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
        assert!(
            !format!("{:?}", broker.state.config.upstream).contains(&pem(&key)[40..80]),
            "the key never appears in the configuration's Debug"
        );

        // Code redemption at the provider.
        let client = register(&broker, "E2E client").await;
        let scope = [("scope", "notes:read notes:write")];
        let (landed, hops) = log_in_at_provider(&broker, &rig, &client, &scope).await;
        let code = query(&landed, "code").unwrap_or_else(|| panic!("no code: {landed} {hops:?}"));
        let (status, login) = redeem(&broker, &client, &code).await;
        assert_eq!(status, 200, "{alg:?}: {login}");
        let access = login["access_token"].as_str().unwrap();
        let (first, expires_at) = provider_tokens(&broker, access).await;
        assert_eq!(claims(&first)["client_id"], "token-broker-jwt");

        // Token exchange at the provider.
        let exchanged: Value = http()
            .post(broker.at("/oauth/token"))
            .basic_auth(CALLER.0, Some(CALLER.1))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", access),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("audience", NOTES),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let downstream = exchanged["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{exchanged}"));
        assert_eq!(claims(downstream)["aud"], NOTES);
        assert_eq!(claims(downstream)["client_id"], "token-broker-jwt");

        // The provider's access token expired by the broker's clock: the broker's
        // refresh refreshes it at the provider first.
        let past = expires_at.unwrap() + 60 - broker.clock.unix();
        broker.clock.advance(std::time::Duration::from_secs(past));
        let (status, refreshed) = token(
            &broker,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", login["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{alg:?}: {refreshed}");
        let (second, _) =
            provider_tokens(&broker, refreshed["access_token"].as_str().unwrap()).await;
        assert_ne!(second, first, "the provider issued a new access token");
    }
}
