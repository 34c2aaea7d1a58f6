use super::*;

fn key(byte: u8) -> Zeroizing<[u8; 32]> {
    Zeroizing::new([byte; 32])
}

fn sealer(current: &str, ids: &[(&str, u8)]) -> Sealer {
    Sealer::new(current, ids.iter().map(|(id, b)| (id.to_string(), key(*b)))).unwrap()
}

#[test]
fn a_sealed_value_opens_only_for_its_record() {
    let s = sealer("k1", &[("k1", 1)]);
    let sealed = s
        .seal(&aad("grants.upstream", "g1"), b"upstream-at")
        .unwrap();
    assert!(
        !sealed
            .windows(b"upstream-at".len())
            .any(|w| w == b"upstream-at")
    );
    let opened = s.open(&aad("grants.upstream", "g1"), &sealed).unwrap();
    assert_eq!(opened.as_slice(), b"upstream-at");
    assert_eq!(
        s.open(&aad("grants.upstream", "g2"), &sealed),
        Err(SealError::Forged)
    );
    assert_eq!(
        s.open(&aad("clients.origin_secrets", "g1"), &sealed),
        Err(SealError::Forged)
    );
}

#[test]
fn each_seal_uses_a_fresh_nonce() {
    let s = sealer("k1", &[("k1", 1)]);
    let a = s.seal(b"r", b"same").unwrap();
    let b = s.seal(b"r", b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn tampered_values_do_not_open() {
    let s = sealer("k1", &[("k1", 1)]);
    let mut sealed = s.seal(b"r", b"secret").unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    assert_eq!(s.open(b"r", &sealed), Err(SealError::Forged));
    assert_eq!(s.open(b"r", &[]), Err(SealError::Malformed));
    assert_eq!(s.open(b"r", &[9, 0]), Err(SealError::Malformed));
    assert_eq!(s.open(b"r", &sealed[..10]), Err(SealError::Malformed));
}

#[test]
fn values_sealed_under_a_retired_key_still_open_after_rotation() {
    let old = sealer("2025-01", &[("2025-01", 1)]);
    let sealed = old.seal(b"r", b"secret").unwrap();
    let rotated = sealer("2025-06", &[("2025-01", 1), ("2025-06", 2)]);
    assert_eq!(rotated.open(b"r", &sealed).unwrap().as_slice(), b"secret");
    let fresh = rotated.seal(b"r", b"secret").unwrap();
    assert_eq!(Sealer::key_id_of(&fresh), Some("2025-06"));
    assert_eq!(Sealer::key_id_of(&sealed), Some("2025-01"));
    assert_eq!(
        old.open(b"r", &fresh),
        Err(SealError::UnknownKey("2025-06".into()))
    );
}

#[test]
fn a_key_under_a_reused_id_does_not_open_old_values() {
    let sealed = sealer("k", &[("k", 1)]).seal(b"r", b"secret").unwrap();
    assert_eq!(
        sealer("k", &[("k", 2)]).open(b"r", &sealed),
        Err(SealError::Forged)
    );
}

#[test]
fn the_current_key_must_be_configured_and_ids_fit_the_header() {
    assert_eq!(
        Sealer::new("k2", [("k1".to_string(), key(1))]).unwrap_err(),
        SealError::MissingCurrentKey("k2".into())
    );
    let long = "x".repeat(256);
    assert_eq!(
        Sealer::new(&long, [(long.clone(), key(1))]).unwrap_err(),
        SealError::BadKeyId(long)
    );
}

#[test]
fn debug_output_names_key_ids_but_never_key_bytes() {
    let s = sealer("k1", &[("k1", 0xAB)]);
    let text = format!("{s:?}");
    assert!(text.contains("k1"), "{text}");
    assert!(!text.contains("171") && !text.to_lowercase().contains("ab, "));
}
