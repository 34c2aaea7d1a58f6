//! A P-521 key pair that signs compact JWS with ES512, for tests (the broker itself
//! only verifies ES512). Self-contained, so that the integration tests include it too.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The size of one P-521 coordinate.
const COORDINATE: usize = 66;

/// A P-521 key pair that signs compact JWS with ES512, as Keycloak or Hydra would.
pub struct Es512 {
    pair: EcdsaKeyPair,
    pub kid: String,
}

impl Es512 {
    pub fn generate(kid: &str) -> Self {
        Self {
            pair: EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).unwrap(),
            kid: kid.to_owned(),
        }
    }

    /// Its public JWK (`kty` EC, `crv` P-521), with `extra` members merged in.
    pub fn jwk(&self, extra: Value) -> Value {
        let point = self.pair.public_key().as_ref();
        assert_eq!(point.len(), 1 + 2 * COORDINATE);
        let (x, y) = point[1..].split_at(COORDINATE);
        let mut jwk = json!({
            "kty": "EC", "crv": "P-521", "kid": self.kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        if let (Some(jwk), Some(extra)) = (jwk.as_object_mut(), extra.as_object()) {
            jwk.extend(extra.clone());
        }
        jwk
    }

    /// A JWKS of this one key.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk(json!({"alg": "ES512"}))]})
    }

    /// `claims` signed with `header` (to which `alg` ES512 and this `kid` are added).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut header = header;
        header["alg"] = json!("ES512");
        header["kid"] = json!(self.kid);
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signature(input.as_bytes());
        format!("{input}.{signature}")
    }

    /// The ES512 signature of `input` (a JWS's first two parts), base64url.
    pub fn signature(&self, input: &[u8]) -> String {
        let signature = self.pair.sign(&SystemRandom::new(), input).unwrap();
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    }
}
