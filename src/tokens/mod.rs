//! Tokens: who a verified caller is, why a credential was refused, verification with
//! its cache, and the broker's own signing keys, access tokens.

pub mod api_keys;
pub mod client_assertion;
pub mod grant_standing;
pub mod id_jag;
pub mod introspect;
pub mod issue;
pub mod key_file;
pub mod key_store;
pub mod keypair;
pub mod principal;
pub mod rejection;
pub mod rotate;
pub mod signing;
pub mod verify;

pub use principal::{CredentialKind, Principal};
pub use rejection::Rejection;
pub use verify::Verifier;
