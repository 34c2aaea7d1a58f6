//! A client's public keys (RFC 7591 §2 `jwks`, RFC 7517), checked before they are
//! kept: signing keys of the types the broker verifies with, never a private or a
//! symmetric key (a client that sends its private key has leaked it; an HMAC key would
//! let anyone who reads the registration sign as the client).

use serde_json::Value;

/// The most keys a client may publish inline.
const MAX_KEYS: usize = 10;
/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// The signature algorithms a client assertion may use: every one the broker verifies
/// (`domain::jws::Alg`; `none` and HMAC never).
pub const CLIENT_ASSERTION_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// Whether `jwks` is a JWK Set of public signing keys the broker can verify with.
pub fn check_public_jwks(jwks: &Value) -> Result<(), String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("jwks must be an object with a `keys` array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("jwks must hold 1 to {MAX_KEYS} keys"));
    }
    for (index, key) in keys.iter().enumerate() {
        check_key(key).map_err(|why| format!("jwks key {index}: {why}"))?;
    }
    Ok(())
}

fn check_key(key: &Value) -> Result<(), String> {
    let Value::Object(key) = key else {
        return Err("not a JSON object".to_owned());
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
        return Err(format!(
            "holds the private member `{member}`: publish only the public key"
        ));
    }
    let text = |name: &str| key.get(name).and_then(Value::as_str);
    if text("use").is_some_and(|u| u != "sig") {
        return Err("`use` must be sig".to_owned());
    }
    if let Some(alg) = text("alg")
        && !CLIENT_ASSERTION_ALGS.contains(&alg)
    {
        return Err(format!(
            "alg `{alg}` is not one of {}",
            CLIENT_ASSERTION_ALGS.join(", ")
        ));
    }
    let needs = |members: &[&str]| match members.iter().find(|m| text(m).is_none()) {
        Some(missing) => Err(format!("`{missing}` is missing")),
        None => Ok(()),
    };
    match (text("kty"), text("crv")) {
        (Some("RSA"), _) => needs(&["n", "e"]),
        (Some("EC"), Some("P-256" | "P-384" | "P-521")) => needs(&["x", "y"]),
        (Some("OKP"), Some("Ed25519")) => needs(&["x"]),
        (Some(kty @ ("EC" | "OKP")), crv) => Err(format!(
            "{kty} curve `{}` is not supported",
            crv.unwrap_or("")
        )),
        (Some(kty), _) => Err(format!("kty `{kty}` is not RSA, EC or OKP")),
        (None, _) => Err("`kty` is missing".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::jws::Alg;

    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn public_signing_keys_pass() {
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a", "alg": "ES256", "use": "sig"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": X},
            {"kty": "EC", "crv": "P-521", "x": X, "y": Y, "alg": "ES512"}
        ]});
        assert_eq!(check_public_jwks(&jwks), Ok(()));
    }

    #[test]
    fn the_listed_algorithms_are_those_verified() {
        let names: Vec<&str> = Alg::ALL.iter().map(|alg| alg.as_str()).collect();
        assert_eq!(CLIENT_ASSERTION_ALGS, names);
    }

    #[test]
    fn private_symmetric_and_odd_keys_are_refused() {
        let refused = [
            json!({"keys": []}),
            json!({"nokeys": 1}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": X, "y": Y, "d": "x"}]}),
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            json!({"keys": [{"kty": "RSA", "n": "sXch", "e": "AQAB", "alg": "HS256"}]}),
            json!({"keys": [{"kty": "RSA", "n": "sXch", "e": "AQAB", "alg": "none"}]}),
            json!({"keys": [{"kty": "RSA", "n": "sXch", "e": "AQAB", "use": "enc"}]}),
            json!({"keys": [{"kty": "EC", "crv": "secp256k1", "x": X, "y": Y}]}),
            json!({"keys": [{"kty": "RSA", "e": "AQAB"}]}),
        ];
        for jwks in refused {
            assert!(check_public_jwks(&jwks).is_err(), "{jwks}");
        }
    }
}
