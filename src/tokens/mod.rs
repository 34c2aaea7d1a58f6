//! Tokens: who a verified caller is, why a credential was refused, and verification
//! with its cache. (The broker's own signing and issuing arrive with the
//! authorization issue.)

pub mod api_keys;
pub mod introspect;
pub mod principal;
pub mod rejection;
pub mod verify;

pub use principal::{CredentialKind, Principal};
pub use rejection::Rejection;
pub use verify::Verifier;
