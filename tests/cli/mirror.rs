//! `tank pull` with registry mirrors (issue 8) against real docker-registry processes on
//! loopback: an upstream holding the multi-layer fixture and Distribution pull-through caches
//! (`proxy.remoteurl`) in front of it, configured by a `registries.conf` in the test's
//! directory or by `--mirror` flags (the machine's /etc/containers files never matter).
//! What went where is read from each registry's access log, whose user agent tells tank's
//! requests (`tank/…`) from the mirror's own requests to the upstream.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use tank_testkit::{Kind, Registry, Tree, docker_config_json, fixtures_dir, read_layout_tags};

use crate::{Scratch, fails, layout_layer_digests, requests, snapshot};

const REPOSITORY: &str = "fixtures/multi-layer";

/// One `/v2/` access-log line (marker requests left out).
type Line = tank_testkit::LoggedRequest;

/// Whether tank (not the mirror, not the test) made the request.
fn made_by_tank(line: &Line) -> bool {
    line.user_agent.starts_with("tank/")
}

/// Every `/v2/` access-log line of `registry` (marker requests left out), once its log has
/// caught up.
fn lines(registry: &Registry) -> Vec<Line> {
    requests(registry)
}

/// The lines of `lines` that are `GET path` by tank (`tank`) or by anyone else.
fn gets<'a>(lines: &'a [Line], path: &str, tank: bool) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|line| line.method == "GET" && line.path == path && made_by_tank(line) == tank)
        .collect()
}

fn manifest_path(selector: &str) -> String {
    format!("/v2/{REPOSITORY}/manifests/{selector}")
}

fn blob_path(digest: &str) -> String {
    format!("/v2/{REPOSITORY}/blobs/{digest}")
}

/// The multi-layer fixture as it is pushed: manifest digest, config and layer digests.
struct Fixture {
    manifest: String,
    config: String,
    layers: Vec<String>,
}

fn fixture() -> Fixture {
    let layout = fixtures_dir().join("multi-layer");
    let tags = read_layout_tags(&layout).expect("a readable fixture");
    let manifest = tags
        .iter()
        .find(|tagged| tagged.tag == "latest")
        .expect("a latest tag")
        .digest
        .clone();
    let layers = layout_layer_digests(&layout, "latest");
    assert!(layers.len() >= 2, "the scenario needs several layers");
    let document = crate::read_blob_json(&layout, &manifest);
    let config = document["config"]["digest"]
        .as_str()
        .expect("a config digest")
        .to_owned();
    Fixture {
        manifest,
        config,
        layers,
    }
}

/// An anonymous upstream holding the multi-layer fixture (pushed by skopeo).
fn upstream() -> Registry {
    let registry = Registry::start().expect("docker-registry starts on loopback");
    registry
        .push_fixture("multi-layer")
        .expect("skopeo pushes the fixture");
    registry
}

fn by_tag(host: &str) -> String {
    format!("{host}/{REPOSITORY}:latest")
}

fn by_digest(host: &str, fixture: &Fixture) -> String {
    format!("{host}/{REPOSITORY}@{}", fixture.manifest)
}

/// A pull-through cache of `upstream`, anonymous, keeping its storage in `root`.
fn proxy_of(upstream: &Registry, root: &Path) -> Registry {
    Registry::builder()
        .proxy(upstream.url(), None)
        .root_dir(root)
        .start()
        .expect("docker-registry starts as a pull-through cache")
}

/// Writes `text` as `dir/<name>` and returns its path as a string.
fn write_conf(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).expect("the registries.conf is written");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// A registries.conf making `mirror` the mirror of `upstream`, with `extra` lines in the
/// `[[registry]]` table.
fn mirror_conf(dir: &Path, upstream: &str, mirror: &str, extra: &str) -> String {
    write_conf(
        dir,
        "registries.conf",
        &format!(
            "[[registry]]\nlocation = \"{upstream}\"\n{extra}\n\n\
             [[registry.mirror]]\nlocation = \"{mirror}\"\n"
        ),
    )
}

