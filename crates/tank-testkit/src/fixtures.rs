//! The checked-in test images under `fixtures/`: their definitions, the generator behind
//! `cargo xtask fixtures`, and the staleness check behind `cargo xtask fixtures --check`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::oci::{ImageBuilder, IndexBuilder, MediaTypes, OciLayoutBuilder, Platform};
use crate::tarball::{TarBuilder, TarEntry};

/// The fixtures, each an OCI layout directory under [`fixtures_dir`].
pub const FIXTURE_NAMES: &[&str] = &["single", "multi-layer", "multi-platform", "docker-v2"];

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

/// Regenerates every fixture under `root`, replacing each fixture's directory.
pub fn write_fixtures(root: &Path) -> Result<(), Error> {
    for (name, layout) in fixture_layouts() {
        let dir = root.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|source| Error::io(&dir, source))?;
        }
        layout.write(&dir)?;
    }
    Ok(())
}

/// Fails with [`Error::StaleFixtures`], naming the command to run, when the fixtures under
/// `root` differ from what [`write_fixtures`] writes (missing, extra or changed files).
pub fn check_fixtures(root: &Path) -> Result<(), Error> {
    let fresh = tempfile::tempdir().map_err(|source| Error::io(std::env::temp_dir(), source))?;
    write_fixtures(fresh.path())?;
    let mut stale = Vec::new();
    for name in FIXTURE_NAMES {
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
