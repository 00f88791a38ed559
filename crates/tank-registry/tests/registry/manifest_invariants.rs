//! What the `manifest` fuzz target asserts about any input, shared with the corpus replay
//! test (fuzz_corpus.rs) through `#[path]`.
//!
//! An input is a manifest response: the first line is the `Content-Type` (empty for none),
//! the second the `Docker-Content-Digest` (empty for none), the rest the body. It goes
//! through what `Client::fetch_manifest` does with a response
//! ([`tank_registry::parse_manifest_for_fuzzing`]); a manifest that comes out must be the
//! body as given, under its sha256 digest, agreeing with the announced digest, of one of the
//! four supported media types and of the matching kind, and never a schema 1 manifest.

use tank_reference::{Algorithm, Digest};
use tank_registry::{Error, ManifestKind, media_type, parse_manifest_for_fuzzing};

/// A manifest response split out of a fuzz input.
pub(crate) struct Response<'a> {
    /// The `Content-Type` header, if any.
    pub(crate) content_type: Option<&'a str>,
    /// The `Docker-Content-Digest` header, if any.
    pub(crate) docker_content_digest: Option<&'a str>,
    /// The body.
    pub(crate) body: &'a [u8],
}

/// Splits `input` into its two header lines and the body; `None` when there are not two
/// lines of UTF-8 before the body.
pub(crate) fn split(input: &[u8]) -> Option<Response<'_>> {
    let mut parts = input.splitn(3, |&byte| byte == b'\n');
    let content_type = std::str::from_utf8(parts.next()?).ok()?;
    let digest = std::str::from_utf8(parts.next()?).ok()?;
    let body = parts.next()?;
    Some(Response {
        content_type: (!content_type.is_empty()).then_some(content_type),
        docker_content_digest: (!digest.is_empty()).then_some(digest),
        body,
    })
}

/// Checks the invariants on `input`, panicking with the broken one. Returns whether a
/// manifest came out.
pub(crate) fn check(input: &[u8]) -> bool {
    let Some(response) = split(input) else {
        return false;
    };
    let result = parse_manifest_for_fuzzing(
        response.content_type,
        response.docker_content_digest,
        response.body.to_vec(),
    );
    let body = response.body;
    let body_json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let body_field = |name: &str| body_json.as_ref().and_then(|json| json.get(name).cloned());
    let schema_v1 = body_field("schemaVersion").and_then(|version| version.as_u64()) == Some(1)
        || response.content_type.is_some_and(|content_type| {
            let bare = content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            bare == media_type::DOCKER_MANIFEST_V1 || bare == media_type::DOCKER_MANIFEST_V1_SIGNED
        });
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(Error::SchemaV1Manifest { media_type, .. }) => {
            assert!(
                !media_type.is_empty(),
                "schema 1 refused without naming a media type"
            );
            return false;
        }
        Err(_) => return false,
    };
    let sha256 = Digest::of(Algorithm::Sha256, body);
    assert!(!schema_v1, "a schema 1 manifest was accepted: {manifest:?}");
    assert_eq!(
        manifest.raw(),
        body,
        "the manifest is not the body as served"
    );
    assert_eq!(
        manifest.digest(),
        &sha256,
        "the manifest digest is not the body's sha256"
    );
    if let Some(announced) = response.docker_content_digest {
        let announced: Digest = announced
            .trim()
            .parse()
            .unwrap_or_else(|error| panic!("accepted a bad Docker-Content-Digest: {error}"));
        assert_eq!(
            Digest::of(announced.algorithm(), body),
            announced,
            "accepted a body that is not what Docker-Content-Digest announced"
        );
    }
    let is_index = match manifest.media_type() {
        media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => true,
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => false,
        other => panic!("accepted unsupported media type {other:?}"),
    };
    assert_eq!(manifest.is_index(), is_index, "{}", manifest.media_type());
    assert_eq!(
        matches!(manifest.kind(), ManifestKind::Index(_)),
        is_index,
        "the kind does not match media type {}",
        manifest.media_type()
    );
    if let Some(body_type) = body_field("mediaType") {
        let body_type = body_type
            .as_str()
            .unwrap_or_else(|| panic!("accepted a body whose mediaType is no string: {body_type}"));
        let body_is_index = matches!(
            body_type,
            media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST
        );
        let body_is_image = matches!(
            body_type,
            media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST
        );
        assert!(
            if is_index {
                body_is_index
            } else {
                body_is_image
            },
            "served as {} but the body says {body_type}",
            manifest.media_type()
        );
    }
    true
}
