//! The corpora of the `manifest`, `www_authenticate`, `token_response` and `error_body` fuzz
//! targets (fuzz/corpus/), replayed as normal tests with the invariants the targets assert
//! (manifest_invariants.rs, challenge_invariants.rs, token_invariants.rs,
//! error_body_invariants.rs). The `seed-*` files are real manifests and indexes from the
//! fixtures (OCI and Docker, with and without headers, a wrong and a sha512 digest, schema
//! one) and headers as Docker Hub, ghcr.io, quay.io, gcr.io, ECR, Harbor, ACR and
//! Distribution send them; other files are inputs the fuzzers kept.

use std::fs;
use std::path::PathBuf;

use crate::{challenge_invariants, error_body_invariants, manifest_invariants, token_invariants};

/// The files of fuzz/corpus/<target>, sorted; fails when there are none.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("fuzz corpus {} missing: {error}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    files
}

#[test]
fn every_manifest_corpus_input_keeps_the_invariants() {
    let mut accepted = Vec::new();
    for (name, input) in corpus("manifest") {
        if manifest_invariants::check(&input) {
            accepted.push(name);
        }
    }
    // Each kind of seed manifest is accepted; the broken ones are not.
    for kind in [
        "oci-index",
        "docker-list",
        "oci-manifest",
        "docker-manifest",
    ] {
        for variant in ["0", "bare", "charset", "sha512"] {
            let name = format!("seed-{kind}-{variant}.json");
            assert!(accepted.contains(&name), "{name} was refused");
        }
        let name = format!("seed-{kind}-wrong-digest.json");
        assert!(!accepted.contains(&name), "{name} was accepted");
    }
    for refused in [
        "seed-schema1.json",
        "seed-schema1-generic.json",
        "seed-conflict.json",
    ] {
        assert!(
            !accepted.iter().any(|name| name == refused),
            "{refused} was accepted"
        );
    }
}

#[test]
fn manifest_inputs_split_into_headers_and_body() {
    let response = manifest_invariants::split(b"application/json\n\n{\"a\":\n1}").unwrap();
    assert_eq!(response.content_type, Some("application/json"));
    assert_eq!(response.docker_content_digest, None);
    assert_eq!(response.body, b"{\"a\":\n1}");
    assert!(manifest_invariants::split(b"only one line\n{}").is_none());
}

#[test]
fn every_www_authenticate_corpus_input_keeps_the_invariants() {
    let mut parsed = 0;
    let mut refused = 0;
    for (name, input) in corpus("www_authenticate") {
        let Ok(header) = std::str::from_utf8(&input) else {
            continue;
        };
        match challenge_invariants::check(header) {
            Some(_) => parsed += 1,
            None => refused += 1,
        }
        if name.starts_with("seed-docker-hub") || name.starts_with("seed-ghcr") {
            assert_eq!(challenge_invariants::check(header), Some(1), "{name}");
        }
    }
    assert!(parsed >= 15, "only {parsed} corpus headers parse");
    assert!(refused >= 3, "only {refused} corpus headers are refused");
}

#[test]
fn rendered_challenges_quote_and_escape_values() {
    let challenges = tank_registry::parse_www_authenticate(
        r#"Basic realm="a\"b\\c", Bearer realm="x",scope="repository:a:pull,push b""#,
    )
    .unwrap();
    assert_eq!(
        challenge_invariants::render(&challenges),
        r#"Basic realm="a\"b\\c", Bearer realm="x",scope="repository:a:pull,push b""#
    );
}

#[test]
fn every_token_response_corpus_input_keeps_the_invariants() {
    let mut tokens = Vec::new();
    for (name, input) in corpus("token_response") {
        if let Some(token) = token_invariants::check(&input) {
            tokens.push((name, token));
        }
    }
    let token_of = |wanted: &str| {
        tokens
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, token)| token.as_str())
    };
    // The absurd lifetimes that once panicked give a usable token.
    for name in [
        "seed-expires-1e19",
        "seed-expires-1e308",
        "seed-expires-u64-max",
        "seed-expires-bignum",
        "seed-issued-far-future",
        "seed-expires-negative",
    ] {
        assert_eq!(token_of(name), Some("t"), "{name}");
    }
    assert_eq!(token_of("seed-oauth2"), Some("ya29.a0AfB"));
    assert_eq!(token_of("seed-empty-token"), Some("fallback"));
    assert_eq!(token_of("seed-no-token"), None);
    assert_eq!(token_of("seed-html"), None);
}

#[test]
fn every_error_body_corpus_input_keeps_the_invariants() {
    let mut entries = Vec::new();
    for (name, input) in corpus("error_body") {
        entries.push((name, error_body_invariants::check(&input)));
    }
    let count = |wanted: &str| {
        entries
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, count)| *count)
    };
    assert_eq!(count("seed-escape-sequences"), Some(1));
    assert_eq!(count("seed-lowercase-and-empty"), Some(2));
    assert_eq!(count("seed-html"), Some(0));
    assert_eq!(count("seed-binary"), Some(0));
}
