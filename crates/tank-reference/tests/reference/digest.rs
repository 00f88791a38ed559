//! Digests: parsing as go-digest does (sha256 and sha512 only), hashing, and streaming
//! verification of size and content.

use std::collections::HashSet;
use std::io::Write;

use tank_reference::{Algorithm, Digest, Error, Hasher, Reference};

use crate::{Kind, assert_error};

// Published test vectors (FIPS 180-2 examples): the empty string and "abc".
const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const SHA512_ABC: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

#[test]
fn parses_and_prints_sha256_and_sha512() {
    let digest: Digest = format!("sha256:{SHA256_ABC}").parse().expect("sha256");
    assert_eq!(digest.algorithm(), Algorithm::Sha256);
    assert_eq!(digest.hex(), SHA256_ABC);
    assert_eq!(digest.to_string(), format!("sha256:{SHA256_ABC}"));
    assert_eq!(
        format!("{digest:?}"),
        format!("Digest(sha256:{SHA256_ABC})")
    );

    let digest: Digest = format!("sha512:{SHA512_ABC}").parse().expect("sha512");
    assert_eq!(digest.algorithm(), Algorithm::Sha512);
    assert_eq!(digest.hex(), SHA512_ABC);
    assert_eq!(digest.to_string(), format!("sha512:{SHA512_ABC}"));
}

#[test]
fn refuses_what_go_digest_refuses() {
    let upper = format!("sha256:{}", SHA256_ABC.to_uppercase());
    let short = format!("sha256:{}", &SHA256_ABC[..63]);
    let long = format!("sha256:{SHA256_ABC}0");
    let sha512_short = format!("sha512:{SHA256_ABC}");
    let not_hex = format!("sha256:{}g", &SHA256_ABC[..63]);
    let rows = [
        ("", Kind::DigestFormat),
        ("sha256", Kind::DigestFormat),
        ("sha256:", Kind::DigestFormat),
        (":abc", Kind::DigestFormat),
        ("foo", Kind::DigestFormat),
        // go-digest refuses upper-case hex for sha256 (ErrDigestInvalidFormat).
        (upper.as_str(), Kind::DigestFormat),
        (not_hex.as_str(), Kind::DigestFormat),
        (short.as_str(), Kind::DigestLength),
        (long.as_str(), Kind::DigestLength),
        (sha512_short.as_str(), Kind::DigestLength),
    ];
    for (input, expected) in rows {
        assert_error(input.parse::<Digest>(), expected, input);
    }
}

#[test]
fn other_algorithms_are_unsupported() {
    // go-digest knows sha384; tank does not verify it. Deviation.
    let sha384 = format!("sha384:{}", "a".repeat(96));
    assert_error(sha384.parse::<Digest>(), Kind::DigestUnsupported, &sha384);
    // Any algorithm the grammar allows, with 32 or more hex characters.
    let md5 = format!("md5:{}", "a".repeat(32));
    assert_error(md5.parse::<Digest>(), Kind::DigestUnsupported, &md5);
    // Not the grammar: an invalid format, not an unsupported algorithm.
    let short_md5 = format!("md5:{}", "a".repeat(31));
    assert_error(short_md5.parse::<Digest>(), Kind::DigestFormat, &short_md5);
    let bad_algorithm = format!("5md:{}", "a".repeat(32));
    assert_error(
        bad_algorithm.parse::<Digest>(),
        Kind::DigestFormat,
        &bad_algorithm,
    );

    assert_eq!("sha256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
    assert_eq!("sha512".parse::<Algorithm>(), Ok(Algorithm::Sha512));
    assert_error(
        "SHA256".parse::<Algorithm>(),
        Kind::DigestUnsupported,
        "SHA256",
    );
    assert_error(
        "sha384".parse::<Algorithm>(),
        Kind::DigestUnsupported,
        "sha384",
    );
    assert_eq!(Algorithm::Sha256.to_string(), "sha256");
    assert_eq!(Algorithm::Sha512.to_string(), "sha512");
    assert_eq!(Algorithm::Sha256.hex_len(), 64);
    assert_eq!(Algorithm::Sha512.hex_len(), 128);
}

#[test]
fn hashes_match_published_vectors() {
    assert_eq!(Digest::of(Algorithm::Sha256, b"").hex(), SHA256_EMPTY);
    assert_eq!(Digest::of(Algorithm::Sha256, b"abc").hex(), SHA256_ABC);
    assert_eq!(Digest::of(Algorithm::Sha512, b"abc").hex(), SHA512_ABC);
    assert_ne!(Digest::of(Algorithm::Sha256, b"abd").hex(), SHA256_ABC);
}

#[test]
fn hasher_streams() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let mut hasher = Hasher::new(algorithm);
        for chunk in data.chunks(333) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.bytes(), data.len() as u64);
        assert_eq!(hasher.finish(), Digest::of(algorithm, &data));

        let mut writer = Hasher::new(algorithm);
        writer.write_all(&data).expect("hashing never fails");
        writer.flush().expect("hashing never fails");
        assert_eq!(writer.finish(), Digest::of(algorithm, &data));
    }
}

