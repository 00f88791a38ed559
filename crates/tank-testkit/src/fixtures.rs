//! The checked-in test images under `fixtures/`: their definitions, the generator behind
//! `cargo xtask fixtures`, and the staleness check behind `cargo xtask fixtures --check`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::oci::{ImageBuilder, IndexBuilder, MediaTypes, OciLayoutBuilder, Platform};
use crate::tarball::{Compression, EntryKind, LongNames, TarBuilder, TarEntry};

/// The fixtures, each an OCI layout directory under [`fixtures_dir`].
pub const FIXTURE_NAMES: &[&str] = &["single", "multi-layer", "multi-platform", "docker-v2"];

/// The folder of [`fixtures_dir`] that holds the layer-rule fixtures.
pub const LAYER_FIXTURES_DIR: &str = "layers";

/// The layer-rule fixtures, one small OCI layout (tag `latest`) per layer rule, under
/// `fixtures/layers/<name>/`, in [`layer_fixture_layouts`] order.
pub const LAYER_FIXTURE_NAMES: &[&str] = &[
    "files",
    "symlinks",
    "hardlinks",
    "long-names",
    "non-utf8",
    "sparse",
    "modes",
    "mtimes",
    "xattrs",
    "whiteout-file",
    "whiteout-tree",
    "opaque-before",
    "opaque-after",
    "replace-file-over-dir",
    "replace-dir-over-file",
    "replace-dir-over-symlink",
    "duplicate",
    "readonly-dir",
    "devices",
    "uncompressed",
    "zstd",
];

/// The command that regenerates the fixtures.
const REGENERATE: &str = "cargo xtask fixtures";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The workspace's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("tank-testkit sits at crates/tank-testkit in the workspace")
        .join("fixtures")
}

/// Every fixture's layout definition, by name, in [`FIXTURE_NAMES`] order.
pub fn fixture_layouts() -> Vec<(&'static str, OciLayoutBuilder)> {
    vec![
        ("single", single()),
        ("multi-layer", multi_layer()),
        ("multi-platform", multi_platform()),
        ("docker-v2", docker_v2()),
    ]
}

/// A small root filesystem with a user, a script and a symlink.
fn single() -> OciLayoutBuilder {
    let layer = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/motd", "Welcome to the tank single fixture.\n", 0o644)
        .file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ntank:x:1000:1000:tank:/home/tank:/bin/sh\n",
            0o644,
        )
        .file("etc/group", "root:x:0:\ntank:x:1000:\n", 0o644)
        .dir("home", 0o755)
        .entry(TarEntry::dir("home/tank/").mode(0o750).owner(1000, 1000))
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file(
            "usr/bin/hello",
            "#!/bin/sh\necho \"$GREETING from tank\"\n",
            0o755,
        )
        .symlink("usr/bin/hi", "hello");
    let image = ImageBuilder::new(Platform::new("linux", "amd64"))
        .layer(&layer)
        .entrypoint(&["/usr/bin/hello"])
        .cmd(&["--verbose"])
        .env(PATH_ENV)
        .env("GREETING=hello")
        .user("tank")
        .working_dir("/home/tank")
        .label("org.opencontainers.image.title", "tank single fixture")
        .history("ADD rootfs /", false);
    OciLayoutBuilder::new().image("latest", image)
}

