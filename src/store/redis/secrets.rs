//! The broker's own secrets (the consent cookie key), each a string sealed and bound
//! to its name. `SET NX` stores the first replica's candidate; every replica then
//! reads the one stored.
//!
//! ```text
//! <p>secret:<name>   string: the sealed secret
//! ```

use zeroize::Zeroizing;

use super::Inner;
use super::codec::{redis_error, seal_error};
use crate::store::StoreError;
use crate::store::seal::aad;
use crate::store::signing_keys::SEALED_SECRET;

pub async fn get_or_insert(
    s: &Inner,
    name: &str,
    candidate: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let key = s.keys.secret(name);
    let place = aad(SEALED_SECRET, name);
    let sealed = s.sealer.seal(&place, candidate).map_err(seal_error)?;
    let (held,): (Option<Vec<u8>>,) = ::redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(&key)
        .arg(sealed)
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(&key)
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let held = held.ok_or_else(|| StoreError::Unavailable(format!("{name} vanished")))?;
    s.sealer.open(&place, &held).map_err(seal_error)
}
