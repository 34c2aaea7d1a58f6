//! The JWS algorithms the broker verifies: the asymmetric ones of RFC 7518 §3.1 and
//! RFC 8037 — never `none`, never an HMAC (a published key is no shared secret, and a
//! token "signed" with one could be made by anyone holding what the broker was given).

use std::fmt;
use std::str::FromStr;

/// A signature algorithm the broker verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Alg {
    /// Every one, in RFC 7518's order.
    pub const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// RSASSA (PKCS#1 v1.5 or PSS): what an RSA key verifies.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
        )
    }

    /// Its `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `alg` the broker does not verify: `none`, an HMAC, or a name it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotVerified;

impl FromStr for Alg {
    type Err = NotVerified;

    /// Exactly as RFC 7518 spells it: names are case-sensitive.
    fn from_str(name: &str) -> Result<Self, NotVerified> {
        Alg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or(NotVerified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rsa_key_verifies_the_rs_and_ps_families_only() {
        let rsa: Vec<&str> = Alg::ALL
            .into_iter()
            .filter(|a| a.is_rsa())
            .map(Alg::as_str)
            .collect();
        assert_eq!(rsa, ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]);
    }

    #[test]
    fn names_round_trip_and_nothing_symmetric_or_unsigned_parses() {
        for alg in Alg::ALL {
            assert_eq!(alg.as_str().parse::<Alg>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for name in [
            "none", "HS256", "HS384", "HS512", "es512", "ES521", "", "RSA-OAEP",
        ] {
            assert_eq!(name.parse::<Alg>(), Err(NotVerified), "{name}");
        }
    }
}