/// Three layers: a base, one with a whiteout and an opaque directory (whose marker comes after
/// a file the same layer adds), and one replacing a file and adding links.
fn multi_layer() -> OciLayoutBuilder {
    let base = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/os-release", "ID=tankfixture\nVERSION_ID=1\n", 0o644)
        .file("etc/removed-later", "deleted by layer 2\n", 0o644)
        .dir("data", 0o755)
        .file("data/keep", "kept from layer 1\n", 0o644)
        .dir("cache", 0o755)
        .file(
            "cache/old-1",
            "hidden by the opaque marker in layer 2\n",
            0o644,
        )
        .dir("cache/sub", 0o755)
        .file(
            "cache/sub/old-2",
            "hidden by the opaque marker in layer 2\n",
            0o644,
        );
    let changes = TarBuilder::new()
        .whiteout("etc/removed-later")
        .dir("cache", 0o755)
        .file("cache/new-1", "added by layer 2\n", 0o644)
        .opaque("cache")
        .file("data/replaced", "version 2\n", 0o644);
    let top = TarBuilder::new()
        .file("data/replaced", "version 3\n", 0o644)
        .hardlink("data/keep-link", "data/keep")
        .symlink("etc/os-release-link", "os-release")
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/tool", "#!/bin/sh\necho tool\n", 0o4755);
    let image = ImageBuilder::new(Platform::new("linux", "amd64"))
        .layer(&base)
        .layer(&changes)
        .layer(&top)
        .cmd(&["/bin/sh"])
        .env(PATH_ENV)
        .history("ADD base /", false)
        .history("ENV STAGE=changes", true)
        .history("RUN rm /etc/removed-later && rm -r /cache/*", false)
        .history("ADD top /", false);
    OciLayoutBuilder::new().image("latest", image)
}

fn platform_image(platform: Platform, arch_name: &str) -> ImageBuilder {
    let layer = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/arch", format!("{arch_name}\n"), 0o644)
        .file(
            "etc/motd",
            format!("tank multi-platform fixture, {arch_name}\n"),
            0o644,
        );
    ImageBuilder::new(platform)
        .layer(&layer)
        .cmd(&["/bin/cat", "/etc/arch"])
        .env(PATH_ENV)
        .env(format!("FIXTURE_ARCH={arch_name}"))
}

/// An OCI index of linux/amd64 and linux/arm64/v8 images with different content.
fn multi_platform() -> OciLayoutBuilder {
    let index = IndexBuilder::new()
        .image(platform_image(Platform::new("linux", "amd64"), "amd64"))
        .image(platform_image(
            Platform::new("linux", "arm64").with_variant("v8"),
            "arm64",
        ));
    OciLayoutBuilder::new().index("latest", index)
}

/// Docker media types: `latest` is a v2 schema 2 manifest, `list` a manifest list of
/// linux/amd64 and linux/arm/v7.
fn docker_v2() -> OciLayoutBuilder {
    let single = ImageBuilder::new(Platform::new("linux", "amd64"))
        .media_types(MediaTypes::Docker)
        .layer(&TarBuilder::new().dir("etc", 0o755).file(
            "etc/motd",
            "tank docker-v2 fixture\n",
            0o644,
        ))
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["cat /etc/motd"])
        .env(PATH_ENV);
    let list = IndexBuilder::new()
        .media_types(MediaTypes::Docker)
        .image(
            platform_image(Platform::new("linux", "amd64"), "amd64")
                .media_types(MediaTypes::Docker),
        )
        .image(
            platform_image(Platform::new("linux", "arm").with_variant("v7"), "armv7")
                .media_types(MediaTypes::Docker),
        );
    OciLayoutBuilder::new()
        .image("latest", single)
        .index("list", list)
}

/// Every layer-rule fixture's layout definition, by name, in [`LAYER_FIXTURE_NAMES`] order.
///
/// Each is tagged `latest`; `zstd` also has the tag `gzip`, the same layers gzip-compressed,
/// for tools that cannot read zstd. Parent directories are always listed before their
/// contents, and a later layer lists the directories it changes, as image builders do.
pub fn layer_fixture_layouts() -> Vec<(&'static str, OciLayoutBuilder)> {
    vec![
        ("files", rule_image(&[layer_files()])),
        ("symlinks", rule_image(&[layer_symlinks()])),
        ("hardlinks", rule_image(&layers_hardlinks())),
        ("long-names", rule_image(&[layer_long_names()])),
        ("non-utf8", rule_image(&layers_non_utf8())),
        ("sparse", rule_image(&[layer_sparse()])),
        ("modes", rule_image(&[layer_modes()])),
        ("mtimes", rule_image(&layers_mtimes())),
        ("xattrs", rule_image(&[layer_xattrs()])),
        ("whiteout-file", rule_image(&layers_whiteout_file())),
        ("whiteout-tree", rule_image(&layers_whiteout_tree())),
        ("opaque-before", rule_image(&layers_opaque(true))),
        ("opaque-after", rule_image(&layers_opaque(false))),
        ("replace-file-over-dir", rule_image(&layers_file_over_dir())),
        ("replace-dir-over-file", rule_image(&layers_dir_over_file())),
        (
            "replace-dir-over-symlink",
            rule_image(&layers_dir_over_symlink()),
        ),
        ("duplicate", rule_image(&[layer_duplicate()])),
        ("readonly-dir", rule_image(&layers_readonly_dir())),
        ("devices", rule_image(&[layer_devices()])),
        ("uncompressed", uncompressed()),
        ("zstd", zstd()),
    ]
}

