//! End-to-end tests of the `tank` binary against a real registry.

mod cache;
mod crash;
mod hostile;
mod inspect;
mod load;
mod mirror;
mod pull;
mod push;
mod run_spec;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tank_testkit::{ImageBuilder, Kind, OciLayoutBuilder, Registry, Tree};

/// A `tank` command that sees no credentials of the machine it runs on.
fn tank(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tank"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("DOCKER_CONFIG", home.join(".docker"));
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("tank runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "tank failed: {}\nstdout: {}",
        stderr(&output),
        stdout(&output)
    );
    stdout(&output)
}

/// Asserts failure (exit status 1) with exactly one error line on stderr, naming every
/// `needle`, after nothing but log lines (`INFO pulling …`); returns the error line.
fn fails(output: Output, needles: &[&str]) -> String {
    assert!(
        !output.status.success(),
        "tank succeeded: {}",
        stdout(&output)
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().filter(|line| !line.trim().is_empty()).collect();
    let (last, logs) = lines.split_last().expect("an error line on stderr");
    assert!(last.starts_with("tank: error: "), "{err}");
    for log in logs {
        let log = log.trim_start();
        assert!(
            log.starts_with("INFO ") || log.starts_with("WARN "),
            "expected one error line after log lines, got: {err}"
        );
    }
    for needle in needles {
        assert!(last.contains(needle), "{needle:?} not in: {err}");
    }
    assert!(
        output.stdout.is_empty(),
        "stdout on error: {}",
        stdout(&output)
    );
    (*last).to_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("tank prints valid JSON")
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// A registry holding the checked-in fixtures `fixtures` (as `fixtures/<name>:<tag>`),
/// pushed by skopeo: for the interop tests, where what tank reads must come from another tool.
fn registry_with(fixtures: &[&str]) -> Registry {
    let registry = Registry::start().expect("docker-registry starts on loopback");
    for fixture in fixtures {
        registry
            .push_fixture(fixture)
            .expect("skopeo pushes the fixture");
    }
    registry
}

/// A registry holding the checked-in fixtures `fixtures` (as `fixtures/<name>:<tag>`),
/// pushed by `tank copy oci:fixtures/<name>:<tag> …`: for tests that only need the images
/// there.
fn registry_seeded(fixtures: &[&str]) -> Registry {
    let registry = Registry::start().expect("docker-registry starts on loopback");
    let home = tempfile::tempdir().expect("a temporary directory");
    for fixture in fixtures {
        let layout = tank_testkit::fixtures_dir().join(fixture);
        for tagged in tank_testkit::read_layout_tags(&layout).expect("a readable fixture") {
            ok(run(tank(home.path()).args([
                "copy",
                &format!("oci:{}:{}", layout.display(), tagged.tag),
                &format!("{}/fixtures/{fixture}:{}", registry.host(), tagged.tag),
            ])));
        }
    }
    registry
}

/// A scratch home (no credentials) with a cache directory inside.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `tank <subcommand> --cache <cache> <args…>`.
    fn tank(&self, subcommand: &str, args: &[&str]) -> Output {
        run(tank(self.home())
            .arg(subcommand)
            .arg("--cache")
            .arg(self.cache())
            .args(args))
    }

    /// `tank pull` that must succeed; returns the rootfs path (the last stdout line) and
    /// what was logged on stderr.
    fn pull(&self, args: &[&str]) -> (PathBuf, String) {
        let output = self.tank("pull", args);
        let log = stderr(&output);
        let out = ok(output);
        let last = out.lines().last().expect("pull prints the rootfs path");
        (PathBuf::from(last), log)
    }
}

/// Writes `image` as tag `latest` of a fresh OCI layout in `dir` and pushes it to
/// `<registry>/<destination>` with `tank push`; returns the reference.
fn push_image(registry: &Registry, dir: &Path, image: ImageBuilder, destination: &str) -> String {
    OciLayoutBuilder::new()
        .image("latest", image)
        .write(dir)
        .expect("the layout is written");
    let reference = format!("{}/{destination}", registry.host());
    let home = tempfile::tempdir().expect("a temporary directory");
    ok(run(tank(home.path()).args([
        "push",
        &format!("{}:latest", dir.display()),
        &reference,
    ])));
    reference
}

/// The tree below `root`, with directory mtimes left out.
///
/// A layer that adds a file to a directory it does not list (the multi-layer fixture's upper
/// layers do) changes that directory's mtime to the time of the pull: tank, like containerd
/// and Docker, sets the mtimes of the directories a layer lists and no others (umoci puts the
/// old mtime back). The mtimes of files, links and listed directories are compared with
/// umoci's by tank-layer's tests.
fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::snapshot(root).expect("the tree is readable");
    for entry in tree.entries.values_mut() {
        if entry.kind == Kind::Dir {
            entry.mtime = 0;
        }
    }
    tree
}

