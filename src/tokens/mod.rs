//! Tokens: who a verified caller is, and (in later modules) verification, the
//! verified-token cache, the broker's signing keys and issuing.

pub mod principal;

pub use principal::{CredentialKind, Principal};