/// An image of gzip `layers`, tagged `latest`.
fn rule_image(layers: &[TarBuilder]) -> OciLayoutBuilder {
    OciLayoutBuilder::new().image("latest", compressed_image(layers, Compression::Gzip))
}

fn compressed_image(layers: &[TarBuilder], compression: Compression) -> ImageBuilder {
    layers.iter().fold(
        ImageBuilder::new(Platform::new("linux", "amd64")).cmd(&["/bin/sh"]),
        |image, layer| image.layer_tar(layer.build(), compression),
    )
}

fn layer_files() -> TarBuilder {
    let blocks: Vec<u8> = (0..1500_u32).map(|i| (i % 251) as u8).collect();
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/hello", "hello\n", 0o644)
        .file("etc/empty", "", 0o644)
        .file("etc/blocks", blocks, 0o644)
        .dir("usr", 0o755)
        .dir("usr/share", 0o755)
        .file("usr/share/doc", "documentation\n", 0o644)
}

fn layer_symlinks() -> TarBuilder {
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/target", "target\n", 0o644)
        .dir("lib", 0o755)
        .symlink("etc/relative", "target")
        .symlink("etc/absolute", "/etc/target")
        .symlink("etc/dangling", "../missing/nowhere")
        .symlink("etc/to-dir", "/lib")
        .symlink("etc/climbing", "../../../../etc/target")
        .symlink("etc/long", format!("/{}", "long/".repeat(30)))
        .symlink("lib/self", "self")
}

fn layers_hardlinks() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("data", 0o755)
        .file("data/lower", "from layer 1\n", 0o640)
        .file("data/other", "not linked\n", 0o644);
    let upper = TarBuilder::new()
        .dir("data", 0o755)
        .hardlink("data/to-lower", "data/lower")
        .hardlink("data/absolute", "/data/lower")
        .file("data/new", "from layer 2\n", 0o600)
        .hardlink("data/to-new", "data/new")
        .hardlink("data/chain", "data/to-new");
    vec![lower, upper]
}

fn layer_long_names() -> TarBuilder {
    let pax_dir = "p".repeat(60);
    let gnu_dir = "g".repeat(60);
    let pax_file = format!("{pax_dir}/{}", "f".repeat(80));
    let gnu_file = format!("{gnu_dir}/{}", "h".repeat(80));
    let long_target = format!("/{}", "t".repeat(150));
    TarBuilder::new()
        .dir(pax_dir.clone(), 0o755)
        .file(pax_file.clone(), "pax long name\n", 0o644)
        .hardlink(format!("{pax_dir}/{}", "l".repeat(80)), pax_file.clone())
        .symlink(format!("{pax_dir}/link"), long_target.clone())
        .dir(gnu_dir.clone(), 0o755)
        .entry(TarEntry::file(gnu_file.clone(), "gnu long name\n").long_names(LongNames::Gnu))
        .entry(
            TarEntry::hardlink(format!("{gnu_dir}/{}", "k".repeat(80)), gnu_file)
                .long_names(LongNames::Gnu),
        )
        .entry(TarEntry::symlink(format!("{gnu_dir}/link"), long_target).long_names(LongNames::Gnu))
}

