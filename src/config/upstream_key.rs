//! `upstream.client_auth = "private_key_jwt"`: the broker authenticates at the
//! provider with a client assertion (RFC 7523 §2.2) signed by its own private key
//! instead of a client secret (Entra and Okta prefer it). The key is a secret
//! reference to a PEM file (PKCS#8 `PRIVATE KEY`, or `RSA PRIVATE KEY` / `EC PRIVATE
//! KEY`); its algorithm follows its type — RS256 (or PS256 when
//! `client_key_alg` says so) for RSA, ES256 for P-256, EdDSA for Ed25519 — and it is
//! tried once at load, so a key that cannot sign stops start-up.

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::Secret;

/// How the broker authenticates at the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamClientAuth {
    /// `client_secret_basic` (default): `upstream.client_secret`.
    ClientSecretBasic,
    /// `private_key_jwt`: `upstream.client_key`.
    PrivateKeyJwt,
}

impl UpstreamClientAuth {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            other => Err(format!(
                "`{other}` is not one of client_secret_basic, private_key_jwt"
            )),
        }
    }
}

/// The broker's private key at the provider. `Debug` shows the algorithm and `kid`
/// only, never the key.
#[derive(Clone)]
pub struct UpstreamClientKey {
    pub key: EncodingKey,
    pub alg: Algorithm,
    /// `upstream.client_key_id`: the `kid` the provider knows the key by, if any.
    pub kid: Option<String>,
}

impl fmt::Debug for UpstreamClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UpstreamClientKey({:?}, kid {:?}, <redacted>)",
            self.alg, self.kid
        )
    }
}

impl UpstreamClientKey {
    /// Reads the PEM in `pem`; `alg` narrows an RSA key to RS256 or PS256.
    pub fn parse(pem: &Secret, alg: Option<&str>, kid: Option<String>) -> Result<Self, String> {
        let bytes = pem.expose().as_bytes();
        let (key, by_type) = if let Ok(key) = EncodingKey::from_rsa_pem(bytes) {
            let alg = match alg {
                None | Some("RS256") => Algorithm::RS256,
                Some("PS256") => Algorithm::PS256,
                Some(other) => return Err(format!("`{other}` is not RS256 or PS256 (an RSA key)")),
            };
            (key, alg)
        } else if let Ok(key) = EncodingKey::from_ec_pem(bytes) {
            (key, Algorithm::ES256)
        } else if let Ok(key) = EncodingKey::from_ed_pem(bytes) {
            (key, Algorithm::EdDSA)
        } else {
            return Err("not a PEM private key (RSA, EC P-256 or Ed25519)".to_owned());
        };
        if let Some(named) = alg
            && by_type != Algorithm::RS256
            && by_type != Algorithm::PS256
            && named != format!("{by_type:?}")
        {
            return Err(format!(
                "`{named}` does not fit the key's type ({by_type:?})"
            ));
        }
        let key = Self {
            key,
            alg: by_type,
            kid,
        };
        // Signed once now: a P-384 key read as EC, say, fails here, not at a login.
        key.sign(&serde_json::json!({"probe": true}))
            .map_err(|e| format!("the key cannot sign {:?}: {e}", key.alg))?;
        Ok(key)
    }

    /// A JWT of `claims` signed with the key, `typ` JWT.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}
