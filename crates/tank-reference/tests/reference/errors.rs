//! Error messages say which part of which input is wrong.

use tank_reference::{Error, Reference};

fn message(input: &str) -> String {
    match input.parse::<Reference>() {
        Ok(reference) => panic!("{input:?} parsed as {reference:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn messages_name_the_input_and_the_part() {
    let rows = [
        (
            "",
            r#"invalid reference "": repository name must have at least one component"#,
        ),
        (
            "docker/Docker",
            r#"invalid reference "docker/Docker": repository name "docker/Docker" must be lowercase"#,
        ),
        (
            "Uppercase:tag",
            r#"invalid reference "Uppercase:tag": repository name "library/Uppercase" must be lowercase"#,
        ),
        (
            "example.com/Team/App:1",
            r#"invalid reference "example.com/Team/App:1": repository name "Team/App" must be lowercase"#,
        ),
        (
            "a:x~y",
            r#"invalid tag "x~y" in "a:x~y": contains '~'; only letters, digits, '_', '.' and '-' are allowed"#,
        ),
        (
            "a:.x",
            r#"invalid tag ".x" in "a:.x": must start with a letter, digit or '_'"#,
        ),
        (
            "a:",
            r#"invalid tag "" in "a:": the tag after ':' is empty"#,
        ),
        (
            "aa/asdf$$^/aa",
            r#"invalid reference "aa/asdf$$^/aa": repository path component "asdf$$^" contains '$'; only lower-case letters, digits, '.', '_' and '-' are allowed"#,
        ),
        (
            "docker/dock..er",
            r#"invalid reference "docker/dock..er": repository path component "dock..er" must start and end with a letter or digit, with one '.', one or two '_', or any '-'s between them"#,
        ),
        // Docker takes a first component with a '.' for a registry.
        (
            "dock..er/docker",
            r#"invalid reference "dock..er/docker": registry "dock..er" is not a valid host name, [IPv6 address] or either with :PORT"#,
        ),
        (
            "docker///docker",
            r#"invalid reference "docker///docker": the repository path has an empty component (a leading, trailing or doubled '/')"#,
        ),
        (
            "[fe80::1%eth0]:5000/repo",
            r#"invalid reference "[fe80::1%eth0]:5000/repo": registry "[fe80::1%eth0]:5000" contains '%', which no host name or port may hold"#,
        ),
        (
            "example.com:http/repo",
            r#"invalid reference "example.com:http/repo": registry "example.com:http" is not a valid host name, [IPv6 address] or either with :PORT"#,
        ),
        (
            "[::1]:5000",
            r#"invalid reference "[::1]:5000": an [IPv6] registry must be followed by '/' and a repository"#,
        ),
        (
            ":justtag",
            r#"invalid reference ":justtag": no repository name before the ':' of the tag"#,
        ),
        (
            "repo@sha256:abc",
            r#"invalid digest "sha256:abc" in "repo@sha256:abc": the hex part has 3 characters, fewer than 32"#,
        ),
        (
            "repo@md5:0123456789abcdef0123456789abcdef",
            r#"unsupported digest algorithm "md5" in "repo@md5:0123456789abcdef0123456789abcdef": only sha256 and sha512 are supported"#,
        ),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            r#"invalid reference "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a": a 64-character hexadecimal string is an image ID, not a repository name"#,
        ),
    ];
    for (input, expected) in rows {
        assert_eq!(message(input), expected, "{input:?}");
    }
}

#[test]
fn too_long_names_give_the_length() {
    let input = format!("{}/b", "a".repeat(250));
    assert_eq!(
        message(&input),
        format!(
            "invalid reference {input:?}: repository name is 262 characters long, more than 255"
        )
    );
    // 255 with the added "docker.io/" is fine.
    let fits = format!("{}/b", "a".repeat(243));
    assert_eq!(fits.parse::<Reference>().expect("fits").name().len(), 255);
}

#[test]
fn with_tag_names_the_tag_and_the_reference() {
    let reference: Reference = "alpine".parse().expect("valid");
    let error = reference.with_tag("bad:tag").expect_err("':' in a tag");
    assert_eq!(
        error.to_string(),
        r#"invalid tag "bad:tag" in "docker.io/library/alpine:bad:tag": contains ':'; only letters, digits, '_', '.' and '-' are allowed"#
    );
    let error = reference
        .with_tag(&"a".repeat(129))
        .expect_err("129 characters");
    assert!(
        matches!(&error, Error::InvalidTag { reason, .. } if reason.contains("129 characters long")),
        "{error}"
    );
    assert_eq!(
        reference.with_tag("3.20").map(|r| r.to_string()),
        Ok("docker.io/library/alpine:3.20".to_owned())
    );
}

#[test]
fn errors_are_std_errors_without_sources() {
    let error: Box<dyn std::error::Error> = Box::new(message_error("a:~"));
    assert!(error.source().is_none());
}

fn message_error(input: &str) -> Error {
    input.parse::<Reference>().expect_err("invalid")
}