fn layers_non_utf8() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .entry(TarEntry::new_raw(
            &b"caf\xe9"[..],
            EntryKind::File(b"latin-1 name\n".to_vec()),
            0o644,
        ))
        .entry(TarEntry::new_raw(
            &b"na\xefve"[..],
            EntryKind::File(b"whited out\n".to_vec()),
            0o644,
        ))
        .entry(TarEntry::new_raw(
            &b"r\xe9pertoire/"[..],
            EntryKind::Dir,
            0o755,
        ))
        .entry(TarEntry::new_raw(
            &b"r\xe9pertoire/\xff\xfe"[..],
            EntryKind::File(b"not UTF-8 at all\n".to_vec()),
            0o644,
        ));
    let upper = TarBuilder::new().entry(TarEntry::new_raw(
        &b".wh.na\xefve"[..],
        EntryKind::File(Vec::new()),
        0o644,
    ));
    vec![lower, upper]
}

fn layer_sparse() -> TarBuilder {
    TarBuilder::new()
        .dir("sparse", 0o755)
        .entry(TarEntry::sparse(
            "sparse/middle",
            8192,
            vec![
                (2048, vec![b'a'; 512]),
                (5120, b"tail data".to_vec()),
                (8192, Vec::new()),
            ],
        ))
        .entry(TarEntry::sparse(
            "sparse/leading-hole",
            3591,
            vec![(3584, b"the end".to_vec())],
        ))
        .entry(TarEntry::sparse(
            "sparse/all-hole",
            10000,
            vec![(10000, Vec::new())],
        ))
        .entry(TarEntry::sparse(
            "sparse/no-hole",
            600,
            vec![(0, vec![b'z'; 600])],
        ))
}

fn layer_modes() -> TarBuilder {
    TarBuilder::new()
        .dir("bin", 0o755)
        .file("bin/setuid", "#!/bin/sh\n", 0o4755)
        .file("bin/setgid", "#!/bin/sh\n", 0o2755)
        .file("bin/sticky", "#!/bin/sh\n", 0o1755)
        .file("bin/all-bits", "#!/bin/sh\n", 0o7777)
        .file("bin/private", "secret\n", 0o600)
        .file("bin/read-only", "ro\n", 0o444)
        .file("bin/no-access", "none\n", 0o000)
        .dir("tmp", 0o1777)
        .dir("shared", 0o2775)
        .dir("locked", 0o700)
        .file("locked/inside", "inside\n", 0o644)
}

fn layers_mtimes() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .entry(TarEntry::dir("old/").mtime(1_000_000_000))
        .entry(TarEntry::file("old/a", "a\n").mtime(1_100_000_000))
        .entry(TarEntry::dir("old/sub/").mtime(1_200_000_000))
        .entry(TarEntry::file("old/sub/b", "b\n").mtime(1_300_000_000))
        .entry(TarEntry::symlink("old/link", "a").mtime(1_400_000_000))
        .entry(TarEntry::file("future", "2096\n").mtime(4_000_000_000));
    let upper = TarBuilder::new()
        .entry(TarEntry::dir("old/").mtime(1_500_000_000))
        .entry(TarEntry::file("old/c", "c\n").mtime(1_600_000_000))
        .entry(TarEntry::dir("old/sub/").mtime(1_700_000_000))
        .whiteout("old/sub/b");
    vec![lower, upper]
}

fn layer_xattrs() -> TarBuilder {
    TarBuilder::new()
        .entry(TarEntry::dir("x/").xattr("user.dir", "on a directory"))
        .entry(
            TarEntry::file("x/file", "with attributes\n")
                .xattr("user.tank", "value")
                .xattr("user.binary", [0_u8, 1, 2, 0xff])
                .xattr("trusted.tank", "not user.*: skipped unprivileged"),
        )
        .file("x/plain", "no attributes\n", 0o644)
}

fn layers_whiteout_file() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("a", 0o755)
        .file("a/gone", "whited out\n", 0o644)
        .file("a/kept", "kept\n", 0o644)
        .symlink("a/gone-link", "kept");
    let upper = TarBuilder::new()
        .dir("a", 0o755)
        .whiteout("a/gone")
        .whiteout("a/gone-link")
        .whiteout("a/never-existed");
    vec![lower, upper]
}