/// `tank pull --registries-conf <conf> <args…>` into a fresh cache; the rootfs's tree and
/// stderr.
fn pull(conf: &str, args: &[&str]) -> (Tree, String) {
    let scratch = Scratch::new();
    let mut all = vec!["--registries-conf", conf];
    all.extend_from_slice(args);
    let (rootfs, log) = scratch.pull(&all);
    (snapshot(&rootfs), log)
}

fn assert_same(ours: &Tree, expected: &Tree, what: &str) {
    assert!(!expected.entries.is_empty());
    let differences = ours.differences(expected, what, "direct pull");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Asserts that tank fetched the manifest `selector`, the config and every layer from
/// `lines` (a registry's log), each answered 200.
fn assert_served_to_tank(lines: &[Line], fixture: &Fixture, selector: &str, what: &str) {
    let manifest = gets(lines, &manifest_path(selector), true);
    assert!(
        manifest.iter().any(|line| line.status == 200),
        "{what}: no manifest GET by tank answered 200: {lines:#?}"
    );
    for digest in fixture.layers.iter().chain([&fixture.config]) {
        let blob = gets(lines, &blob_path(digest), true);
        assert!(
            blob.iter().any(|line| line.status == 200),
            "{what}: no GET of blob {digest} by tank answered 200: {lines:#?}"
        );
    }
}

/// Waits until the pull-through cache `mirror` has stored every blob of the image in its
/// own storage (Distribution 2.8 stores a proxied blob in the background, after serving it).
fn wait_until_stored(mirror: &Registry, fixture: &Fixture) {
    let links: Vec<PathBuf> = fixture
        .layers
        .iter()
        .chain([&fixture.config])
        .map(|digest| {
            let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
            mirror
                .storage_dir()
                .join("docker/registry/v2/repositories")
                .join(REPOSITORY)
                .join("_layers/sha256")
                .join(hex)
                .join("link")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !links.iter().all(|link| link.exists()) {
        assert!(
            Instant::now() < deadline,
            "the mirror never stored every blob: {}",
            mirror.log_tail()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The tree of a direct pull of `reference` (no mirror).
fn direct_tree(work: &Path, reference: &str) -> Tree {
    let empty = write_conf(work, "empty.conf", "");
    pull(&empty, &[reference]).0
}

#[test]
fn pulls_through_a_mirror_fall_back_without_it_and_use_its_storage_without_the_upstream() {
    let work = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let upstream = upstream();
    let reference = by_tag(&upstream.host());
    let expected = direct_tree(work.path(), &reference);
    let mirror_root = work.path().join("mirror");
    let mirror = proxy_of(&upstream, &mirror_root);
    let conf = mirror_conf(work.path(), &upstream.host(), &mirror.host(), "");
    let upstream_before = lines(&upstream).len();

    // (a) Through the mirror: tank asks the mirror only; the mirror fetches from upstream.
    let (tree, _) = pull(&conf, &[&reference]);
    assert_same(&tree, &expected, "pull through the mirror");
    let at_mirror = lines(&mirror);
    assert_served_to_tank(&at_mirror, &fixture, "latest", "mirror");
    let at_upstream = lines(&upstream).split_off(upstream_before);
    let by_tank: Vec<&Line> = at_upstream
        .iter()
        .filter(|line| made_by_tank(line))
        .collect();
    assert!(
        by_tank.is_empty(),
        "tank went to the upstream: {by_tank:#?}"
    );
    // Distribution 2.8 fetches a blob it does not hold twice: once to store it (in the
    // background) and once to stream it to the client; at least once is what matters.
    let mut fetched_by_mirror = Vec::new();
    for digest in fixture.layers.iter().chain([&fixture.config]) {
        let count = gets(&at_upstream, &blob_path(digest), false).len();
        assert!(
            count >= 1,
            "the mirror never fetched {digest}: {at_upstream:#?}"
        );
        fetched_by_mirror.push(count);
    }
    eprintln!(
        "mirror: {} requests by tank; upstream: {} requests by the mirror, blob GETs per \
         blob (layers, config): {fetched_by_mirror:?}",
        at_mirror.iter().filter(|line| made_by_tank(line)).count(),
        at_upstream.len()
    );
    wait_until_stored(&mirror, &fixture);

    // (b) The mirror stops: the pull falls back to the upstream and says why.
    let mirror_host = mirror.host();
    drop(mirror);
    let upstream_before = lines(&upstream).len();
    let (tree, log) = pull(&conf, &[&reference]);
    assert_same(&tree, &expected, "pull with the mirror down");
    assert!(
        log.contains(&format!("mirror {mirror_host}/{REPOSITORY} failed")),
        "{log}"
    );
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert_served_to_tank(
        &at_upstream,
        &fixture,
        "latest",
        "upstream after the mirror",
    );

    // (c) The mirror restarts on its warm storage and the upstream stops: the mirror serves
    // the image by tag and by digest. By tag works because Distribution 2.8's proxy, when its
    // remote cannot be reached, answers a tag from the local tag store it filled in (a); with
    // the upstream down tank has nowhere else to go, so the pulls succeeding prove it.
    let mirror = proxy_of(&upstream, &mirror_root);
    let upstream_host = upstream.host();
    let conf = mirror_conf(work.path(), &upstream_host, &mirror.host(), "");
    drop(upstream);
    let (tree, _) = pull(&conf, &[&reference]);
    assert_same(&tree, &expected, "pull by tag with the upstream down");
    let (tree, _) = pull(&conf, &[&by_digest(&upstream_host, &fixture)]);
    assert_same(&tree, &expected, "pull by digest with the upstream down");
    let at_mirror = lines(&mirror);
    assert_served_to_tank(&at_mirror, &fixture, "latest", "restarted mirror, by tag");
    assert_served_to_tank(
        &at_mirror,
        &fixture,
        &fixture.manifest,
        "restarted mirror, by digest",
    );
}

#[test]
fn mirror_flags_act_like_the_file_and_a_prefix_limits_them() {
    let work = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let upstream = upstream();
    let reference = by_tag(&upstream.host());
    let expected = direct_tree(work.path(), &reference);
    let mirror = proxy_of(&upstream, &work.path().join("mirror"));
    let empty = write_conf(work.path(), "empty.conf", "");
    let upstream_before = lines(&upstream).len();

    // --mirror HOST: every registry.
    let (tree, _) = pull(&empty, &["--mirror", &mirror.host(), &reference]);
    assert_same(&tree, &expected, "--mirror HOST");
    assert_served_to_tank(&lines(&mirror), &fixture, "latest", "--mirror HOST");
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert!(
        at_upstream.iter().all(|line| !made_by_tank(line)),
        "tank went to the upstream: {at_upstream:#?}"
    );

    // --mirror PREFIX=HOST: only names under PREFIX.
    let other = Registry::start().expect("docker-registry starts on loopback");
    other
        .push_fixture("single")
        .expect("skopeo pushes the fixture");
    let flag = format!("{}={}", upstream.host(), mirror.host());
    let mirror_before = lines(&mirror).len();
    let other_reference = format!("{}/fixtures/single:latest", other.host());
    pull(&empty, &["--mirror", &flag, &other_reference]);
    let at_mirror = lines(&mirror);
    assert_eq!(
        at_mirror.len(),
        mirror_before,
        "a pull from another registry reached the mirror: {:#?}",
        &at_mirror[mirror_before..]
    );
    assert!(
        lines(&other)
            .iter()
            .any(|line| made_by_tank(line) && line.path == "/v2/fixtures/single/manifests/latest"),
        "the other registry served nothing"
    );
    let (tree, _) = pull(&empty, &["--mirror", &flag, &reference]);
    assert_same(&tree, &expected, "--mirror PREFIX=HOST");
    let at_mirror = lines(&mirror).split_off(mirror_before);
    assert_served_to_tank(&at_mirror, &fixture, "latest", "--mirror PREFIX=HOST");
}

#[test]
fn a_digest_only_mirror_never_resolves_a_tag() {
    let work = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let upstream = upstream();
    let reference = by_tag(&upstream.host());
    let expected = direct_tree(work.path(), &reference);
    let mirror = proxy_of(&upstream, &work.path().join("mirror"));
    let conf = mirror_conf(
        work.path(),
        &upstream.host(),
        &mirror.host(),
        "mirror-by-digest-only = true",
    );

    // By tag: the tag is resolved at the upstream, the blobs come from the mirror.
    let upstream_before = lines(&upstream).len();
    let (tree, _) = pull(&conf, &[&reference]);
    assert_same(&tree, &expected, "digest-only mirror, by tag");
    let at_mirror = lines(&mirror);
    assert!(
        at_mirror
            .iter()
            .all(|line| !line.path.contains("/manifests/")),
        "the digest-only mirror was asked for a manifest: {at_mirror:#?}"
    );
    for digest in fixture.layers.iter().chain([&fixture.config]) {
        assert!(
            gets(&at_mirror, &blob_path(digest), true)
                .iter()
                .any(|line| line.status == 200),
            "blob {digest} not fetched from the mirror: {at_mirror:#?}"
        );
    }
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert!(
        gets(&at_upstream, &manifest_path("latest"), true)
            .iter()
            .any(|line| line.status == 200),
        "the tag was not resolved at the upstream: {at_upstream:#?}"
    );
    for digest in &fixture.layers {
        assert!(
            gets(&at_upstream, &blob_path(digest), true).is_empty(),
            "tank fetched layer {digest} from the upstream: {at_upstream:#?}"
        );
    }

    // By digest: the manifest comes from the mirror too.
    let mirror_before = at_mirror.len();
    let upstream_before = lines(&upstream).len();
    let (tree, _) = pull(&conf, &[&by_digest(&upstream.host(), &fixture)]);
    assert_same(&tree, &expected, "digest-only mirror, by digest");
    let at_mirror = lines(&mirror).split_off(mirror_before);
    assert_served_to_tank(&at_mirror, &fixture, &fixture.manifest, "by digest");
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert!(
        at_upstream.iter().all(|line| !made_by_tank(line)),
        "tank went to the upstream: {at_upstream:#?}"
    );
}

#[test]
fn credentials_are_sent_to_their_own_host_only() {
    // Distribution 2.8's pull-through cache authenticates to its remote with bearer tokens
    // only (its proxy authorizer has no basic handler): in front of an htpasswd upstream it
    // answers 500 "unauthorized" for every blob. The authenticated mirror here is therefore
    // a plain registry holding a copy of the image, as a mirror filled by `skopeo sync` is.
    let work = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let (upstream_user, upstream_password) = ("upstream-user", "upstream-secret");
    let (mirror_user, mirror_password) = ("mirror-user", "mirror-secret");
    let upstream = Registry::builder()
        .htpasswd(upstream_user, upstream_password)
        .start()
        .expect("docker-registry starts on loopback");
    upstream
        .push_fixture("multi-layer")
        .expect("skopeo pushes the fixture");
    let mirror = Registry::builder()
        .htpasswd(mirror_user, mirror_password)
        .start()
        .expect("docker-registry starts on loopback");
    mirror
        .push_fixture("multi-layer")
        .expect("skopeo pushes the fixture");
    let conf = mirror_conf(work.path(), &upstream.host(), &mirror.host(), "");
    let reference = by_tag(&upstream.host());
    let config = |hosts: &[(&str, &str, &str)]| {
        let mut auths = serde_json::Map::new();
        for (host, user, password) in hosts {
            let document = docker_config_json(host, user, password);
            auths.extend(document["auths"].as_object().unwrap().clone());
        }
        serde_json::json!({ "auths": auths })
    };
    let pull_with = |document: serde_json::Value| {
        let scratch = Scratch::new();
        let docker = scratch.home().join(".docker");
        fs::create_dir_all(&docker).unwrap();
        fs::write(docker.join("config.json"), document.to_string()).unwrap();
        let (rootfs, log) = scratch.pull(&["--registries-conf", &conf, &reference]);
        (snapshot(&rootfs), log)
    };
    let both = config(&[
        (&upstream.host(), upstream_user, upstream_password),
        (&mirror.host(), mirror_user, mirror_password),
    ]);
    // A registry logs the user of wrong credentials (`error authenticating user "…"`) and
    // not the user of good ones; an authorized request is answered 200, one without
    // credentials 401.
    let log_of = |registry: &Registry| {
        requests(registry);
        fs::read_to_string(registry.log_path()).unwrap()
    };

    // Only the upstream's credentials: tank sends the mirror none (401, and the mirror's log
    // never names the upstream's user) and falls back to the upstream, which serves it.
    let (expected, _) = pull_with(config(&[(
        &upstream.host(),
        upstream_user,
        upstream_password,
    )]));
    let at_mirror = lines(&mirror);
    let by_tank: Vec<&Line> = at_mirror.iter().filter(|line| made_by_tank(line)).collect();
    assert!(
        !by_tank.is_empty() && by_tank.iter().all(|line| line.status == 401),
        "the mirror should have refused tank: {by_tank:#?}"
    );
    assert_served_to_tank(&lines(&upstream), &fixture, "latest", "upstream fallback");
    let mirror_log = log_of(&mirror);
    assert!(
        !mirror_log.contains(upstream_user),
        "the upstream's user reached the mirror: {mirror_log}"
    );

    // Both hosts' credentials: the mirror serves tank (200, so tank sent the mirror's user);
    // tank sends nothing to the upstream.
    let mirror_before = lines(&mirror).len();
    let upstream_before = lines(&upstream).len();
    let (tree, _) = pull_with(both.clone());
    assert_same(&tree, &expected, "pull through an authenticated mirror");
    let at_mirror = lines(&mirror).split_off(mirror_before);
    assert_served_to_tank(&at_mirror, &fixture, "latest", "authenticated mirror");
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert!(
        at_upstream.iter().all(|line| !made_by_tank(line)),
        "tank went to the upstream: {at_upstream:#?}"
    );
    let mirror_log = log_of(&mirror);
    assert!(!mirror_log.contains(upstream_user), "{mirror_log}");

    // The upstream's credentials stored under the mirror's host: the mirror refuses them and
    // its log names the user, so the absence checked above is meaningful; tank falls back.
    let (tree, _) = pull_with(config(&[
        (&upstream.host(), upstream_user, upstream_password),
        (&mirror.host(), upstream_user, upstream_password),
    ]));
    assert_same(
        &tree,
        &expected,
        "pull past a mirror refusing the credentials",
    );
    let mirror_log = log_of(&mirror);
    assert!(
        mirror_log
            .lines()
            .any(|line| line.contains("error authenticating user") && line.contains(upstream_user)),
        "{mirror_log}"
    );

    // Both again with the mirror down: the upstream serves tank (200, the upstream's user),
    // and its log never names the mirror's user.
    let mirror_host = mirror.host();
    drop(mirror);
    let upstream_before = lines(&upstream).len();
    let (tree, log) = pull_with(both);
    assert_same(&tree, &expected, "authenticated upstream after the mirror");
    assert!(log.contains(&format!("mirror {mirror_host}/")), "{log}");
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert_served_to_tank(&at_upstream, &fixture, "latest", "authenticated upstream");
    let upstream_log = log_of(&upstream);
    assert!(!upstream_log.contains(mirror_user), "{upstream_log}");
}

#[test]
fn a_blocked_prefix_fails_before_any_request() {
    let work = tempfile::tempdir().unwrap();
    let upstream = upstream();
    let prefix = format!("{}/fixtures", upstream.host());
    let conf = write_conf(
        work.path(),
        "registries.conf",
        &format!("[[registry]]\nprefix = \"{prefix}\"\nlocation = \"{prefix}\"\nblocked = true\n"),
    );
    let reference = by_tag(&upstream.host());
    let before = lines(&upstream).len();
    let scratch = Scratch::new();
    let line = fails(
        scratch.tank("pull", &["--registries-conf", &conf, &reference]),
        &[&reference, &prefix, "blocked"],
    );
    let after = lines(&upstream).split_off(before);
    assert!(
        after.is_empty(),
        "{line}: the upstream was asked: {after:#?}"
    );
    let blobs = scratch.cache().join("blobs");
    let files: Vec<String> = Tree::snapshot(&blobs)
        .expect("the cache's blob directory")
        .entries
        .into_iter()
        .filter(|(_, entry)| entry.kind != Kind::Dir)
        .map(|(path, _)| path)
        .collect();
    assert!(files.is_empty(), "downloaded into {blobs:?}: {files:?}");
}

#[test]
fn a_broken_registries_conf_fails_online_pulls_only() {
    let work = tempfile::tempdir().unwrap();
    let upstream = upstream();
    let reference = by_tag(&upstream.host());
    let empty = write_conf(work.path(), "empty.conf", "");
    let broken = write_conf(
        work.path(),
        "broken.conf",
        &format!(
            "[[registry]]\nlocation = \"{}\"\n\n[[registry.mirror]]\nlocation = \"{}\"\n\
             pull-from-mirror = \"sometimes\"\n",
            upstream.host(),
            upstream.host()
        ),
    );
    let scratch = Scratch::new();
    let (cached, _) = scratch.pull(&["--registries-conf", &empty, &reference]);
    let before = lines(&upstream).len();
    fails(
        scratch.tank("pull", &["--registries-conf", &broken, &reference]),
        &[&broken, "sometimes"],
    );
    let (offline, _) = scratch.pull(&["--registries-conf", &broken, "--offline", &reference]);
    assert_eq!(offline, cached);
    let after = lines(&upstream).split_off(before);
    assert!(after.is_empty(), "the upstream was asked: {after:#?}");
}

#[test]
fn an_empty_mirror_is_asked_first_then_the_upstream_serves() {
    let work = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let upstream = upstream();
    let reference = by_tag(&upstream.host());
    let expected = direct_tree(work.path(), &reference);
    let empty_mirror = Registry::start().expect("docker-registry starts on loopback");
    let conf = mirror_conf(work.path(), &upstream.host(), &empty_mirror.host(), "");
    let upstream_before = lines(&upstream).len();
    let (tree, log) = pull(&conf, &[&reference]);
    assert_same(&tree, &expected, "pull past an empty mirror");
    let at_mirror = lines(&empty_mirror);
    let asked = gets(&at_mirror, &manifest_path("latest"), true);
    assert!(
        !asked.is_empty() && asked.iter().all(|line| line.status == 404),
        "the empty mirror was not asked for the manifest: {at_mirror:#?}"
    );
    for digest in &fixture.layers {
        let asked = gets(&at_mirror, &blob_path(digest), true);
        assert!(
            !asked.is_empty() && asked.iter().all(|line| line.status == 404),
            "the empty mirror was not asked for {digest}: {at_mirror:#?}"
        );
    }
    let at_upstream = lines(&upstream).split_off(upstream_before);
    assert_served_to_tank(
        &at_upstream,
        &fixture,
        "latest",
        "upstream past an empty mirror",
    );
    assert!(
        !log.contains("WARN"),
        "a missing image is no warning: {log}"
    );
}
