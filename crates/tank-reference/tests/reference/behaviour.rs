//! What tank adds to Go's behaviour, or decides where Go leaves a choice: printing what
//! will be fetched, the manifest selector, unambiguous familiar forms, and the cases where
//! tank refuses what Go accepts.

use std::collections::HashSet;

use tank_reference::{Algorithm, AnyReference, Digest, Error, Reference};

use crate::{Kind, assert_error};

fn parse(input: &str) -> Reference {
    input
        .parse()
        .unwrap_or_else(|error| panic!("{input:?}: {error}"))
}

fn digest() -> Digest {
    Digest::of(Algorithm::Sha256, b"content")
}

#[test]
fn display_prints_what_will_be_fetched() {
    let d = digest();
    let rows = [
        (
            "alpine".to_owned(),
            "docker.io/library/alpine:latest".to_owned(),
            None,
        ),
        (
            "alpine:3.20".to_owned(),
            "docker.io/library/alpine:3.20".to_owned(),
            Some("3.20"),
        ),
        (
            format!("alpine@{d}"),
            format!("docker.io/library/alpine@{d}"),
            None,
        ),
        (
            format!("alpine:3.20@{d}"),
            format!("docker.io/library/alpine:3.20@{d}"),
            Some("3.20"),
        ),
    ];
    for (input, displayed, tag) in rows {
        let reference = parse(&input);
        assert_eq!(reference.to_string(), displayed, "{input:?}");
        assert_eq!(reference.tag(), tag, "{input:?}");
    }
}

#[test]
fn no_tag_is_not_latest() {
    let bare = parse("alpine");
    let latest = parse("alpine:latest");
    assert_ne!(bare, latest);
    assert_eq!(bare.tag(), None);
    assert_eq!(latest.tag(), Some("latest"));
    // They print alike, and fetch alike.
    assert_eq!(bare.to_string(), latest.to_string());
    assert_eq!(bare.manifest_selector(), latest.manifest_selector());
    // Spellings of one reference are equal values.
    let set: HashSet<Reference> = [
        "alpine",
        "library/alpine",
        "docker.io/alpine",
        "index.docker.io/library/alpine",
    ]
    .into_iter()
    .map(parse)
    .collect();
    assert_eq!(set.len(), 1);
}

#[test]
fn manifest_selector_prefers_the_digest() {
    let d = digest();
    assert_eq!(parse("alpine").manifest_selector(), "latest");
    assert_eq!(parse("alpine:3.20").manifest_selector(), "3.20");
    assert_eq!(
        parse(&format!("alpine@{d}")).manifest_selector(),
        d.to_string()
    );
    assert_eq!(
        parse(&format!("alpine:3.20@{d}")).manifest_selector(),
        d.to_string()
    );
}

#[test]
fn registries() {
    let rows = [
        ("localhost/app", "localhost", "app"),
        ("localhost:5000/app", "localhost:5000", "app"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app"),
        ("[::1]:5000/app", "[::1]:5000", "app"),
        ("[::1]/app", "[::1]", "app"),
        ("Example.com/app", "Example.com", "app"),
        ("ghcr.io/org/app", "ghcr.io", "org/app"),
        ("index.docker.io/app", "docker.io", "library/app"),
        // Only the first component is a registry; "localhost" later is a path.
        ("team/localhost", "docker.io", "team/localhost"),
        // Bare "localhost" is an image on Docker Hub, as in Go.
        ("localhost", "docker.io", "library/localhost"),
    ];
    for (input, registry, repository) in rows {
        let reference = parse(input);
        assert_eq!(reference.registry(), registry, "{input:?}");
        assert_eq!(reference.repository(), repository, "{input:?}");
        assert_eq!(reference.name(), format!("{registry}/{repository}"));
    }
}

#[test]
fn familiar_forms() {
    let d = digest();
    let rows = [
        ("alpine".to_owned(), "alpine", "alpine:latest".to_owned()),
        ("alpine:3".to_owned(), "alpine", "alpine:3".to_owned()),
        (format!("alpine@{d}"), "alpine", format!("alpine@{d}")),
        ("org/app".to_owned(), "org/app", "org/app:latest".to_owned()),
        (
            "library/foo/bar".to_owned(),
            "library/foo/bar",
            "library/foo/bar:latest".to_owned(),
        ),
        (
            "ghcr.io/org/app:1".to_owned(),
            "ghcr.io/org/app",
            "ghcr.io/org/app:1".to_owned(),
        ),
        // Go's FamiliarName drops docker.io/ here, and the result would name another
        // registry. Deviation: tank keeps it.
        (
            "docker.io/example.com/app".to_owned(),
            "docker.io/example.com/app",
            "docker.io/example.com/app:latest".to_owned(),
        ),
        (
            "docker.io/localhost/app:1".to_owned(),
            "docker.io/localhost/app",
            "docker.io/localhost/app:1".to_owned(),
        ),
    ];
    for (input, familiar_name, familiar) in rows {
        let reference = parse(&input);
        assert_eq!(reference.familiar_name(), familiar_name, "{input:?}");
        assert_eq!(reference.familiar(), familiar, "{input:?}");
        assert_eq!(parse(&familiar).name(), reference.name(), "{familiar:?}");
    }
}

#[test]
fn docker_ref_and_trimming() {
    let d = digest();
    let both = parse(&format!("ghcr.io/org/app:1@{d}"));
    assert_eq!(
        both.docker_ref().to_string(),
        format!("ghcr.io/org/app@{d}")
    );
    assert_eq!(both.without_tag_or_digest(), parse("ghcr.io/org/app"));
    let bare = parse("ghcr.io/org/app");
    assert_eq!(bare.docker_ref(), parse("ghcr.io/org/app:latest"));
    let tagged = parse("ghcr.io/org/app:1");
    assert_eq!(tagged.docker_ref(), tagged);
    assert_eq!(
        tagged.with_digest(d.clone()),
        parse(&format!("ghcr.io/org/app:1@{d}"))
    );
}

#[test]
fn refused_where_go_accepts() {
    // Go's ParseNormalizedNamed returns a reference without a domain here: the first
    // component looks like a registry but is not a host name. tank needs a registry.
    assert_error(
        "foo_bar.com/app".parse::<Reference>(),
        Kind::InvalidFormat,
        "foo_bar.com/app",
    );
    assert_eq!(parse("foo-bar.com/app").registry(), "foo-bar.com");
    // Go calls "" an invalid format after normalising it to "docker.io/library/".
    assert_eq!("".parse::<Reference>(), Err(Error::NameEmpty));
}

#[test]
fn any_reference_prints_its_own_form() {
    let d = digest();
    let id = d.hex().to_owned();
    assert_eq!(
        id.parse::<AnyReference>(),
        Ok(AnyReference::Digest(d.clone()))
    );
    assert_eq!(
        id.parse::<AnyReference>().map(|any| any.to_string()),
        Ok(d.to_string())
    );
    // 63 hex characters are a name.
    assert_eq!(
        id[1..].parse::<AnyReference>().map(|any| any.to_string()),
        Ok(format!("docker.io/library/{}:latest", &id[1..]))
    );
    assert_error(id.parse::<Reference>(), Kind::Identifier, &id);
}