fn layers_whiteout_tree() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("t", 0o755)
        .dir("t/sub", 0o755)
        .dir("t/sub/deep", 0o555)
        .file("t/sub/deep/file", "deep\n", 0o644)
        .file("t/sub/file", "file\n", 0o644)
        .dir("keep", 0o755)
        .file("keep/f", "kept\n", 0o644)
        .symlink("link-to-keep", "keep");
    let upper = TarBuilder::new().whiteout("t").whiteout("link-to-keep");
    vec![lower, upper]
}

/// An opaque directory whose marker comes first (`before`) or last in the layer.
fn layers_opaque(before: bool) -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("o", 0o755)
        .file("o/lower-file", "hidden\n", 0o644)
        .dir("o/lower-dir", 0o755)
        .file("o/lower-dir/f", "hidden\n", 0o644)
        .dir("o/sub", 0o755)
        .file("o/sub/lower", "hidden\n", 0o644)
        .dir("other", 0o755)
        .file("other/untouched", "kept\n", 0o644);
    let mut upper = TarBuilder::new().dir("o", 0o755);
    if before {
        upper = upper.opaque("o");
    }
    upper = upper
        .file("o/new", "added by the opaque layer\n", 0o644)
        .dir("o/sub", 0o755)
        .file("o/sub/new", "added too\n", 0o644);
    if !before {
        upper = upper.opaque("o");
    }
    vec![lower, upper]
}

fn layers_file_over_dir() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("p", 0o755)
        .file("p/child", "gone\n", 0o644)
        .dir("p/sub", 0o755)
        .file("p/sub/f", "gone\n", 0o644);
    let upper = TarBuilder::new()
        .file("p", "now a file\n", 0o644)
        .dir("q", 0o755)
        .file("q/x", "replaced in the same layer\n", 0o644)
        .file("q", "file over a directory of this layer\n", 0o600);
    vec![lower, upper]
}

fn layers_dir_over_file() -> Vec<TarBuilder> {
    let lower = TarBuilder::new().file("q", "was a file\n", 0o644);
    let upper = TarBuilder::new()
        .dir("q", 0o750)
        .file("q/inside", "inside\n", 0o644)
        .file("r", "a file of this layer\n", 0o644)
        .dir("r", 0o755)
        .file("r/in", "in\n", 0o644);
    vec![lower, upper]
}

fn layers_dir_over_symlink() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("real", 0o755)
        .file("real/f", "untouched\n", 0o644)
        .symlink("r", "real")
        .symlink("abs", "/real");
    let upper = TarBuilder::new()
        .dir("r", 0o755)
        .file("r/new", "in the new directory\n", 0o644)
        .dir("abs", 0o700)
        .file("abs/new", "in the new directory\n", 0o644);
    vec![lower, upper]
}

fn layer_duplicate() -> TarBuilder {
    TarBuilder::new()
        .file("d", "first\n", 0o644)
        .file("d", "second\n", 0o640)
        .file("s", "a file first\n", 0o644)
        .symlink("s", "d")
        .symlink("l", "d")
        .file("l", "a file last\n", 0o644)
        .dir("m", 0o700)
        .file("m/f", "kept across the duplicate directory\n", 0o644)
        .dir("m", 0o755)
        .hardlink("h", "d")
        .file("h", "a file replacing a hard link\n", 0o644)
}

fn layers_readonly_dir() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("ro", 0o555)
        .file("ro/f", "read-only directory\n", 0o444)
        .file("ro/removed", "whited out by layer 2\n", 0o644)
        .dir("ro/inner", 0o500)
        .file("ro/inner/g", "inside\n", 0o644)
        .dir("ro/inner/deeper", 0o555);
    let upper = TarBuilder::new()
        .dir("ro", 0o555)
        .file(
            "ro/added",
            "added into a read-only lower directory\n",
            0o644,
        )
        .whiteout("ro/removed")
        .dir("ro/inner", 0o500)
        .file("ro/inner/deeper-sibling", "added\n", 0o600);
    vec![lower, upper]
}

