//! The tables of distribution/reference `normalize_test.go` (`4894124`) as data, run
//! against [`Reference`] (Go's `ParseNormalizedNamed`) and [`AnyReference`] (Go's
//! `ParseAnyReference`).
//!
//! Go's `TestValidateReferenceName` and `TestValidateRemoteName` only say valid or
//! invalid; the invalid rows here also name the error we give.

use tank_reference::{AnyReference, Digest, Reference};

use crate::{Kind, assert_error};

fn parse(input: &str) -> Reference {
    input
        .parse()
        .unwrap_or_else(|error| panic!("{input:?}: {error}"))
}

/// `TestValidateReferenceName`.
#[test]
fn validate_reference_name() {
    let valid = [
        "docker/docker",
        "library/debian",
        "debian",
        "docker.io/docker/docker",
        "docker.io/library/debian",
        "docker.io/debian",
        "index.docker.io/docker/docker",
        "index.docker.io/library/debian",
        "index.docker.io/debian",
        "127.0.0.1:5000/docker/docker",
        "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        // This test case was moved from invalid to valid since it is valid input when
        // specified with a hostname, it removes the ambiguity from about whether the value
        // is an identifier or repository name.
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
    ];
    let invalid = [
        ("https://github.com/docker/docker", Kind::InvalidFormat),
        ("docker/Docker", Kind::Uppercase),
        ("-docker", Kind::InvalidFormat),
        ("-docker/docker", Kind::InvalidFormat),
        ("-docker.io/docker/docker", Kind::InvalidFormat),
        ("docker///docker", Kind::InvalidFormat),
        ("docker.io/docker/Docker", Kind::Uppercase),
        ("docker.io/docker///docker", Kind::InvalidFormat),
        ("[fc00::1]", Kind::InvalidFormat),
        ("[fc00::1]:5000", Kind::InvalidFormat),
        ("fc00::1:5000/debian", Kind::InvalidFormat),
        ("[fe80::1%eth0]:5000/debian", Kind::InvalidFormat),
        (
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            Kind::InvalidFormat,
        ),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            Kind::Identifier,
        ),
    ];
    for (input, expected) in invalid {
        assert_error(input.parse::<Reference>(), expected, input);
    }
    for input in valid {
        parse(input);
    }
    assert_eq!((valid.len(), invalid.len()), (23, 14));
}

/// `TestValidateRemoteName`.
#[test]
fn validate_remote_name() {
    let valid = [
        // Sanity check.
        "docker/docker",
        // Allow 64-character non-hexadecimal names (hexadecimal names are forbidden).
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        // Allow embedded hyphens.
        "docker-rules/docker",
        // Allow multiple hyphens as well.
        "docker---rules/docker",
        // Username doc and image name docker being tested.
        "doc/docker",
        // single character names are now allowed.
        "d/docker",
        "jess/t",
        // Consecutive underscores.
        "dock__er/docker",
    ];
    let invalid = [
        // Disallow capital letters.
        ("docker/Docker", Kind::Uppercase),
        // Only allow one slash.
        ("docker///docker", Kind::InvalidFormat),
        // Disallow 64-character hexadecimal.
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            Kind::Identifier,
        ),
        // Disallow leading and trailing hyphens in namespace.
        ("-docker/docker", Kind::InvalidFormat),
        ("docker-/docker", Kind::InvalidFormat),
        ("-docker-/docker", Kind::InvalidFormat),
        // Don't allow underscores everywhere (as opposed to hyphens).
        ("____/____", Kind::InvalidFormat),
        ("_docker/_docker", Kind::InvalidFormat),
        // Disallow consecutive periods.
        ("dock..er/docker", Kind::InvalidFormat),
        ("dock_.er/docker", Kind::InvalidFormat),
        ("dock-.er/docker", Kind::InvalidFormat),
        // No repository.
        ("docker/", Kind::InvalidFormat),
        // namespace too long
        (
            "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
            Kind::TooLong,
        ),
    ];
    for input in valid {
        parse(input);
    }
    for (input, expected) in invalid {
        assert_error(input.parse::<Reference>(), expected, input);
    }
    assert_eq!((valid.len(), invalid.len()), (8, 13));
}

