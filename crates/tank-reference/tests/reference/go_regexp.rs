//! The tables of distribution/reference `regexp_test.go` (`875f162`) as data, run against
//! the hand-written matchers of the hidden `grammar` module that stand for Go's regular
//! expressions.

use tank_reference::grammar;

/// `TestDomainRegexp`: `^` + domainAndPort + `$`.
#[test]
fn domain_regexp() {
    let rows = [
        ("test.com", true),
        ("test.com:10304", true),
        ("test.com:http", false),
        ("localhost", true),
        ("localhost:8080", true),
        ("a", true),
        ("a.b", true),
        ("ab.cd.com", true),
        ("a-b.com", true),
        ("-ab.com", false),
        ("ab-.com", false),
        ("ab.c-om", true),
        ("ab.-com", false),
        ("ab.com-", false),
        ("0101.com", true), // TODO(dmcgowan): valid if this should be allowed
        ("001a.com", true),
        ("b.gbc.io:443", true),
        ("b.gbc.io", true),
        ("xn--n3h.com", true),               // ☃.com in punycode
        ("Asdf.com", true),                  // uppercase character
        ("192.168.1.1:75050", true),         // ipv4
        ("192.168.1.1:750050", true), // port with more than 5 digits, it will fail on validation
        ("[fd00:1:2::3]:75050", true), // ipv6 compressed
        ("[fd00:1:2::3]75050", false), // ipv6 wrong port separator
        ("[fd00:1:2::3]::75050", false), // ipv6 wrong port separator
        ("[fd00:1:2::3%eth0]:75050", false), // ipv6 with zone
        ("[fd00123123123]:75050", true), // ipv6 wrong format, will fail in validation
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true), // ipv6 long format
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true), // ipv6 long format and invalid port, it will fail in validation
        ("fd00:1:2::3:75050", false), // bad ipv6 without square brackets
    ];
    for (input, matches) in rows {
        assert_eq!(grammar::is_domain_and_port(input), matches, "{input:?}");
    }
    assert_eq!(rows.len(), 30);
}

/// `TestFullNameRegexp`: the anchored name expression and its two captures, domain and
/// remote name. `None` for a row that must not match; a row that must match without
/// saying its captures has `Some(None)`.
#[test]
fn full_name_regexp() {
    let long = format!("{}a", "a/".repeat(128));
    let long_path = format!("{}a", "a/".repeat(127));
    type Subs<'a> = Option<Option<(&'a str, &'a str)>>;
    let rows: Vec<(&str, Subs<'_>)> = vec![
        ("", None),
        ("short", Some(Some(("", "short")))),
        ("simple/name", Some(Some(("simple", "name")))),
        ("library/ubuntu", Some(Some(("library", "ubuntu")))),
        (
            "docker/stevvooe/app",
            Some(Some(("docker", "stevvooe/app"))),
        ),
        (
            "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb",
            Some(Some(("aa", "aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb"))),
        ),
        ("aa/aa/bb/bb/bb", Some(Some(("aa", "aa/bb/bb/bb")))),
        ("a/a/a/a", Some(Some(("a", "a/a/a")))),
        ("a/a/a/a/", None),
        ("a//a/a", None),
        ("a", Some(Some(("", "a")))),
        ("a/aa", Some(Some(("a", "aa")))),
        ("a/aa/a", Some(Some(("a", "aa/a")))),
        ("foo.com", Some(Some(("", "foo.com")))),
        ("foo.com/", None),
        ("foo.com:8080/bar", Some(Some(("foo.com:8080", "bar")))),
        ("foo.com:http/bar", None),
        ("foo.com/bar", Some(Some(("foo.com", "bar")))),
        ("foo.com/bar/baz", Some(Some(("foo.com", "bar/baz")))),
        ("localhost:8080/bar", Some(Some(("localhost:8080", "bar")))),
        (
            "sub-dom1.foo.com/bar/baz/quux",
            Some(Some(("sub-dom1.foo.com", "bar/baz/quux"))),
        ),
        (
            "blog.foo.com/bar/baz",
            Some(Some(("blog.foo.com", "bar/baz"))),
        ),
        ("a^a", None),
        ("aa/asdf$$^/aa", None),
        ("asdf$$^/aa", None),
        ("aa-a/a", Some(Some(("aa-a", "a")))),
        (&long, Some(Some(("a", &long_path)))),
        ("a-/a/a/a", None),
        ("foo.com/a-/a/a", None),
        ("-foo/bar", None),
        ("foo/bar-", None),
        ("foo-/bar", None),
        ("foo/-bar", None),
        ("_foo/bar", None),
        ("foo_bar", Some(Some(("", "foo_bar")))),
        ("foo_bar.com", Some(Some(("", "foo_bar.com")))),
        ("foo_bar.com:8080", None),
        ("foo_bar.com:8080/app", None),
        ("foo.com/foo_bar", Some(Some(("foo.com", "foo_bar")))),
        ("____/____", None),
        ("_docker/_docker", None),
        ("docker_/docker_", None),
        (
            "b.gcr.io/test.example.com/my-app",
            Some(Some(("b.gcr.io", "test.example.com/my-app"))),
        ),
        // ☃.com in punycode
        (
            "xn--n3h.com/myimage",
            Some(Some(("xn--n3h.com", "myimage"))),
        ),
        // 🐳.com in punycode
        (
            "xn--7o8h.com/myimage",
            Some(Some(("xn--7o8h.com", "myimage"))),
        ),
        // 🐳.com in punycode
        (
            "example.com/xn--7o8h.com/myimage",
            Some(Some(("example.com", "xn--7o8h.com/myimage"))),
        ),
        (
            "example.com/some_separator__underscore/myimage",
            Some(Some(("example.com", "some_separator__underscore/myimage"))),
        ),
        ("example.com/__underscore/myimage", None),
        ("example.com/..dots/myimage", None),
        ("example.com/.dots/myimage", None),
        ("example.com/nodouble..dots/myimage", None),
        ("example.com/nodouble..dots/myimage", None),
        ("docker./docker", None),
        (".docker/docker", None),
        ("docker-/docker", None),
        ("-docker/docker", None),
        ("do..cker/docker", None),
        ("do__cker:8080/docker", None),
        ("do__cker/docker", Some(Some(("", "do__cker/docker")))),
        (
            "b.gcr.io/test.example.com/my-app",
            Some(Some(("b.gcr.io", "test.example.com/my-app"))),
        ),
        (
            "registry.io/foo/project--id.module--name.ver---sion--name",
            Some(Some((
                "registry.io",
                "foo/project--id.module--name.ver---sion--name",
            ))),
        ),
        // uppercase character in hostname
        ("Asdf.com/foo/bar", Some(None)),
        // uppercase characters in remote name
        ("Foo/FarB", None),
    ];
    for (input, expected) in &rows {
        let actual = grammar::split_name(input);
        match expected {
            None => assert_eq!(actual, None, "{input:?} must not match"),
            Some(subs) => {
                let (domain, path) = actual.unwrap_or_else(|| panic!("{input:?} must match"));
                assert!(grammar::is_name(input));
                if let Some((expected_domain, expected_path)) = subs {
                    assert_eq!(domain.unwrap_or(""), *expected_domain, "{input:?}");
                    assert_eq!(path, *expected_path, "{input:?}");
                }
            }
        }
    }
    assert_eq!(rows.len(), 63);
}