fn layer_devices() -> TarBuilder {
    TarBuilder::new()
        .dir("dev", 0o755)
        .entry(TarEntry::new(
            "dev/null",
            EntryKind::CharDevice { major: 1, minor: 3 },
            0o666,
        ))
        .entry(TarEntry::new(
            "dev/sda",
            EntryKind::BlockDevice { major: 8, minor: 0 },
            0o660,
        ))
        .entry(TarEntry::new("dev/fifo", EntryKind::Fifo, 0o644))
        .file("dev/regular", "a regular file among devices\n", 0o644)
}

fn compression_layers() -> Vec<TarBuilder> {
    let lower = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/first", "layer 1\n", 0o644)
        .file("etc/replaced", "layer 1\n", 0o644)
        .file("etc/removed", "layer 1\n", 0o644);
    let upper = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/replaced", "layer 2\n", 0o600)
        .whiteout("etc/removed")
        .symlink("etc/link", "first");
    vec![lower, upper]
}

/// An uncompressed lower layer under a gzip upper one.
fn uncompressed() -> OciLayoutBuilder {
    let layers = compression_layers();
    let image = ImageBuilder::new(Platform::new("linux", "amd64"))
        .cmd(&["/bin/sh"])
        .layer_tar(layers[0].build(), Compression::None)
        .layer_tar(layers[1].build(), Compression::Gzip);
    OciLayoutBuilder::new().image("latest", image)
}

/// zstd layers (`latest`) and their gzip twin (`gzip`).
fn zstd() -> OciLayoutBuilder {
    let layers = compression_layers();
    OciLayoutBuilder::new()
        .image("latest", compressed_image(&layers, Compression::Zstd))
        .image("gzip", compressed_image(&layers, Compression::Gzip))
}

/// Regenerates every fixture under `root`, replacing each fixture's directory.
pub fn write_fixtures(root: &Path) -> Result<(), Error> {
    for (name, layout) in fixture_layouts() {
        let dir = root.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|source| Error::io(&dir, source))?;
        }
        layout.write(&dir)?;
    }
    let layers = root.join(LAYER_FIXTURES_DIR);
    if layers.exists() {
        fs::remove_dir_all(&layers).map_err(|source| Error::io(&layers, source))?;
    }
    for (name, layout) in layer_fixture_layouts() {
        layout.write(&layers.join(name))?;
    }
    Ok(())
}

