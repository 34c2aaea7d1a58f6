//! A fetched document's rules, for the fuzz targets in `fuzz/`: built only under
//! `cfg(fuzzing)` (set by `cargo fuzz`), never part of the product.

use super::{CimdError, RedirectPolicy, validate};

/// What the broker takes from a document it accepted.
#[derive(Debug)]
pub struct Accepted {
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub client_name: Option<String>,
}

/// The body fetched from `client_id`, judged as the fetch judges it.
pub fn document(
    client_id: &str,
    body: &[u8],
    redirects: &RedirectPolicy,
) -> Result<Accepted, CimdError> {
    validate(client_id, body, redirects).map(|fields| Accepted {
        redirect_uris: fields.redirect_uris,
        grant_types: fields.grant_types,
        client_name: fields.client_name,
    })
}
