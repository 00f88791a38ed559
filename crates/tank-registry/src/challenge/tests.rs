//! Unit tests of the `WWW-Authenticate` parser: real registry headers, RFC 7235 quoting and lists, refusals.

use super::*;

fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
    Challenge::Bearer {
        realm: realm.to_owned(),
        service: service.map(str::to_owned),
        scope: scope.map(str::to_owned),
    }
}

fn basic(realm: Option<&str>) -> Challenge {
    Challenge::Basic {
        realm: realm.map(str::to_owned),
    }
}

fn check(header: &str, expected: &[Challenge]) {
    match parse_www_authenticate(header) {
        Ok(challenges) => assert_eq!(challenges, expected, "header {header:?}"),
        Err(error) => panic!("header {header:?} was refused: {error}"),
    }
}

/// Asserts the header is refused, naming the header, with a reason containing `reason`.
fn check_refused(header: &str, reason: &str) {
    match parse_www_authenticate(header) {
        Ok(challenges) => panic!("header {header:?} was accepted as {challenges:?}"),
        Err(Error::Challenge {
            header: named,
            reason: actual,
        }) => {
            assert_eq!(named, header);
            assert!(
                actual.contains(reason),
                "header {header:?}: reason {actual:?} does not mention {reason:?}"
            );
        }
        Err(other) => panic!("header {header:?}: unexpected error {other:?}"),
    }
}

/// Headers as real registries send them.
#[test]
fn real_registry_headers() {
    let table: &[(&str, &str, Challenge)] = &[
        (
            "Docker Hub, /v2/ ping",
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
            bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                None,
            ),
        ),
        (
            "Docker Hub, manifest",
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
            bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/alpine:pull"),
            ),
        ),
        (
            "Docker Hub, denied push with error",
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push",error="insufficient_scope""#,
            bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:samalba/my-app:pull,push"),
            ),
        ),
        (
            "ghcr.io",
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#,
            bearer(
                "https://ghcr.io/token",
                Some("ghcr.io"),
                Some("repository:user/image:pull"),
            ),
        ),
        (
            "quay.io",
            r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#,
            bearer("https://quay.io/v2/auth", Some("quay.io"), None),
        ),
        (
            "gcr.io, unquoted service",
            r#"Bearer realm="https://gcr.io/v2/token",service=gcr.io,scope="repository:google-containers/pause:pull""#,
            bearer(
                "https://gcr.io/v2/token",
                Some("gcr.io"),
                Some("repository:google-containers/pause:pull"),
            ),
        ),
        (
            "Artifact Registry, realm only",
            r#"Bearer realm="https://us-docker.pkg.dev/v2/token""#,
            bearer("https://us-docker.pkg.dev/v2/token", None, None),
        ),
        (
            "ECR",
            r#"Basic realm="https://111111111111.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
            basic(Some(
                "https://111111111111.dkr.ecr.us-east-1.amazonaws.com/",
            )),
        ),
        (
            "Harbor",
            r#"Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:library/nginx:pull""#,
            bearer(
                "https://harbor.example.com/service/token",
                Some("harbor-registry"),
                Some("repository:library/nginx:pull"),
            ),
        ),
        (
            "Azure Container Registry",
            r#"Bearer realm="https://example.azurecr.io/oauth2/token",service="example.azurecr.io""#,
            bearer(
                "https://example.azurecr.io/oauth2/token",
                Some("example.azurecr.io"),
                None,
            ),
        ),
        (
            "CNCF Distribution, token mode, several scopes",
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:foo/bar:pull,push repository:foo/base:pull",error="invalid_token""#,
            bearer(
                "https://auth.example.com/token",
                Some("registry.example.com"),
                Some("repository:foo/bar:pull,push repository:foo/base:pull"),
            ),
        ),
        (
            "CNCF Distribution, htpasswd mode",
            r#"Basic realm="basic-realm""#,
            basic(Some("basic-realm")),
        ),
        (
            "CNCF Distribution, htpasswd realm with Go %q escapes",
            r#"Basic realm="Registry \"Realm\" \\ here""#,
            basic(Some(r#"Registry "Realm" \ here"#)),
        ),
    ];
    for (origin, header, expected) in table {
        let challenges = parse_www_authenticate(header)
            .unwrap_or_else(|error| panic!("{origin}: {header:?} refused: {error}"));
        assert_eq!(challenges, std::slice::from_ref(expected), "{origin}");
    }
}