/// Fails with [`Error::StaleFixtures`], naming the command to run, when the fixtures under
/// `root` differ from what [`write_fixtures`] writes (missing, extra or changed files).
pub fn check_fixtures(root: &Path) -> Result<(), Error> {
    let fresh = tempfile::tempdir().map_err(|source| Error::io(std::env::temp_dir(), source))?;
    write_fixtures(fresh.path())?;
    let mut stale = Vec::new();
    let layer_fixtures = [LAYER_FIXTURES_DIR];
    for name in FIXTURE_NAMES.iter().chain(&layer_fixtures) {
        let expected = read_tree(&fresh.path().join(name))?;
        let committed_dir = root.join(name);
        let committed = if committed_dir.is_dir() {
            read_tree(&committed_dir)?
        } else {
            BTreeMap::new()
        };
        for (path, bytes) in &expected {
            match committed.get(path) {
                Some(existing) if existing == bytes => {}
                Some(_) => stale.push(format!("{name}/{path} (changed)")),
                None => stale.push(format!("{name}/{path} (missing)")),
            }
        }
        for path in committed
            .keys()
            .filter(|path| !expected.contains_key(*path))
        {
            stale.push(format!("{name}/{path} (extra)"));
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(Error::StaleFixtures {
            dir: root.to_path_buf(),
            stale,
            command: REGENERATE.to_owned(),
        })
    }
}

/// Every file under `dir`, by path relative to it with `/` separators.
fn read_tree(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current).map_err(|source| Error::io(&current, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::io(&current, source))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|source| Error::io(&path, source))?;
            if file_type.is_dir() {
                pending.push(path);
            } else {
                let bytes = fs::read(&path).map_err(|source| Error::io(&path, source))?;
                let relative = path
                    .strip_prefix(dir)
                    .expect("read_dir yields paths under the directory it reads")
                    .components()
                    .map(|component| component.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.insert(relative, bytes);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use serde_json::Value;

    use super::*;
    use crate::oci::{media_type, read_layout_tags};
    use crate::sha256_hex;

    #[test]
    fn committed_fixtures_are_up_to_date() {
        // A failure here means fixture definitions changed without regenerating: the error
        // names the command to run.
        check_fixtures(&fixtures_dir()).expect("fixtures/ must match the generator");
    }

    #[test]
    fn the_check_reports_changed_missing_and_extra_files() {
        let root = tempfile::tempdir().unwrap();
        write_fixtures(root.path()).unwrap();
        check_fixtures(root.path()).expect("freshly written fixtures are not stale");

        fs::write(root.path().join("single/index.json"), "{}").unwrap();
        fs::write(root.path().join("multi-layer/stray"), "x").unwrap();
        fs::remove_file(root.path().join("docker-v2/oci-layout")).unwrap();
        let error = check_fixtures(root.path()).unwrap_err();
        let Error::StaleFixtures { stale, command, .. } = &error else {
            panic!("expected StaleFixtures, got {error:?}");
        };
        assert_eq!(
            stale,
            &vec![
                "single/index.json (changed)".to_owned(),
                "multi-layer/stray (extra)".to_owned(),
                "docker-v2/oci-layout (missing)".to_owned(),
            ]
        );
        assert_eq!(command, "cargo xtask fixtures");
        assert!(error.to_string().contains("run `cargo xtask fixtures`"));
    }

    #[test]
    fn fixtures_are_deterministic_and_small() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write_fixtures(first.path()).unwrap();
        write_fixtures(second.path()).unwrap();
        let mut total = 0;
        for name in FIXTURE_NAMES {
            let tree = read_tree(&first.path().join(name)).unwrap();
            assert_eq!(tree, read_tree(&second.path().join(name)).unwrap());
            for (path, bytes) in &tree {
                if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                    assert_eq!(hex, sha256_hex(bytes), "{name}/{path}");
                }
            }
            total += tree.values().map(Vec::len).sum::<usize>();
        }
        assert!(total < 64 * 1024, "fixtures take {total} bytes");
    }

    #[test]
    fn layer_fixtures_are_deterministic_small_and_named() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write_fixtures(first.path()).unwrap();
        write_fixtures(second.path()).unwrap();
        let layers = first.path().join(LAYER_FIXTURES_DIR);
        let tree = read_tree(&layers).unwrap();
        assert_eq!(
            tree,
            read_tree(&second.path().join(LAYER_FIXTURES_DIR)).unwrap()
        );
        let total: usize = tree.values().map(Vec::len).sum();
        assert!(total < 300 * 1024, "layer fixtures take {total} bytes");
        let names: Vec<&str> = layer_fixture_layouts()
            .iter()
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(names, LAYER_FIXTURE_NAMES);
        for name in LAYER_FIXTURE_NAMES {
            let tags = read_layout_tags(&layers.join(name)).unwrap();
            assert_eq!(tags[0].tag, "latest", "{name}");
            assert_eq!(tags[0].media_type, media_type::OCI_MANIFEST, "{name}");
        }
        // The zstd fixture's gzip twin holds the same uncompressed layers.
        let summary = zstd().build();
        let zstd_image = summary.get("latest").unwrap().as_image().unwrap();
        let gzip_image = summary.get("gzip").unwrap().as_image().unwrap();
        assert_eq!(zstd_image.diff_ids(), gzip_image.diff_ids());
        assert_eq!(
            zstd_image.layers()[0].media_type(),
            media_type::OCI_LAYER_ZSTD
        );
        assert_eq!(
            &zstd_image.layers()[0].bytes()[..4],
            &[0x28, 0xb5, 0x2f, 0xfd]
        );
        assert_eq!(
            gzip_image.layers()[0].media_type(),
            media_type::OCI_LAYER_GZIP
        );
    }

    #[test]
    fn the_check_reports_stale_layer_fixtures() {
        let root = tempfile::tempdir().unwrap();
        write_fixtures(root.path()).unwrap();
        fs::write(root.path().join("layers/files/oci-layout"), "{}").unwrap();
        fs::create_dir(root.path().join("layers/retired")).unwrap();
        fs::write(root.path().join("layers/retired/index.json"), "{}").unwrap();
        let error = check_fixtures(root.path()).unwrap_err();
        let Error::StaleFixtures { stale, .. } = &error else {
            panic!("expected StaleFixtures, got {error:?}");
        };
        assert_eq!(
            stale,
            &vec![
                "layers/files/oci-layout (changed)".to_owned(),
                "layers/retired/index.json (extra)".to_owned(),
            ]
        );
    }

    #[test]
    fn fixture_tags_have_the_documented_shapes() {
        let root = tempfile::tempdir().unwrap();
        write_fixtures(root.path()).unwrap();
        let shapes: Vec<(String, Vec<(String, String)>)> = FIXTURE_NAMES
            .iter()
            .map(|name| {
                let tags = read_layout_tags(&root.path().join(name)).unwrap();
                (
                    (*name).to_owned(),
                    tags.into_iter()
                        .map(|tag| (tag.tag, tag.media_type))
                        .collect(),
                )
            })
            .collect();
        let expect = |name: &str, tags: &[(&str, &str)]| {
            (
                name.to_owned(),
                tags.iter()
                    .map(|(tag, media)| ((*tag).to_owned(), (*media).to_owned()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            shapes,
            vec![
                expect("single", &[("latest", media_type::OCI_MANIFEST)]),
                expect("multi-layer", &[("latest", media_type::OCI_MANIFEST)]),
                expect("multi-platform", &[("latest", media_type::OCI_INDEX)]),
                expect(
                    "docker-v2",
                    &[
                        ("latest", media_type::DOCKER_MANIFEST),
                        ("list", media_type::DOCKER_MANIFEST_LIST)
                    ]
                ),
            ]
        );
    }

    #[test]
    fn single_fixture_config_carries_the_run_settings() {
        let summary = single().build();
        let image = summary.get("latest").unwrap().as_image().unwrap();
        let config: Value = serde_json::from_slice(image.config().bytes()).unwrap();
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/usr/bin/hello"])
        );
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["--verbose"]));
        assert_eq!(config["config"]["User"], "tank");
        assert_eq!(config["config"]["WorkingDir"], "/home/tank");
        assert_eq!(config["config"]["Env"][1], "GREETING=hello");
    }

    /// umoci, an independent implementation of the OCI layer rules, applies the multi-layer
    /// fixture: the whiteout, the opaque directory and the replaced file come out as intended.
    #[test]
    fn umoci_unpacks_multi_layer_with_whiteouts_applied() {
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("layout");
        multi_layer().write(&layout).unwrap();
        let bundle = work.path().join("bundle");
        let output = Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle)
            .output()
            .expect("umoci must be installed (apt-get install umoci)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rootfs = bundle.join("rootfs");
        let read = |path: &str| fs::read_to_string(rootfs.join(path)).unwrap();

        assert!(!rootfs.join("etc/removed-later").exists());
        assert_eq!(read("etc/os-release"), "ID=tankfixture\nVERSION_ID=1\n");
        assert!(!rootfs.join("cache/old-1").exists());
        assert!(!rootfs.join("cache/sub").exists());
        assert_eq!(read("cache/new-1"), "added by layer 2\n");
        assert_eq!(read("data/replaced"), "version 3\n");
        assert_eq!(read("data/keep-link"), "kept from layer 1\n");
        assert_eq!(
            fs::read_link(rootfs.join("etc/os-release-link")).unwrap(),
            Path::new("os-release")
        );
        let names: Vec<String> = fs::read_dir(rootfs.join("cache"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["new-1"]);
    }
}