#[test]
fn verifier_accepts_the_right_bytes() {
    let data = b"the quick brown fox";
    let digest = Digest::of(Algorithm::Sha256, data);
    for expected_size in [Some(data.len() as u64), None] {
        let mut verifier = digest.verifier(expected_size);
        for chunk in data.chunks(4) {
            verifier.update(chunk).expect("within the size");
        }
        assert_eq!(verifier.bytes(), data.len() as u64);
        assert_eq!(verifier.expected(), &digest);
        assert_eq!(verifier.expected_size(), expected_size);
        assert_eq!(verifier.finish(), Ok(digest.clone()));
    }
}

#[test]
fn verifier_refuses_other_bytes() {
    let data = b"the quick brown fox";
    let digest = Digest::of(Algorithm::Sha512, data);
    let mut verifier = digest.verifier(Some(data.len() as u64));
    verifier.update(b"the quick brown cat").expect("same size");
    let error = verifier.finish().expect_err("other content");
    assert_eq!(
        error,
        Error::DigestMismatch {
            expected: digest.clone(),
            actual: Digest::of(Algorithm::Sha512, b"the quick brown cat"),
        }
    );
    assert!(
        error
            .to_string()
            .starts_with("digest mismatch: expected sha512:")
    );
}

#[test]
fn verifier_refuses_short_content_at_the_end() {
    let data = b"0123456789";
    let digest = Digest::of(Algorithm::Sha256, data);
    let mut verifier = digest.verifier(Some(10));
    verifier.update(&data[..9]).expect("short so far");
    assert_eq!(
        verifier.finish(),
        Err(Error::SizeMismatch {
            digest: digest.clone(),
            expected: 10,
            actual: 9,
        })
    );
}

#[test]
fn verifier_refuses_overflow_as_it_happens() {
    let data = b"0123456789";
    let digest = Digest::of(Algorithm::Sha256, data);
    let mut verifier = digest.verifier(Some(10));
    verifier.update(&data[..6]).expect("within the size");
    let error = verifier.update(b"abcde").expect_err("11 bytes");
    assert_eq!(
        error,
        Error::SizeMismatch {
            digest: digest.clone(),
            expected: 10,
            actual: 11,
        }
    );
    assert_eq!(
        error.to_string(),
        format!("size mismatch for {digest}: expected 10 bytes, got 11")
    );
    // The refused bytes were not taken: the rest of the right content still verifies.
    assert_eq!(verifier.bytes(), 6);
    verifier.update(&data[6..]).expect("exactly the size");
    assert_eq!(verifier.finish(), Ok(digest));
}

#[test]
fn verifier_is_a_writer() {
    let data = b"0123456789";
    let digest = Digest::of(Algorithm::Sha256, data);
    let mut verifier = digest.verifier(Some(10));
    verifier.write_all(data).expect("exactly the size");
    assert_eq!(verifier.clone().finish(), Ok(digest.clone()));
    let error = verifier.write_all(b"x").expect_err("one byte too many");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let inner = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .expect("the crate's error inside");
    assert!(matches!(inner, Error::SizeMismatch { actual: 11, .. }));
}

#[test]
fn digests_are_values() {
    let a = Digest::of(Algorithm::Sha256, b"a");
    let b = Digest::of(Algorithm::Sha256, b"b");
    let set: HashSet<Digest> = [a.clone(), b.clone(), a.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(a.to_string().parse::<Digest>(), Ok(a.clone()));
    assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
}

#[test]
fn digest_errors_inside_a_reference_name_both() {
    let input = "repo@sha256:ffffffffffffffffffffffffffffffffff";
    let error = input.parse::<Reference>().expect_err("short digest");
    assert_eq!(
        error.to_string(),
        "invalid digest length in \"sha256:ffffffffffffffffffffffffffffffffff\" in \"repo@sha256:ffffffffffffffffffffffffffffffffff\": sha256 needs 64 hex characters, got 34"
    );
    let upper = format!("repo@sha256:{}", "F".repeat(64));
    let error = upper.parse::<Reference>().expect_err("upper-case hex");
    assert!(
        matches!(&error, Error::InvalidDigestFormat { input, digest, .. } if *input == upper && digest.starts_with("sha256:FFF")),
        "{error:?}"
    );
}