#[test]
fn scheme_and_parameter_names_are_case_insensitive() {
    check(
        r#"bearer REALM="https://r/token",Service="s",sCoPe="repository:a:pull""#,
        &[bearer(
            "https://r/token",
            Some("s"),
            Some("repository:a:pull"),
        )],
    );
    check(r#"BASIC Realm="x""#, &[basic(Some("x"))]);
    // Values keep their case.
    check(
        r#"Bearer realm="HTTPS://R/Token""#,
        &[bearer("HTTPS://R/Token", None, None)],
    );
}

#[test]
fn quoted_values_keep_commas_colons_spaces_and_escapes() {
    check(
        r#"Bearer realm="https://r/t",scope="repository:a/b:pull,push""#,
        &[bearer(
            "https://r/t",
            None,
            Some("repository:a/b:pull,push"),
        )],
    );
    check(
        r#"Bearer realm="https://r/t",scope="repository:a:pull repository:b/c:pull,push""#,
        &[bearer(
            "https://r/t",
            None,
            Some("repository:a:pull repository:b/c:pull,push"),
        )],
    );
    check(r#"Basic realm="a\"b\\c\d""#, &[basic(Some(r#"a"b\cd"#))]);
    check(r#"Basic realm="""#, &[basic(Some(""))]);
    check(
        r#"Basic realm="héllo wörld""#,
        &[basic(Some("héllo wörld"))],
    );
}

#[test]
fn whitespace_around_separators_is_tolerated() {
    let expected = [bearer("https://r/t", Some("s"), Some("repository:a:pull"))];
    check(
        "  Bearer   realm = \"https://r/t\" ,\tservice=\"s\" , scope=\"repository:a:pull\"  ",
        &expected,
    );
    check(
        "Bearer realm=\"https://r/t\",,service=\"s\", ,scope=\"repository:a:pull\",",
        &expected,
    );
    check("\tBasic\t", &[basic(None)]);
}

#[test]
fn several_challenges_in_one_header() {
    check(
        r#"Bearer realm="x",service="y", Basic realm="z""#,
        &[bearer("x", Some("y"), None), basic(Some("z"))],
    );
    check(
        r#"Basic realm="z", Bearer realm="x",scope="repository:a:pull,push""#,
        &[
            basic(Some("z")),
            bearer("x", None, Some("repository:a:pull,push")),
        ],
    );
    check("Basic, Basic realm=\"b\"", &[basic(None), basic(Some("b"))]);
}

#[test]
fn unknown_schemes_are_skipped_not_refused() {
    check("Negotiate", &[]);
    check("Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXagMDAu==", &[]);
    check(
        r#"Digest realm="r", nonce="abc", qop="auth,auth-int", Bearer realm="x""#,
        &[bearer("x", None, None)],
    );
    check(
        r#"Negotiate abc/+def==, Basic realm="z", NTLM"#,
        &[basic(Some("z"))],
    );
    // The known schemes are still checked when they sit between unknown ones.
    check_refused(r#"Negotiate, Bearer service="s", NTLM"#, "no realm");
}

#[test]
fn bearer_needs_a_realm_basic_does_not() {
    check(r#"Bearer realm="x""#, &[bearer("x", None, None)]);
    check_refused(r#"Bearer service="registry.docker.io""#, "no realm");
    check_refused("Bearer", "no realm");
    check_refused(r#"Bearer realm="""#, "empty realm");
    check("Basic", &[basic(None)]);
    check(r#"Basic charset="UTF-8""#, &[basic(None)]);
}

#[test]
fn repeated_parameters_are_refused() {
    check(
        r#"Bearer realm="x",service="s""#,
        &[bearer("x", Some("s"), None)],
    );
    check_refused(r#"Bearer realm="x",realm="y""#, "more than once");
    check_refused(r#"Bearer realm="x",Realm="y""#, "more than once");
}

#[test]
fn malformed_headers_are_refused() {
    // Each case follows the grammar once the defect is removed.
    check(r#"Bearer realm="x""#, &[bearer("x", None, None)]);
    check_refused(r#"Bearer realm="x"#, "unterminated");
    check_refused(r#"Bearer realm="x\"#, "backslash");
    check_refused(r#"Bearer realm="x",service="y"#, "unterminated");

    check(
        r#"Bearer realm="x",service="y""#,
        &[bearer("x", Some("y"), None)],
    );
    check_refused(r#"Bearer realm "x""#, "'='");
    check_refused(r#"Bearer realm="x",service "y""#, "parameter or token68");
    check_refused(r#"Bearer realm="x" service="y""#, "comma");
    check_refused(r#"Bearer realm="x"y"#, "comma");

    check_refused("", "no challenge");
    check_refused("   ", "no challenge");
    check_refused(" , ,", "no challenge");

    check_refused(r#"="x""#, "auth-scheme");
    check_refused(r#""Bearer" realm="x""#, "auth-scheme");
    check_refused(r#"Bearer="x""#, "space after auth-scheme");
    check_refused("Bearer realm=\"a\u{1}b\"", "control character");
    // Found by the `www_authenticate` fuzz target: an escaped control character got in.
    check_refused("Basic realm=\"a\\\u{0}b\"", "escaped control character");
    check_refused("Basic realm=\"a\\\u{7f}\"", "escaped control character");
    check("Basic realm=\"a\\\tb\\ c\"", &[basic(Some("a\tb c"))]);
}

#[test]
fn a_parameter_without_value_is_refused() {
    check(
        r#"Bearer realm="x",service=s, scope="y""#,
        &[bearer("x", Some("s"), Some("y"))],
    );
    check_refused(
        r#"Bearer realm="x",service=, scope="y""#,
        "service has no value",
    );
    check_refused(r#"Bearer realm="x",service=@"#, "service has no value");
    check_refused(r#"Bearer realm=@"#, "realm has no value");
    // As the first element, `realm=` is a token68 with padding, so Bearer has no realm.
    check_refused("Bearer realm=", "no realm");
    check(
        r#"Basic realm=, Bearer realm="x""#,
        &[basic(None), bearer("x", None, None)],
    );
}

#[test]
fn scopes_splits_at_whitespace() {
    let challenge = bearer(
        "x",
        None,
        Some("repository:a:pull  repository:b/c:pull,push"),
    );
    assert_eq!(
        challenge.scopes(),
        ["repository:a:pull", "repository:b/c:pull,push"]
    );
    assert!(bearer("x", None, None).scopes().is_empty());
    assert!(basic(Some("repository:a:pull")).scopes().is_empty());
}

#[test]
fn the_error_names_the_header_in_its_message() {
    let header = r#"Bearer service="s""#;
    let error = parse_www_authenticate(header).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("{header:?}")), "{message}");
    assert!(message.contains("no realm"), "{message}");
}
