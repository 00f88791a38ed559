//! [`Manifest`]: a fetched manifest or index, its verified digest and raw bytes, parsed into
//! oci-spec types; and the rules that decide its media type and check its digest.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tank_reference::{Algorithm, Digest};

use crate::Error;

/// Manifest media types the client knows.
pub mod media_type {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// Docker manifest list (the Docker flavour of an index).
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image manifest v2 schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image manifest v2 schema 1 (refused).
    pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Signed Docker image manifest v2 schema 1 (refused).
    pub const DOCKER_MANIFEST_V1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// The `Accept` header of manifest requests: the four supported types, indexes first.
    pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.v2+json";
}

/// The most manifest bytes the client reads (4 MiB, as containerd and Distribution).
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// A manifest or index as the registry served it, with its digest checked.
#[derive(Clone, Debug)]
pub struct Manifest {
    digest: Digest,
    media_type: String,
    raw: Vec<u8>,
    kind: ManifestKind,
}

/// What a manifest is, parsed. Docker manifest lists parse as an [`ImageIndex`] and Docker
/// schema 2 manifests as an [`ImageManifest`]; their media types then are
/// `oci_spec::image::MediaType::Other` holding the Docker strings.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "the API hands out oci-spec types unboxed; a process holds few manifests"
)]
pub enum ManifestKind {
    /// An image manifest (OCI, or Docker v2 schema 2).
    Image(ImageManifest),
    /// An index (OCI, or Docker manifest list).
    Index(ImageIndex),
}

impl Manifest {
    /// The digest of [`Manifest::raw`], checked against what the registry and the caller said.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The media type: the `Content-Type` when it is one of the four supported types, else
    /// the body's `mediaType`, else inferred from the body's shape.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The bytes exactly as served; [`Manifest::digest`] is their digest.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The parsed manifest or index.
    pub fn kind(&self) -> &ManifestKind {
        &self.kind
    }

    /// Whether this is an index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self.kind, ManifestKind::Index(_))
    }
}

/// The digest of a descriptor (a layer, a config, an index entry) as a [`Digest`] that
/// [`crate::Client::fetch_blob`] and [`crate::Client::fetch_manifest_by_digest`] take, and
/// that verifies content. oci-spec accepts digests tank cannot verify (other algorithms, odd
/// lengths): those are [`Error::InvalidDescriptorDigest`].
///
/// ```
/// use oci_spec::image::{Descriptor, MediaType};
///
/// let hex = "a".repeat(64);
/// let descriptor = Descriptor::new(MediaType::ImageLayerGzip, 3, format!("sha256:{hex}").parse::<oci_spec::image::Digest>()?);
/// let digest = tank_registry::descriptor_digest(&descriptor)?;
/// assert_eq!(digest.hex(), hex);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, Error> {
    let value = descriptor.digest().to_string();
    value
        .parse()
        .map_err(|source| Error::InvalidDescriptorDigest { value, source })
}

/// Where a manifest came from, for error messages.
pub(crate) struct ManifestSource<'a> {
    pub(crate) registry: &'a str,
    pub(crate) repository: &'a str,
    /// The tag or digest asked for.
    pub(crate) reference: &'a str,
    /// The URL it was fetched from.
    pub(crate) url: &'a str,
}

/// Computes the digest of `raw` and checks it against `Docker-Content-Digest` (when sent) and
/// against the digest asked for (when there was one). The digest uses the algorithm of the
/// digest asked for, else sha256.
pub(crate) fn verify_digest(
    source: &ManifestSource<'_>,
    raw: &[u8],
    header: Option<&str>,
    asked: Option<&Digest>,
) -> Result<Digest, Error> {
    let algorithm = asked.map(Digest::algorithm).unwrap_or(Algorithm::Sha256);
    let digest = Digest::of(algorithm, raw);
    if let Some(header) = header {
        let announced: Digest = header.trim().parse().map_err(|_| Error::InvalidHeader {
            url: source.url.to_owned(),
            header: "Docker-Content-Digest",
            value: header.to_owned(),
        })?;
        let actual = if announced.algorithm() == algorithm {
            digest.clone()
        } else {
            Digest::of(announced.algorithm(), raw)
        };
        if actual != announced {
            return Err(Error::DigestMismatch {
                what: format!(
                    "manifest at {} vs its Docker-Content-Digest header",
                    source.url
                ),
                expected: announced,
                actual,
            });
        }
    }
    if let Some(asked) = asked {
        if &digest != asked {
            return Err(Error::DigestMismatch {
                what: format!("manifest at {}", source.url),
                expected: asked.clone(),
                actual: digest,
            });
        }
    }
    Ok(digest)
}

