//! SHA-256 where it runs on every request: the bearer token's digest (the verified-token
//! and exchange caches' key), the exchange cache key, the stored hashes of refresh
//! tokens, session ids, codes, API keys and caller secrets.
//!
//! Computed by aws-lc (already linked for signatures and TLS), whose assembly uses the
//! CPU's SHA extensions where it has them and AVX2 where it does not (Intel server
//! parts before Ice Lake, among others); `sha2` falls back there to portable code that
//! costs about twice as much per byte — on a kilobyte token, more than the rest of a
//! forward-auth check. The digests are SHA-256's, so what the stores already hold keeps
//! matching.

use aws_lc_rs::digest::{Context, SHA256, digest};

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    to_array(digest(&SHA256, bytes).as_ref())
}

/// SHA-256 over several parts, fed in order.
pub struct Sha256(Context);

impl Sha256 {
    pub fn new() -> Self {
        Self(Context::new(&SHA256))
    }

    pub fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.update(bytes.as_ref());
    }

    pub fn finish(self) -> [u8; 32] {
        to_array(self.0.finish().as_ref())
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// A SHA-256 output is 32 bytes by definition; copied field by field so no length
/// check can fail.
fn to_array(output: &[u8]) -> [u8; 32] {
    let mut array = [0u8; 32];
    for (to, from) in array.iter_mut().zip(output) {
        *to = *from;
    }
    array
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// The same digests as `sha2` (what stores written before hold), at every length
    /// around the block boundaries, whole and in parts.
    #[test]
    fn digests_are_sha256() {
        let text: Vec<u8> = (0..1200u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 517, 1024, 1200] {
            let bytes = &text[..len];
            let expected: [u8; 32] = sha2::Sha256::digest(bytes).into();
            assert_eq!(sha256(bytes), expected, "{len} bytes");
            let mut parts = Sha256::new();
            let (a, b) = bytes.split_at(len / 3);
            parts.update(a);
            parts.update(b);
            assert_eq!(parts.finish(), expected, "{len} bytes in two parts");
        }
        assert_eq!(
            sha256(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "FIPS 180-2 test vector"
        );
    }
}