/// `TestReferenceRegexp`: the anchored reference expression and its three captures, name,
/// tag and digest ("" when absent).
#[test]
fn reference_regexp() {
    let digest = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";
    /// Input, then name, tag and digest when it matches.
    type Row<'a> = (&'a str, Option<(&'a str, &'a str, &'a str)>);
    let rows: [Row<'_>; 12] = [
        (
            "registry.com:8080/myapp:tag",
            Some(("registry.com:8080/myapp", "tag", "")),
        ),
        (
            "registry.com:8080/myapp@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some(("registry.com:8080/myapp", "", digest)),
        ),
        (
            "registry.com:8080/myapp:tag2@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some(("registry.com:8080/myapp", "tag2", digest)),
        ),
        ("registry.com:8080/myapp@sha256:badbadbadbad", None),
        ("registry.com:8080/myapp:invalid~tag", None),
        ("bad_hostname.com:8080/myapp:tag", None),
        // localhost treated as name, missing tag with 8080 as tag
        (
            "localhost:8080@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some(("localhost", "8080", digest)),
        ),
        (
            "localhost:8080/name@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some(("localhost:8080/name", "", digest)),
        ),
        (
            "localhost:http/name@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            None,
        ),
        // localhost will be treated as an image name without a host
        (
            "localhost@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some(("localhost", "", digest)),
        ),
        ("registry.com:8080/myapp@bad", None),
        ("registry.com:8080/myapp@2bad", None), // TODO(dmcgowan): Support this as valid
    ];
    for (input, expected) in rows {
        let actual = grammar::split_reference(input)
            .map(|(name, tag, digest)| (name, tag.unwrap_or(""), digest.unwrap_or("")));
        assert_eq!(actual, expected, "{input:?}");
    }
}

/// `TestIdentifierRegexp`.
#[test]
fn identifier_regexp() {
    let rows = [
        (
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821",
            true,
        ),
        (
            "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C",
            false,
        ),
        (
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf",
            false,
        ),
        (
            "sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821",
            false,
        ),
        (
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482",
            false,
        ),
    ];
    for (input, matches) in rows {
        assert_eq!(grammar::is_identifier(input), matches, "{input:?}");
    }
    assert_eq!(rows.len(), 5);
}

/// The remaining productions, each with a failing case next to a passing one.
#[test]
fn other_productions() {
    assert!(grammar::is_tag("v1.2-rc_3"));
    assert!(grammar::is_tag(&"a".repeat(128)));
    assert!(!grammar::is_tag(&"a".repeat(129)));
    assert!(!grammar::is_tag(".v1"));
    assert!(!grammar::is_tag("-v1"));
    assert!(!grammar::is_tag(""));
    assert!(grammar::is_digest_algorithm("sha256+b64u.x_y-z"));
    assert!(!grammar::is_digest_algorithm("256sha"));
    assert!(!grammar::is_digest_algorithm("sha256+"));
    assert!(grammar::is_digest(&format!("md5:{}", "A".repeat(32))));
    assert!(!grammar::is_digest(&format!("md5:{}", "A".repeat(31))));
    assert!(grammar::is_path_component("a__b--c.d_e"));
    assert!(!grammar::is_path_component("a___b"));
    assert!(grammar::is_domain_component("a"));
    assert!(!grammar::is_domain_component("a_b"));
    assert!(grammar::is_host("[::1]"));
    assert!(!grammar::is_host("[]"));
    assert!(grammar::is_remote_name("a/b/c"));
    assert!(!grammar::is_remote_name("a//c"));
}