/// The fields that tell what a manifest body is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    manifests: Option<IgnoredAny>,
    config: Option<IgnoredAny>,
    layers: Option<IgnoredAny>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Image,
    Index,
}

fn shape_of(media_type: &str) -> Option<Shape> {
    match media_type {
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => Some(Shape::Image),
        media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => Some(Shape::Index),
        _ => None,
    }
}

fn is_schema_v1(media_type: &str) -> bool {
    matches!(
        media_type,
        media_type::DOCKER_MANIFEST_V1 | media_type::DOCKER_MANIFEST_V1_SIGNED
    )
}

/// `Content-Type` values that say nothing about the manifest kind.
fn is_generic(content_type: &str) -> bool {
    matches!(
        content_type,
        "" | "application/json" | "text/plain" | "application/octet-stream"
    )
}

/// Decides the media type of a manifest body (refusing schema 1 and unknown types) and
/// parses it. `digest` has been verified already.
pub(crate) fn parse(
    source: &ManifestSource<'_>,
    content_type: Option<&str>,
    raw: Vec<u8>,
    digest: Digest,
) -> Result<Manifest, Error> {
    let content_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let schema_v1 = |media_type: &str| Error::SchemaV1Manifest {
        registry: source.registry.to_owned(),
        repository: source.repository.to_owned(),
        reference: source.reference.to_owned(),
        media_type: media_type.to_owned(),
    };
    let unsupported = |media_type: &str| Error::UnsupportedMediaType {
        registry: source.registry.to_owned(),
        repository: source.repository.to_owned(),
        reference: source.reference.to_owned(),
        media_type: media_type.to_owned(),
    };
    let invalid = |media_type: &str, error: serde_json::Error| Error::InvalidManifest {
        registry: source.registry.to_owned(),
        repository: source.repository.to_owned(),
        reference: source.reference.to_owned(),
        media_type: media_type.to_owned(),
        source: Box::new(error),
    };

    if is_schema_v1(&content_type) {
        return Err(schema_v1(&content_type));
    }
    let probe: Probe = serde_json::from_slice(&raw).map_err(|error| {
        let shown = if content_type.is_empty() {
            "no content type"
        } else {
            &content_type
        };
        invalid(shown, error)
    })?;
    if probe
        .schema_version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        == Some(1)
    {
        let named = match &probe.media_type {
            Some(body_type) => body_type.as_str(),
            None if !is_generic(&content_type) => &content_type,
            None => media_type::DOCKER_MANIFEST_V1_SIGNED,
        };
        return Err(schema_v1(named));
    }

    let media_type = if shape_of(&content_type).is_some() {
        content_type.clone()
    } else if let Some(body_type) = &probe.media_type {
        body_type.clone()
    } else if !is_generic(&content_type) {
        content_type.clone()
    } else if probe.manifests.is_some() {
        media_type::OCI_INDEX.to_owned()
    } else if probe.config.is_some() || probe.layers.is_some() {
        media_type::OCI_MANIFEST.to_owned()
    } else {
        return Err(unsupported(if content_type.is_empty() {
            "(none)"
        } else {
            &content_type
        }));
    };
    if is_schema_v1(&media_type) {
        return Err(schema_v1(&media_type));
    }
    let Some(shape) = shape_of(&media_type) else {
        return Err(unsupported(&media_type));
    };
    if let Some(body_type) = &probe.media_type {
        if shape_of(body_type) != Some(shape) {
            return Err(Error::MediaTypeConflict {
                url: source.url.to_owned(),
                content_type: media_type,
                body: body_type.clone(),
            });
        }
    }

    let kind = match shape {
        Shape::Image => ManifestKind::Image(
            serde_json::from_slice(&raw).map_err(|error| invalid(&media_type, error))?,
        ),
        Shape::Index => ManifestKind::Index(
            serde_json::from_slice(&raw).map_err(|error| invalid(&media_type, error))?,
        ),
    };
    Ok(Manifest {
        digest,
        media_type,
        raw,
        kind,
    })
}