/// `TestParseRepositoryInfo`: each of the familiar, full and (when given) ambiguous
/// spelling parses to the same familiar name, full name, domain and remote name.
#[test]
fn parse_repository_info() {
    // (remote name, familiar name, full name, ambiguous name, domain)
    let rows = [
        (
            "fooo/bar",
            "fooo/bar",
            "docker.io/fooo/bar",
            "index.docker.io/fooo/bar",
            "docker.io",
        ),
        (
            "library/ubuntu",
            "ubuntu",
            "docker.io/library/ubuntu",
            "library/ubuntu",
            "docker.io",
        ),
        (
            "nonlibrary/ubuntu",
            "nonlibrary/ubuntu",
            "docker.io/nonlibrary/ubuntu",
            "",
            "docker.io",
        ),
        (
            "other/library",
            "other/library",
            "docker.io/other/library",
            "",
            "docker.io",
        ),
        (
            "private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "",
            "127.0.0.1:8000",
        ),
        (
            "privatebase",
            "127.0.0.1:8000/privatebase",
            "127.0.0.1:8000/privatebase",
            "",
            "127.0.0.1:8000",
        ),
        (
            "private/moonbase",
            "example.com/private/moonbase",
            "example.com/private/moonbase",
            "",
            "example.com",
        ),
        (
            "privatebase",
            "example.com/privatebase",
            "example.com/privatebase",
            "",
            "example.com",
        ),
        (
            "private/moonbase",
            "example.com:8000/private/moonbase",
            "example.com:8000/private/moonbase",
            "",
            "example.com:8000",
        ),
        (
            "privatebasee",
            "example.com:8000/privatebasee",
            "example.com:8000/privatebasee",
            "",
            "example.com:8000",
        ),
        (
            "library/ubuntu-12.04-base",
            "ubuntu-12.04-base",
            "docker.io/library/ubuntu-12.04-base",
            "index.docker.io/library/ubuntu-12.04-base",
            "docker.io",
        ),
        (
            "library/foo",
            "foo",
            "docker.io/library/foo",
            "docker.io/foo",
            "docker.io",
        ),
        (
            "library/foo/bar",
            "library/foo/bar",
            "docker.io/library/foo/bar",
            "",
            "docker.io",
        ),
        (
            "store/foo/bar",
            "store/foo/bar",
            "docker.io/store/foo/bar",
            "",
            "docker.io",
        ),
        ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
        ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
    ];
    let mut spellings = 0;
    for (remote_name, familiar_name, full_name, ambiguous_name, domain) in rows {
        let mut inputs = vec![familiar_name, full_name];
        if !ambiguous_name.is_empty() {
            inputs.push(ambiguous_name);
        }
        for input in inputs {
            let reference = parse(input);
            assert_eq!(reference.familiar_name(), familiar_name, "{input:?}");
            // Go's `String()` of a name-only reference is its full name; our Display adds
            // `:latest`, so compare `name()`.
            assert_eq!(reference.name(), full_name, "{input:?}");
            assert_eq!(
                reference.to_string(),
                format!("{full_name}:latest"),
                "{input:?}"
            );
            assert_eq!(reference.registry(), domain, "{input:?}");
            assert_eq!(reference.repository(), remote_name, "{input:?}");
            spellings += 1;
        }
    }
    assert_eq!((rows.len(), spellings), (16, 36));
}

/// `TestParseReferenceWithTagAndDigest`.
#[test]
fn parse_reference_with_tag_and_digest() {
    let short =
        "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    let reference = parse(short);
    assert_eq!(reference.to_string(), format!("docker.io/library/{short}"));
    assert_eq!(reference.tag(), Some("latest"));
    assert!(reference.digest().is_some());
    assert_eq!(reference.familiar(), short);
}

/// `TestInvalidReferenceComponents`.
#[test]
fn invalid_reference_components() {
    assert_error("-foo".parse::<Reference>(), Kind::InvalidFormat, "-foo");
    let reference = parse("busybox");
    assert_error(reference.with_tag("-foo"), Kind::InvalidTag, "-foo");
    // Go's `WithDigest(ref, digest.Digest("foo"))`: a digest is checked when it is made.
    assert_error("foo".parse::<Digest>(), Kind::DigestFormat, "foo");
}

