//! Unit tests of `registries.conf` parsing, drop-in merging and source resolution.

use std::path::Path;

use tank_reference::Reference;

use super::*;

fn parse(text: &str) -> Registries {
    Registries::parse(text, Path::new("test.conf")).unwrap_or_else(|error| panic!("{error}"))
}

fn error(text: &str) -> String {
    match Registries::parse(text, Path::new("test.conf")) {
        Ok(parsed) => panic!("accepted {text:?} as {parsed:?}"),
        Err(error) => error.to_string(),
    }
}

/// The sources as `registry/repository` strings, mirrors marked with `~` and insecure
/// ones with `!`.
fn sources(registries: &Registries, reference: &str, by_digest: bool) -> Vec<String> {
    let reference: Reference = reference.parse().unwrap();
    registries
        .sources(&reference, by_digest)
        .unwrap_or_else(|error| panic!("{reference}: {error}"))
        .iter()
        .map(|source| {
            format!(
                "{}{}{source}",
                if source.mirror { "~" } else { "" },
                if source.insecure { "!" } else { "" }
            )
        })
        .collect()
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn the_manual_example_tries_both_mirrors_then_the_rewritten_location() {
    let registries = parse(
        r#"
        unqualified-search-registries = ["example.com"]

        [[registry]]
        prefix = "example.com/foo"
        insecure = false
        blocked = false
        location = "internal-registry-for-example.com/bar"

        [[registry.mirror]]
        location = "example-mirror-0.local/mirror-for-foo"

        [[registry.mirror]]
        location = "example-mirror-1.local/mirrors/foo"
        insecure = true
        "#,
    );
    assert_eq!(
        sources(&registries, "example.com/foo/image:latest", false),
        [
            "~example-mirror-0.local/mirror-for-foo/image",
            "~!example-mirror-1.local/mirrors/foo/image",
            "internal-registry-for-example.com/bar/image",
        ]
    );
    assert_eq!(
        sources(&registries, "example.com/foobar/image:latest", false),
        ["example.com/foobar/image"],
        "a prefix ends at a path separator"
    );
    assert_eq!(
        sources(&registries, "example.com/foo:1", false),
        [
            "~example-mirror-0.local/mirror-for-foo",
            "~!example-mirror-1.local/mirrors/foo",
            "internal-registry-for-example.com/bar"
        ],
        "the prefix naming the whole repository matches it"
    );
}

#[test]
fn the_longest_matching_prefix_wins() {
    let registries = parse(
        r#"
        [[registry]]
        location = "registry.lan"
        [[registry.mirror]]
        location = "short.mirror"

        [[registry]]
        prefix = "registry.lan/team"
        location = "registry.lan/team"
        [[registry.mirror]]
        location = "long.mirror/team"

        [[registry]]
        prefix = "registry.lan/team/app:stable"
        location = "other.lan/app-stable"
        "#,
    );
    assert_eq!(
        sources(&registries, "registry.lan/team/app:1", false),
        ["~long.mirror/team/app", "registry.lan/team/app"]
    );
    assert_eq!(
        sources(&registries, "registry.lan/other/app:1", false),
        ["~short.mirror/other/app", "registry.lan/other/app"]
    );
    assert_eq!(
        sources(&registries, "registry.lan/team/app:stable", false),
        ["other.lan/app-stable"],
        "a prefix with a tag matches that tag only"
    );
    assert_eq!(
        sources(&registries, "registry.lan:5000/team/app:1", false),
        ["registry.lan:5000/team/app"],
        "a host prefix does not match the same host on another port"
    );
}

#[test]
fn docker_hub_names_are_matched_after_normalisation() {
    let registries = parse(
        r#"
        [[registry]]
        prefix = "docker.io"
        location = "docker.io"
        [[registry.mirror]]
        location = "mirror.lan:5000"
        [[registry.mirror]]
        location = "docker.io"
        "#,
    );
    assert_eq!(
        sources(&registries, "alpine", false),
        [
            "~mirror.lan:5000/library/alpine",
            "docker.io/library/alpine"
        ],
        "a mirror equal to the primary location is not tried twice"
    );
}

#[test]
fn wildcard_prefixes_match_subdomains_only() {
    let registries = parse(
        r#"
        [[registry]]
        prefix = "*.example.com"
        [[registry.mirror]]
        location = "mirror.lan/example"
        "#,
    );
    assert_eq!(
        sources(&registries, "a.example.com/x/y:1", false),
        ["~mirror.lan/example/x/y", "a.example.com/x/y"]
    );
    assert_eq!(
        sources(&registries, "a.b.example.com:5000/x", false),
        ["~mirror.lan/example/x", "a.b.example.com:5000/x"]
    );
    for other in ["example.com/x", "badexample.com/x", "example.com.evil/x"] {
        assert_eq!(sources(&registries, other, false).len(), 1, "{other}");
    }
    assert!(
        error("[[registry]]\nprefix = \"*.example.com\"\nlocation = \"x.lan\"")
            .contains("wildcard prefix \"*.example.com\" cannot have a location")
    );
}

#[test]
fn digest_only_and_tag_only_mirrors_serve_their_requests_only() {
    let registries = parse(
        r#"
        [[registry]]
        location = "up.lan"
        mirror-by-digest-only = true
        [[registry.mirror]]
        location = "digests.lan"
        pull-from-mirror = "tag-only"

        [[registry]]
        location = "up2.lan"
        [[registry.mirror]]
        location = "digests2.lan"
        pull-from-mirror = "digest-only"
        [[registry.mirror]]
        location = "tags2.lan"
        pull-from-mirror = "tag-only"
        [[registry.mirror]]
        location = "all2.lan"
        "#,
    );
    // mirror-by-digest-only wins over the mirror's own setting.
    assert_eq!(sources(&registries, "up.lan/app:1", false), ["up.lan/app"]);
    assert_eq!(
        sources(&registries, "up.lan/app:1", true),
        ["~digests.lan/app", "up.lan/app"]
    );
    let by_digest = format!("up2.lan/app@{DIGEST}");
    assert_eq!(
        sources(&registries, "up2.lan/app:1", false),
        ["~tags2.lan/app", "~all2.lan/app", "up2.lan/app"],
        "a tag is not resolved by a digest-only mirror"
    );
    assert_eq!(
        sources(&registries, "up2.lan/app:1", true),
        [
            "~digests2.lan/app",
            "~tags2.lan/app",
            "~all2.lan/app",
            "up2.lan/app"
        ],
        "blobs of a tag pull come from every mirror"
    );
    assert_eq!(
        sources(&registries, &by_digest, true),
        ["~digests2.lan/app", "~all2.lan/app", "up2.lan/app"],
        "a digest pull skips tag-only mirrors"
    );
}

#[test]
fn blocked_names_are_refused_with_the_rule() {
    let registries = parse(
        "[[registry]]\nlocation = \"bad.lan\"\nblocked = true\n\
         [[registry]]\nprefix = \"bad.lan/allowed\"\nlocation = \"bad.lan/allowed\"\n",
    );
    let reference: Reference = "bad.lan/app:1".parse().unwrap();
    match registries.sources(&reference, false) {
        Err(Error::Blocked { name, prefix }) => {
            assert_eq!(name, "bad.lan/app:1");
            assert_eq!(prefix, "bad.lan");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sources(&registries, "bad.lan/allowed/app:1", false),
        ["bad.lan/allowed/app"]
    );
}

#[test]
fn version_1_lists_and_other_keys_are_understood() {
    let registries = parse(
        r#"
        [registries.search]
        registries = ["docker.io"]
        [registries.insecure]
        registries = ["plain.lan:5000"]
        [registries.block]
        registries = ["bad.lan"]
        "#,
    );
    assert_eq!(
        sources(&registries, "plain.lan:5000/app", false),
        ["!plain.lan:5000/app"]
    );
    assert!(
        registries
            .sources(&"bad.lan/app".parse().unwrap(), true)
            .is_err()
    );
    // Debian's shipped drop-in: aliases only, no rules.
    let aliases = parse(
        "[aliases]\n  # docker\n  \"alpine\" = \"docker.io/library/alpine\"\n\
         short-name-mode = \"permissive\"\n",
    );
    assert!(aliases.is_empty());
    assert!(parse("# only comments\n").is_empty());
}

#[test]
fn invalid_files_are_refused_naming_the_file_and_the_table() {
    let cases = [
        ("[[registry]]\nprefix = ", "test.conf"),
        (
            "[[registry]]\ninsecure = true\n",
            "[[registry]] #1: has neither prefix nor location",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\n[[registry]]\nlocation = \"b.lan\"\n[[registry.mirror]]\nlocation = \"m.lan\"\npull-from-mirror = \"sometimes\"\n",
            "[[registry]] #2: pull-from-mirror \"sometimes\"",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\n[[registry]]\nprefix = \"a.lan\"\n",
            "prefix \"a.lan\" is defined more than once",
        ),
        (
            "[registries.block]\nregistries = [\"a.lan\"]\n[[registry]]\nlocation = \"b.lan\"\n",
            "mixes the version 1",
        ),
        (
            "[[registry]]\nlocation = \"https://a.lan\"\n",
            "location \"https://a.lan\" is not host[:port]",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"m.lan/Upper\"\n",
            "mirror location \"m.lan/Upper\"",
        ),
        (
            "[[registry]]\nprefix = \"a lan\"\n",
            "prefix \"a lan\" is not",
        ),
        ("[[registry]]\nlocation = 5\n", "test.conf"),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(message.contains("test.conf"), "{message}");
        assert!(message.contains(expected), "{text:?}: {message}");
    }
}

#[test]
fn added_mirrors_come_first_for_their_prefix_or_every_registry() {
    let mut registries = parse(
        "[[registry]]\nlocation = \"up.lan\"\n[[registry.mirror]]\nlocation = \"conf.mirror\"\n",
    );
    registries
        .add_mirror(None, Mirror::new("everywhere.lan:5000").unwrap())
        .unwrap();
    registries
        .add_mirror(
            Some("up.lan/team"),
            Mirror::new("team.mirror/cache").unwrap(),
        )
        .unwrap();
    assert_eq!(
        sources(&registries, "up.lan/team/app:1", false),
        [
            "~everywhere.lan:5000/team/app",
            "~team.mirror/cache/app",
            "~conf.mirror/team/app",
            "up.lan/team/app"
        ]
    );
    assert_eq!(
        sources(&registries, "other.lan/app:1", false),
        ["~everywhere.lan:5000/app", "other.lan/app"]
    );
    assert!(Mirror::new("http://x.lan").is_err());
    assert!(Mirror::new("x.lan/").is_err());
    assert!(
        registries
            .add_mirror(Some("bad prefix"), Mirror::new("x.lan").unwrap())
            .is_err()
    );
}

#[test]
fn the_user_file_replaces_the_system_file_and_drop_ins_replace_by_prefix() {
    let root = tempfile::tempdir().unwrap();
    let system = root.path().join("etc");
    let home = root.path().join("home");
    std::fs::create_dir_all(system.join("registries.conf.d")).unwrap();
    std::fs::write(
        system.join("registries.conf"),
        "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"system.mirror\"\n\
         [[registry]]\nlocation = \"b.lan\"\nblocked = true\n",
    )
    .unwrap();
    std::fs::write(
        system.join("registries.conf.d/10-a.conf"),
        "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"dropin.mirror\"\n",
    )
    .unwrap();
    std::fs::write(
        system.join("registries.conf.d/20-b.conf"),
        "[[registry]]\nlocation = \"b.lan\"\n",
    )
    .unwrap();
    std::fs::write(system.join("registries.conf.d/ignored.txt"), "not toml [").unwrap();

    let loaded = Registries::from_dirs(Some(&home), &system).unwrap();
    assert_eq!(
        sources(&loaded, "a.lan/x", false),
        ["~dropin.mirror/x", "a.lan/x"]
    );
    assert_eq!(
        sources(&loaded, "b.lan/x", false),
        ["b.lan/x"],
        "the later table replaced the blocked one"
    );
    assert_eq!(loaded.files().len(), 3);

    std::fs::create_dir_all(home.join(".config/containers")).unwrap();
    std::fs::write(
        home.join(".config/containers/registries.conf"),
        "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"user.mirror\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(home.join(".config/containers/registries.conf.d")).unwrap();
    let loaded = Registries::from_dirs(Some(&home), &system).unwrap();
    assert_eq!(
        sources(&loaded, "a.lan/x", false),
        ["~user.mirror/x", "a.lan/x"]
    );
    assert_eq!(sources(&loaded, "b.lan/x", false), ["b.lan/x"]);

    std::fs::write(
        home.join(".config/containers/registries.conf.d/bad.conf"),
        "[[registry]]\n",
    )
    .unwrap();
    let message = Registries::from_dirs(Some(&home), &system)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("bad.conf") && message.contains("neither prefix nor location"),
        "{message}"
    );

    let nothing = Registries::from_dirs(None, &root.path().join("missing")).unwrap();
    assert!(nothing.is_empty());
}