/// Asserts `ours` (a tank rootfs) equals `theirs` (umoci's), listing every difference.
fn assert_same_tree(ours: &Path, theirs: &Path, what: &str) {
    let (ours, mut theirs) = (snapshot(ours), snapshot(theirs));
    // umoci --rootless records the image's owners of files it cannot chown in this xattr;
    // tank, unprivileged by design, leaves files to the running user and records nothing.
    for entry in theirs.entries.values_mut() {
        entry.xattrs.remove("user.rootlesscontainers");
    }
    assert!(!theirs.entries.is_empty(), "{what}: umoci unpacked nothing");
    let differences = ours.differences(&theirs, "tank", "umoci");
    assert!(
        differences.is_empty(),
        "{what}: tank's rootfs differs from umoci's:\n{}",
        differences.join("\n")
    );
}

/// The layer digests of the image manifest tagged `tag` in the OCI layout `layout`.
fn layout_layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    let tags = tank_testkit::read_layout_tags(layout).expect("a readable layout");
    let tagged = tags
        .iter()
        .find(|tagged| tagged.tag == tag)
        .expect("the tag is in the layout");
    let manifest = read_blob_json(layout, &tagged.digest);
    manifest["layers"]
        .as_array()
        .expect("an image manifest")
        .iter()
        .map(|layer| layer["digest"].as_str().expect("digest").to_owned())
        .collect()
}

/// A JSON blob of an OCI layout.
fn read_blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    let path = layout.join("blobs").join(algorithm).join(hex);
    serde_json::from_slice(&fs::read(path).expect("the blob is in the layout")).expect("JSON")
}

/// One request in the registry's access log.
type Request = tank_testkit::LoggedRequest;

/// Every request the registry has logged, after its log caught up ([`Registry::requests`]).
fn requests(registry: &Registry) -> Vec<Request> {
    registry.requests().expect("the registry's access log")
}

/// How many `GET /v2/<repository>/blobs/<digest>` requests `requests` holds.
fn blob_gets(requests: &[Request], repository: &str, digest: &str) -> usize {
    let path = format!("/v2/{repository}/blobs/{digest}");
    requests
        .iter()
        .filter(|request| request.method == "GET" && request.path == path)
        .count()
}

/// Makes everything below `path` writable by its owner (a rootfs may hold read-only
/// directories), so it can be changed or removed.
fn make_writable(path: &Path) {
    let status = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(path)
        .status()
        .expect("chmod runs");
    assert!(status.success());
}

/// Flips one byte in the middle of `path`, keeping its size.
fn flip_byte(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut permissions = fs::metadata(path).expect("the file exists").permissions();
    permissions.set_mode(permissions.mode() | 0o200);
    fs::set_permissions(path, permissions).expect("chmod u+w");
    let mut bytes = fs::read(path).expect("readable");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(path, bytes).expect("writable");
}

#[test]
fn access_log_lines_are_parsed() {
    let log = "time=\"x\" level=info msg=\"response completed\" http.request.uri=/v2/a/blobs/x\n\
               127.0.0.1 - - [30/Nov/2026:22:29:35 +0000] \"GET /v2/t/ml/blobs/sha256:ab HTTP/1.1\" 200 10 \"\" \"tank\"\n\
               127.0.0.1 - - [30/Nov/2026:22:29:35 +0000] \"HEAD /v2/ HTTP/1.1\" 200 0 \"\" \"tank\"\n";
    let requests = tank_testkit::parse_access_log(log);
    assert_eq!(
        requests,
        vec![
            Request {
                method: "GET".into(),
                path: "/v2/t/ml/blobs/sha256:ab".into(),
                status: 200,
                bytes: 10,
                user_agent: "tank".into(),
            },
            Request {
                method: "HEAD".into(),
                path: "/v2/".into(),
                status: 200,
                bytes: 0,
                user_agent: "tank".into(),
            },
        ]
    );
    assert_eq!(blob_gets(&requests, "t/ml", "sha256:ab"), 1);
    assert_eq!(blob_gets(&requests, "t/ml", "sha256:cd"), 0);
}