/// `TestParseAnyReference`: Go compares `String()` with the equivalent and the value with
/// `Parse(equivalent)`; ours compares the value with the equivalent parsed the same way,
/// and digests by their text.
#[test]
fn parse_any_reference() {
    let redis_digest = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    let rows = [
        ("redis", "docker.io/library/redis", false),
        ("redis:latest", "docker.io/library/redis:latest", false),
        (
            "docker.io/library/redis:latest",
            "docker.io/library/redis:latest",
            false,
        ),
        (
            "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            false,
        ),
        (
            "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            false,
        ),
        ("dmcgowan/myapp", "docker.io/dmcgowan/myapp", false),
        (
            "dmcgowan/myapp:latest",
            "docker.io/dmcgowan/myapp:latest",
            false,
        ),
        (
            "docker.io/mcgowan/myapp:latest",
            "docker.io/mcgowan/myapp:latest",
            false,
        ),
        (
            "dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            false,
        ),
        (
            "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            false,
        ),
        (
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            redis_digest,
            true,
        ),
        (redis_digest, redis_digest, true),
        (
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
            false,
        ),
        ("dbcc1", "docker.io/library/dbcc1", false),
    ];
    for (input, equivalent, is_digest) in rows {
        let any: AnyReference = input
            .parse()
            .unwrap_or_else(|error| panic!("{input:?}: {error}"));
        let expected = if is_digest {
            AnyReference::Digest(equivalent.parse().expect("digest"))
        } else {
            AnyReference::Named(parse(equivalent))
        };
        assert_eq!(any, expected, "{input:?}");
        match &any {
            AnyReference::Digest(digest) => assert_eq!(digest.to_string(), equivalent),
            AnyReference::Named(reference) => {
                assert_eq!(reference.name(), parse(equivalent).name())
            }
        }
    }
    assert_eq!(rows.len(), 14);
}

/// `ParseAnyReference` of a sha384 digest: Go returns the digest; tank cannot verify
/// sha384, so it says so rather than reading it as image `sha384` with a tag. Deviation.
#[test]
fn parse_any_reference_refuses_sha384() {
    let sha384 = format!("sha384:{}", "a".repeat(96));
    assert_error(
        sha384.parse::<AnyReference>(),
        Kind::DigestUnsupported,
        &sha384,
    );
    // With another length go-digest refuses it too, and both read an image name and tag.
    let not_a_digest = format!("sha384:{}", "a".repeat(64));
    assert!(matches!(
        not_a_digest.parse::<AnyReference>(),
        Ok(AnyReference::Named(_))
    ));
}

/// `TestNormalizedSplitHostname`.
#[test]
fn normalized_split_hostname() {
    let rows = [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    ];
    for (input, domain, path) in rows {
        let reference = parse(input);
        assert_eq!(reference.registry(), domain, "{input:?}");
        assert_eq!(reference.repository(), path, "{input:?}");
    }
    assert_eq!(rows.len(), 11);
}

/// `TestMatchError`.
#[test]
fn match_error() {
    let named = parse("foo");
    assert_error(named.familiar_match("[-x]"), Kind::Pattern, "[-x]");
}

/// `TestMatch`: Go's `FamiliarMatch`.
#[test]
fn familiar_match() {
    let rows = [
        ("foo", "foo/**/ba[rz]", false),
        ("foo/any/bat", "foo/**/ba[rz]", false),
        ("foo/a/bar", "foo/**/ba[rz]", true),
        ("foo/b/baz", "foo/**/ba[rz]", true),
        ("foo/c/baz:tag", "foo/**/ba[rz]", true),
        ("foo/c/baz:tag", "foo/*/baz:tag", true),
        ("foo/c/baz:tag", "foo/c/baz:tag", true),
        ("example.com/foo/c/baz:tag", "*/foo/c/baz", true),
        ("example.com/foo/c/baz:tag", "example.com/foo/c/baz", true),
    ];
    for (reference, pattern, expected) in rows {
        let AnyReference::Named(named) = reference.parse::<AnyReference>().expect(reference) else {
            panic!("{reference:?} is a name");
        };
        assert_eq!(
            named.familiar_match(pattern),
            Ok(expected),
            "{reference:?} against {pattern:?}"
        );
    }
    assert_eq!(rows.len(), 9);
}

/// `TestParseDockerRef`: then the output must parse.
#[test]
fn parse_docker_ref() {
    let busybox = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
    let rows = [
        (
            "nothing",
            "busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "tag only",
            "busybox:latest",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "digest only",
            "busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            format!("docker.io/library/busybox@{busybox}"),
        ),
        (
            "path only",
            "library/busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "hostname only",
            "docker.io/busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "no tag",
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "no path",
            "docker.io/busybox:latest",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "no hostname",
            "library/busybox:latest",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "full reference with tag",
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "gcr reference without tag",
            "gcr.io/library/busybox",
            "gcr.io/library/busybox:latest".to_owned(),
        ),
        (
            "both tag and digest",
            "gcr.io/library/busybox:latest@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            format!("gcr.io/library/busybox@{busybox}"),
        ),
    ];
    for (name, input, expected) in &rows {
        let normalized = parse(input).docker_ref();
        let output = normalized.to_string();
        assert_eq!(&output, expected, "{name}");
        // Docker's form always holds a tag or a digest, so it prints as Go prints it.
        assert!(
            normalized.tag().is_some() || normalized.digest().is_some(),
            "{name}"
        );
        assert_eq!(parse(&output), normalized, "{name}: {output:?} parses back");
    }
    assert_eq!(rows.len(), 11);
}