/// What [`crate::Client::fetch_manifest`] does with a manifest response once it has the
/// bytes: the digest check against `Docker-Content-Digest`, then the media-type rules and
/// parsing. For the fuzz targets and their corpus replay tests only; not part of the API.
/// Errors name the registry `fuzz.invalid`, repository `fuzz`, reference `fuzz`.
#[doc(hidden)]
pub fn parse_manifest_for_fuzzing(
    content_type: Option<&str>,
    docker_content_digest: Option<&str>,
    raw: Vec<u8>,
) -> Result<Manifest, Error> {
    let source = ManifestSource {
        registry: "fuzz.invalid",
        repository: "fuzz",
        reference: "fuzz",
        url: "https://fuzz.invalid/v2/fuzz/manifests/fuzz",
    };
    let digest = verify_digest(&source, &raw, docker_content_digest, None)?;
    parse(&source, content_type, raw, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: ManifestSource<'static> = ManifestSource {
        registry: "r.example",
        repository: "team/app",
        reference: "v1",
        url: "https://r.example/v2/team/app/manifests/v1",
    };

    const LAYER: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    const CONFIG: &str = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7";

    fn oci_manifest(with_media_type: bool) -> String {
        let media_type = if with_media_type {
            format!(r#""mediaType":"{}","#, media_type::OCI_MANIFEST)
        } else {
            String::new()
        };
        format!(
            r#"{{"schemaVersion":2,{media_type}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG}","size":7023}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{LAYER}","size":32654}}]}}"#
        )
    }

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"{CONFIG}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2811478,"digest":"{LAYER}"}}]}}"#,
            media_type::DOCKER_MANIFEST
        )
    }

    fn docker_list() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":528,"digest":"{LAYER}","platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"{}","size":528,"digest":"{CONFIG}","platform":{{"architecture":"arm","os":"linux","variant":"v7","features":["sse4"]}}}}]}}"#,
            media_type::DOCKER_MANIFEST_LIST,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_MANIFEST
        )
    }

    fn oci_index() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":528,"digest":"{LAYER}","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
            media_type::OCI_INDEX,
            media_type::OCI_MANIFEST
        )
    }

    const SCHEMA_V1: &str = r#"{"schemaVersion":1,"name":"team/app","tag":"v1","architecture":"amd64","fsLayers":[],"history":[]}"#;

    fn parse_with(content_type: Option<&str>, body: &str) -> Result<Manifest, Error> {
        let digest = Digest::of(Algorithm::Sha256, body.as_bytes());
        parse(&SOURCE, content_type, body.as_bytes().to_vec(), digest)
    }

    fn media_type_of(content_type: Option<&str>, body: &str) -> String {
        match parse_with(content_type, body) {
            Ok(manifest) => manifest.media_type().to_owned(),
            Err(error) => panic!("{content_type:?} {body}: {error}"),
        }
    }

    #[test]
    fn docker_media_types_parse_into_oci_spec_types() {
        let manifest = parse_with(Some(media_type::DOCKER_MANIFEST), &docker_manifest()).unwrap();
        let ManifestKind::Image(image) = manifest.kind() else {
            panic!("not an image manifest")
        };
        assert_eq!(image.config().size(), 1469);
        assert_eq!(
            image.layers()[0].media_type().to_string(),
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(image.layers()[0].digest().to_string(), LAYER);

        let list = parse_with(Some(media_type::DOCKER_MANIFEST_LIST), &docker_list()).unwrap();
        assert!(list.is_index());
        let ManifestKind::Index(index) = list.kind() else {
            panic!("not an index")
        };
        assert_eq!(index.manifests().len(), 2);
        let platform = index.manifests()[1].platform().as_ref().unwrap();
        assert_eq!(platform.variant().as_deref(), Some("v7"));
        assert_eq!(platform.architecture().to_string(), "arm");
    }

    #[test]
    fn media_type_comes_from_content_type_then_body_then_shape() {
        assert_eq!(
            media_type_of(
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                &oci_manifest(false)
            ),
            media_type::OCI_MANIFEST
        );
        assert_eq!(
            media_type_of(Some("application/json"), &docker_manifest()),
            media_type::DOCKER_MANIFEST
        );
        assert_eq!(
            media_type_of(None, &docker_list()),
            media_type::DOCKER_MANIFEST_LIST
        );
        assert_eq!(media_type_of(None, &oci_index()), media_type::OCI_INDEX);
        assert_eq!(
            media_type_of(Some("text/plain"), &oci_manifest(false)),
            media_type::OCI_MANIFEST
        );
        // Same shape, other flavour: the Content-Type wins.
        assert_eq!(
            media_type_of(Some(media_type::OCI_MANIFEST), &docker_manifest()),
            media_type::OCI_MANIFEST
        );
        // Different shape: a conflict.
        let conflict = parse_with(Some(media_type::OCI_MANIFEST), &oci_index());
        assert!(
            matches!(conflict, Err(Error::MediaTypeConflict { .. })),
            "{conflict:?}"
        );
    }

    #[test]
    fn schema_1_is_refused_by_content_type_or_body() {
        for (content_type, named) in [
            (
                Some(media_type::DOCKER_MANIFEST_V1_SIGNED),
                media_type::DOCKER_MANIFEST_V1_SIGNED,
            ),
            (
                Some(media_type::DOCKER_MANIFEST_V1),
                media_type::DOCKER_MANIFEST_V1,
            ),
            (
                Some("application/json"),
                media_type::DOCKER_MANIFEST_V1_SIGNED,
            ),
            (None, media_type::DOCKER_MANIFEST_V1_SIGNED),
        ] {
            let error = parse_with(content_type, SCHEMA_V1).unwrap_err();
            match &error {
                Error::SchemaV1Manifest { media_type, .. } => assert_eq!(media_type, named),
                other => panic!("{content_type:?}: {other:?}"),
            }
            assert!(error.to_string().contains("schema 1"), "{error}");
        }
        // The passing case next to it: schema 2 with the same generic content type.
        assert!(parse_with(Some("application/json"), &docker_manifest()).is_ok());
    }

    #[test]
    fn unknown_media_types_and_bad_bodies_are_refused() {
        let artifact = parse_with(
            Some("application/vnd.oci.artifact.manifest.v1+json"),
            &oci_manifest(false),
        );
        assert!(
            matches!(&artifact, Err(Error::UnsupportedMediaType { media_type, .. }) if media_type == "application/vnd.oci.artifact.manifest.v1+json"),
            "{artifact:?}"
        );
        let shapeless = parse_with(None, r#"{"schemaVersion":2}"#);
        assert!(
            matches!(shapeless, Err(Error::UnsupportedMediaType { .. })),
            "{shapeless:?}"
        );
        let not_json = parse_with(Some(media_type::OCI_MANIFEST), "<html>");
        assert!(
            matches!(not_json, Err(Error::InvalidManifest { .. })),
            "{not_json:?}"
        );
        let missing_layers = parse_with(
            Some(media_type::OCI_MANIFEST),
            r#"{"schemaVersion":2,"config":{}}"#,
        );
        assert!(
            matches!(missing_layers, Err(Error::InvalidManifest { .. })),
            "{missing_layers:?}"
        );
    }

    #[test]
    fn digest_is_checked_against_header_and_asked_digest() {
        let body = oci_manifest(true);
        let right = Digest::of(Algorithm::Sha256, body.as_bytes());
        let wrong = Digest::of(Algorithm::Sha256, b"something else");
        let right_text = right.to_string();

        assert_eq!(
            verify_digest(&SOURCE, body.as_bytes(), None, None).unwrap(),
            right
        );
        assert_eq!(
            verify_digest(&SOURCE, body.as_bytes(), Some(&right_text), Some(&right)).unwrap(),
            right
        );

        let error =
            verify_digest(&SOURCE, body.as_bytes(), Some(&wrong.to_string()), None).unwrap_err();
        assert!(
            matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &wrong && actual == &right),
            "{error:?}"
        );
        let error = verify_digest(&SOURCE, body.as_bytes(), None, Some(&wrong)).unwrap_err();
        assert!(matches!(error, Error::DigestMismatch { .. }), "{error:?}");
        let error = verify_digest(&SOURCE, body.as_bytes(), Some("md5:abc"), None).unwrap_err();
        assert!(matches!(error, Error::InvalidHeader { .. }), "{error:?}");

        // A sha512 request computes sha512, and a sha256 header is checked with sha256.
        let sha512 = Digest::of(Algorithm::Sha512, body.as_bytes());
        let got =
            verify_digest(&SOURCE, body.as_bytes(), Some(&right_text), Some(&sha512)).unwrap();
        assert_eq!(got, sha512);
    }
}
