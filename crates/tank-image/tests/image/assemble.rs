//! `assemble` and layer building: every declared size and digest matches its bytes (a
//! property test), history and format errors, deterministic layers from directories, and
//! layers from the difference of two trees applied by tank-layer onto the lower tree.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use serde_json::{Value, json};
use tank_image::{
    AssembleOptions, Compression, EntryKind, Error, Format, Image, LayerBlob, LayerEntry,
    LayerOptions, assemble, layer_from_diff, layer_from_dir, layer_from_entries,
};
use tank_layer::{ExtractOptions, extract};
use tank_reference::{Algorithm, Digest};
use tank_testkit::Tree;

fn memory(compression: Compression) -> LayerOptions {
    LayerOptions {
        compression,
        in_memory: true,
        ..LayerOptions::default()
    }
}

fn decompress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    match compression {
        Compression::None => out.extend_from_slice(bytes),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
    }
    out
}

/// Checks every claim the image makes against the bytes it holds.
fn check_image(image: &Image, config_in: &Value) {
    let manifest: Value = serde_json::from_slice(image.manifest_bytes()).unwrap();
    assert_eq!(
        *image.manifest_digest(),
        Digest::of(Algorithm::Sha256, image.manifest_bytes())
    );
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        image.format().manifest_media_type(),
        "manifest media type"
    );

    let config_bytes = image
        .blob(
            &manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .expect("the config is a blob of the image")
        .to_vec()
        .unwrap();
    assert_eq!(config_bytes, image.config_bytes());
    assert_eq!(
        manifest["config"]["size"].as_u64().unwrap(),
        config_bytes.len() as u64
    );
    assert_eq!(
        manifest["config"]["digest"].as_str().unwrap(),
        Digest::of(Algorithm::Sha256, &config_bytes).to_string()
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        image.format().config_media_type()
    );

    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    for (key, value) in config_in.as_object().unwrap() {
        if key != "rootfs" {
            assert_eq!(&config[key], value, "config field {key} kept");
        }
    }
    assert_eq!(config["rootfs"]["type"], "layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(diff_ids.len(), layers.len());
    assert_eq!(image.layers().len(), layers.len());

    for ((declared, diff_id), (descriptor, image_diff_id, blob)) in
        layers.iter().zip(diff_ids).zip(image.layers())
    {
        let digest: Digest = declared["digest"].as_str().unwrap().parse().unwrap();
        let bytes = image.blob(&digest).expect("layer blob").to_vec().unwrap();
        assert_eq!(declared["size"].as_u64().unwrap(), bytes.len() as u64);
        assert_eq!(digest, Digest::of(Algorithm::Sha256, &bytes));
        assert_eq!(*descriptor.digest(), digest);
        assert_eq!(descriptor.size(), bytes.len() as u64);
        let compression = blob.compression();
        assert_eq!(
            declared["mediaType"],
            image.format().layer_media_type(compression).unwrap()
        );
        let tar = decompress(&bytes, compression);
        let actual_diff_id = Digest::of(Algorithm::Sha256, &tar).to_string();
        assert_eq!(diff_id.as_str().unwrap(), actual_diff_id);
        assert_eq!(image_diff_id.to_string(), actual_diff_id);
    }
}

fn entry_strategy() -> impl Strategy<Value = LayerEntry> {
    let name = "[a-c]{1,2}(/[a-c]{1,2}){0,2}";
    prop_oneof![
        (
            name,
            proptest::collection::vec(any::<u8>(), 0..300),
            0o400_u32..0o1000
        )
            .prop_map(|(path, contents, mode)| LayerEntry::file(&path, contents, mode)),
        (name, 0o500_u32..0o1000).prop_map(|(path, mode)| LayerEntry::dir(&path, mode)),
        (name, "[a-z/.]{1,20}").prop_map(|(path, target)| LayerEntry::symlink(&path, &target)),
        name.prop_map(|path| LayerEntry::whiteout(&path)),
        (name, any::<u32>(), any::<u32>(), 0_u64..4_000_000_000).prop_map(
            |(path, uid, gid, mtime)| LayerEntry::new(&path, EntryKind::Fifo, 0o644)
                .with_owner(u64::from(uid), u64::from(gid))
                .with_mtime(mtime)
        ),
        (
            name,
            "user\\.[a-z]{1,8}",
            proptest::collection::vec(any::<u8>(), 0..150)
        )
            .prop_map(
                |(path, key, value)| LayerEntry::file(&path, "x", 0o644).with_xattr(&key, value)
            ),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[A-Za-z_]{1,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn config_strategy() -> impl Strategy<Value = Value> {
    (
        proptest::collection::btree_map("[A-Za-z_]{1,10}", json_value(), 0..5),
        prop_oneof![Just("amd64"), Just("arm64"), Just("s390x")],
    )
        .prop_map(|(extra, architecture)| {
            let mut config: serde_json::Map<String, Value> = extra.into_iter().collect();
            config.insert("architecture".into(), Value::from(architecture));
            config.insert("os".into(), Value::from("linux"));
            // A stale rootfs is replaced; history is generated to fit below.
            config.insert(
                "rootfs".into(),
                json!({"type": "layers", "diff_ids": ["stale"]}),
            );
            config.remove("history");
            Value::Object(config)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_declared_size_and_digest_matches_its_bytes(
        config in config_strategy(),
        layers in proptest::collection::vec(
            (proptest::collection::vec(entry_strategy(), 0..6), 0_usize..3),
            1..5,
        ),
        oci in any::<bool>(),
        empty_history_entries in 0_usize..3,
        annotate in any::<bool>(),
    ) {
        let format = if oci { Format::Oci } else { Format::DockerV2 };
        let mut blobs = Vec::new();
        for (index, (entries, compression)) in layers.iter().enumerate() {
            let compression = match (compression, format) {
                (0, _) => Compression::None,
                (1, Format::Oci) => Compression::Zstd,
                _ => Compression::Gzip,
            };
            let options = LayerOptions {
                compression,
                // Half the layers go through a temporary file.
                in_memory: index % 2 == 0,
                ..LayerOptions::default()
            };
            blobs.push(layer_from_entries(entries, &options).unwrap());
        }
        let mut config = config;
        let mut history: Vec<Value> = (0..blobs.len())
            .map(|index| json!({"created_by": format!("layer {index}")}))
            .collect();
        for index in 0..empty_history_entries {
            history.insert(index, json!({"created_by": "ENV", "empty_layer": true}));
        }
        config["history"] = Value::from(history);
        let mut annotations = BTreeMap::new();
        if annotate && format == Format::Oci {
            annotations.insert("org.example.key".to_owned(), "value".to_owned());
        }
        let options = AssembleOptions {
            format,
            annotations: annotations.clone(),
            tag: Some("v1".to_owned()),
            created: None,
        };
        let image = assemble(config.clone(), blobs, &options).unwrap();
        check_image(&image, &config);
        let manifest: Value = serde_json::from_slice(image.manifest_bytes()).unwrap();
        if annotations.is_empty() {
            prop_assert!(manifest.get("annotations").is_none());
        } else {
            prop_assert_eq!(&manifest["annotations"]["org.example.key"], "value");
        }
        prop_assert_eq!(image.annotations(), &annotations);
        prop_assert_eq!(image.platform().map(|p| p.os().to_owned()), Some("linux".to_owned()));
    }
}

fn small_layer() -> LayerBlob {
    layer_from_entries(
        &[LayerEntry::file("a", "alpha", 0o644)],
        &memory(Compression::Gzip),
    )
    .unwrap()
}

#[test]
fn a_history_that_does_not_fit_the_layers_is_refused_naming_both_counts() {
    let config = json!({
        "os": "linux",
        "architecture": "amd64",
        "history": [
            {"created_by": "one"},
            {"created_by": "ENV x", "empty_layer": true},
            {"created_by": "two"},
        ],
    });
    let error = assemble(config, vec![small_layer()], &AssembleOptions::default()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::HistoryMismatch {
                history: 2,
                layers: 1
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("2 non-empty") && message.contains("1 layers"),
        "{message}"
    );
}

#[test]
fn docker_images_refuse_zstd_layers_and_annotations() {
    let zstd = layer_from_entries(
        &[LayerEntry::file("a", "alpha", 0o644)],
        &memory(Compression::Zstd),
    )
    .unwrap();
    let docker = AssembleOptions {
        format: Format::DockerV2,
        ..AssembleOptions::default()
    };
    let config = json!({"os": "linux", "architecture": "amd64"});
    let error = assemble(config.clone(), vec![zstd.clone()], &docker).unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedByFormat { format: Format::DockerV2, ref what } if what == "zstd layers"),
        "{error}"
    );
    // The same layer is fine in an OCI image.
    let image = assemble(config.clone(), vec![zstd], &AssembleOptions::default()).unwrap();
    check_image(&image, &config);

    let annotated = AssembleOptions {
        format: Format::DockerV2,
        annotations: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        ..AssembleOptions::default()
    };
    let error = assemble(config, vec![small_layer()], &annotated).unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedByFormat { .. }),
        "{error}"
    );
}

#[test]
fn docker_manifests_use_docker_media_types() {
    let config = json!({"os": "linux", "architecture": "amd64", "config": {"Cmd": ["sh"]}});
    let uncompressed = layer_from_entries(
        &[LayerEntry::file("b", "beta", 0o644)],
        &memory(Compression::None),
    )
    .unwrap();
    let options = AssembleOptions {
        format: Format::DockerV2,
        created: Some("2024-01-02T03:04:05Z".to_owned()),
        ..AssembleOptions::default()
    };
    let image = assemble(config.clone(), vec![small_layer(), uncompressed], &options).unwrap();
    check_image(&image, &config);
    let manifest: Value = serde_json::from_slice(image.manifest_bytes()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar"
    );
    let config: Value = serde_json::from_slice(image.config_bytes()).unwrap();
    assert_eq!(config["created"], "2024-01-02T03:04:05Z");
}

#[test]
fn invalid_configs_and_tags_are_refused() {
    let error = assemble(json!([1, 2]), vec![], &AssembleOptions::default()).unwrap_err();
    assert!(matches!(error, Error::InvalidImageConfig { .. }), "{error}");
    let error = assemble(
        json!({"history": "yesterday"}),
        vec![],
        &AssembleOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::InvalidImageConfig { .. }), "{error}");
    let options = AssembleOptions {
        tag: Some("bad tag".to_owned()),
        ..AssembleOptions::default()
    };
    let error = assemble(json!({}), vec![], &options).unwrap_err();
    assert!(matches!(error, Error::InvalidTag { .. }), "{error}");
}

#[test]
fn layer_blobs_from_files_and_bytes_agree_with_built_ones() {
    let dir = tempfile::tempdir().unwrap();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let built = layer_from_entries(
            &[
                LayerEntry::dir("d", 0o755),
                LayerEntry::file("d/f", vec![7_u8; 100_000], 0o600),
            ],
            &LayerOptions {
                compression,
                temp_dir: Some(dir.path().to_path_buf()),
                ..LayerOptions::default()
            },
        )
        .unwrap();
        let tank_image::BlobRef::File(path) = built.blob() else {
            panic!("a layer built without in_memory is a file");
        };
        assert!(path.starts_with(dir.path()));
        let from_file = LayerBlob::from_file(path, compression).unwrap();
        let bytes = fs::read(path).unwrap();
        let from_bytes = LayerBlob::from_compressed(bytes.clone(), compression).unwrap();
        let tar = decompress(&bytes, compression);
        let from_tar = LayerBlob::from_tar(&tar, compression).unwrap();
        for other in [&from_file, &from_bytes, &from_tar] {
            assert_eq!(other.diff_id(), built.diff_id(), "{compression}");
        }
        assert_eq!(from_file.digest(), built.digest());
        assert_eq!(from_bytes.digest(), built.digest());
        assert_eq!(from_file.size(), bytes.len() as u64);
        assert_eq!(
            *built.diff_id(),
            Digest::of(Algorithm::Sha256, &tar),
            "{compression}"
        );
        // The temporary file goes with the last clone of the blob.
        let path = path.to_path_buf();
        let clone = built.clone();
        drop(built);
        assert!(path.exists());
        drop(clone);
        assert!(!path.exists());
    }
}

fn set_mtime(path: &Path, seconds: i64) {
    let time = rustix::fs::Timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: time,
            last_modification: time,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Sets the mtime of `root` and everything below it, children before parents.
fn set_mtimes(root: &Path, seconds: i64) {
    let mut paths = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for item in fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                pending.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    for path in paths {
        set_mtime(&path, seconds);
    }
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
}

/// A tree with files, directories, symlinks, hard links, a fifo and a `user.*` xattr.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("var/empty")).unwrap();
    fs::write(root.join("etc/motd"), "hello\n").unwrap();
    fs::write(root.join("etc/conf.d/a.conf"), "a=1\n").unwrap();
    fs::write(root.join("usr/bin/tool"), vec![0x7f; 70_000]).unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool-alias")).unwrap();
    symlink("../etc/motd", root.join("usr/motd-link")).unwrap();
    symlink("/absolute/target", root.join("dangling")).unwrap();
    mkfifo(&root.join("var/pipe"));
    rustix::fs::setxattr(
        root.join("etc/motd"),
        "user.origin",
        b"test",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    fs::set_permissions(root.join("var/empty"), fs::Permissions::from_mode(0o1777)).unwrap();
}

fn apply(layer: &LayerBlob, dest: &Path) -> tank_layer::LayerReport {
    let reader = layer.blob().open().unwrap();
    let report = extract(
        reader,
        layer.compression(),
        dest,
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(report.diff_id, layer.diff_id().to_string());
    report
}

fn assert_same_tree(ours: &Path, expected: &Path) {
    let differences = Tree::snapshot(ours).unwrap().differences(
        &Tree::snapshot(expected).unwrap(),
        "extracted",
        "expected",
    );
    assert!(
        differences.is_empty(),
        "trees differ:\n{}",
        differences.join("\n")
    );
}

#[test]
fn a_layer_from_a_directory_is_deterministic_and_extracts_to_the_same_tree() {
    let source = tempfile::tempdir().unwrap();
    sample_tree(source.path());
    set_mtimes(source.path(), 1_600_000_000);
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let options = LayerOptions {
            compression,
            xattrs: true,
            ..LayerOptions::default()
        };
        let layer = layer_from_dir(source.path(), &options).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let report = apply(&layer, dest.path());
        assert_eq!(report.hardlinks, 1);
        assert_eq!(report.xattrs, 1);
        assert_same_tree(dest.path(), source.path());

        // With a fixed mtime, touching the files changes nothing.
        let fixed = LayerOptions {
            mtime: Some(1_700_000_000),
            owner: Some((0, 0)),
            ..options.clone()
        };
        let first = layer_from_dir(source.path(), &fixed).unwrap();
        set_mtimes(source.path(), 1_650_000_000);
        let second = layer_from_dir(source.path(), &fixed).unwrap();
        set_mtimes(source.path(), 1_600_000_000);
        assert_eq!(first.digest(), second.digest(), "{compression}");
        assert_eq!(first.diff_id(), second.diff_id());
        assert_eq!(
            first.blob().to_vec().unwrap(),
            second.blob().to_vec().unwrap()
        );
        // Without it, the mtimes are recorded.
        set_mtimes(source.path(), 1_650_000_000);
        let touched = layer_from_dir(source.path(), &options).unwrap();
        set_mtimes(source.path(), 1_600_000_000);
        assert_ne!(touched.diff_id(), layer.diff_id());
        let bytes = first.blob().to_vec().unwrap();
        let tar_bytes = decompress(&bytes, compression);
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        for entry in archive.entries().unwrap() {
            let header = entry.unwrap().header().clone();
            assert_eq!(header.mtime().unwrap(), 1_700_000_000);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_layer_from_the_difference_of_two_trees_turns_lower_into_upper() {
    let work = tempfile::tempdir().unwrap();
    let lower = work.path().join("lower");
    let upper = work.path().join("upper");
    fs::create_dir(&lower).unwrap();
    sample_tree(&lower);
    fs::create_dir_all(lower.join("gone/deep/deeper")).unwrap();
    fs::write(lower.join("gone/deep/deeper/file"), "x").unwrap();
    fs::write(lower.join("becomes-dir"), "was a file").unwrap();
    fs::create_dir_all(lower.join("becomes-file/child")).unwrap();
    fs::write(lower.join("becomes-file/child/f"), "y").unwrap();
    fs::write(lower.join("etc/removed"), "bye").unwrap();
    fs::write(lower.join("unchanged"), "same").unwrap();
    set_mtimes(&lower, 1_600_000_000);

    copy_tree(&lower, &upper);
    // Changes: content, mode, a new file, a new directory tree, symlink retargeted, a hard
    // link added to an unchanged file, removed file, removed directory tree, file -> dir,
    // dir -> file, xattr changed.
    fs::write(upper.join("etc/conf.d/a.conf"), "a=2\n").unwrap();
    fs::set_permissions(upper.join("etc/motd"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(upper.join("etc/new"), "new file").unwrap();
    fs::create_dir_all(upper.join("opt/app/lib")).unwrap();
    fs::write(upper.join("opt/app/lib/x.so"), vec![1_u8; 5000]).unwrap();
    symlink("app/lib/x.so", upper.join("opt/link")).unwrap();
    fs::remove_file(upper.join("usr/motd-link")).unwrap();
    symlink("../etc/new", upper.join("usr/motd-link")).unwrap();
    fs::hard_link(upper.join("unchanged"), upper.join("unchanged-link")).unwrap();
    fs::remove_file(upper.join("etc/removed")).unwrap();
    fs::remove_dir_all(upper.join("gone")).unwrap();
    fs::remove_file(upper.join("becomes-dir")).unwrap();
    fs::create_dir(upper.join("becomes-dir")).unwrap();
    fs::write(upper.join("becomes-dir/inside"), "now a dir").unwrap();
    fs::remove_dir_all(upper.join("becomes-file")).unwrap();
    fs::write(upper.join("becomes-file"), "now a file").unwrap();
    rustix::fs::setxattr(
        upper.join("etc/conf.d"),
        "user.changed",
        b"1",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Everything touched gets a later mtime (as a real change would give it), the rest
    // keeps the lower tree's.
    for path in [
        "",
        "etc",
        "etc/conf.d",
        "etc/conf.d/a.conf",
        "etc/motd",
        "etc/new",
        "opt",
        "opt/app",
        "opt/app/lib",
        "opt/app/lib/x.so",
        "opt/link",
        "usr",
        "usr/motd-link",
        "unchanged",
        "becomes-dir/inside",
        "becomes-dir",
        "becomes-file",
    ] {
        set_mtime(&upper.join(path), 1_700_000_000);
    }

    let options = LayerOptions {
        xattrs: true,
        ..LayerOptions::default()
    };
    let layer = layer_from_diff(&lower, &upper, &options).unwrap();

    // The layer holds the changes only, with one whiteout per removed top path.
    let bytes = layer.blob().to_vec().unwrap();
    let tar_bytes = decompress(&bytes, Compression::Gzip);
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let paths: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|entry| String::from_utf8(entry.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    let whiteouts: Vec<&String> = paths.iter().filter(|path| path.contains(".wh.")).collect();
    assert_eq!(whiteouts, ["etc/.wh.removed", ".wh.gone"], "{paths:?}");
    for untouched in [
        "var/empty",
        "var/pipe",
        "dangling",
        "gone/deep",
        "usr/bin/tool",
    ] {
        assert!(!paths.iter().any(|path| path == untouched), "{paths:?}");
    }
    assert!(
        paths.iter().any(|path| path == "unchanged-link"),
        "{paths:?}"
    );

    let result = work.path().join("result");
    copy_tree(&lower, &result);
    apply(&layer, &result);
    assert_same_tree(&result, &upper);

    // Two equal trees make a layer with no entries.
    let empty = layer_from_diff(&upper, &upper, &options).unwrap();
    let bytes = empty.blob().to_vec().unwrap();
    let tar_bytes = decompress(&bytes, Compression::Gzip);
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    assert_eq!(archive.entries().unwrap().count(), 0);
}

#[test]
fn entry_lists_cover_every_kind_and_extract_as_written() {
    let entries = vec![
        LayerEntry::dir("etc", 0o755).with_mtime(1_000),
        LayerEntry::file("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644).with_mtime(1_000),
        LayerEntry::hardlink("etc/passwd-", "etc/passwd"),
        LayerEntry::symlink("etc/link", "passwd").with_mtime(1_000),
        LayerEntry::new("dev/null", EntryKind::CharDevice(1, 3), 0o666),
        LayerEntry::new("run/fifo", EntryKind::Fifo, 0o600),
        LayerEntry::dir(&format!("{}/deep", "long".repeat(40)), 0o700),
        LayerEntry::file(
            &format!("{}/deep/{}", "long".repeat(40), "name".repeat(30)),
            "long",
            0o640,
        ),
        LayerEntry::dir("dev", 0o755),
        LayerEntry::dir("run", 0o755),
    ];
    let layer = layer_from_entries(&entries, &memory(Compression::Zstd)).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let report = apply(&layer, dest.path());
    assert_eq!(report.hardlinks, 1);
    assert_eq!(report.symlinks, 1);
    let root = dest.path();
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd-")).unwrap(),
        "root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        fs::read_link(root.join("etc/link")).unwrap(),
        Path::new("passwd")
    );
    let long = root
        .join("long".repeat(40))
        .join("deep")
        .join(OsStr::new(&"name".repeat(30)));
    assert_eq!(fs::read_to_string(long).unwrap(), "long");
    let tree = Tree::snapshot(root).unwrap();
    assert_eq!(tree.entries["run/fifo"].kind, tank_testkit::Kind::Fifo);
    assert_eq!(tree.entries["etc/passwd"].mtime, 1_000);
    assert_eq!(
        tree.hardlinks,
        vec![vec!["etc/passwd".to_owned(), "etc/passwd-".to_owned()]]
    );
}

#[test]
fn blobs_of_several_gzip_members_or_zstd_frames_hash_their_whole_stream() {
    let data: Vec<u8> = (0..20_000_u32).flat_map(u32::to_le_bytes).collect();
    let (head, tail) = data.split_at(30_000);
    let mut zstd_frames = zstd::encode_all(head, 3).unwrap();
    zstd_frames.extend(zstd::encode_all(tail, 3).unwrap());
    let gzip_member = |part: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, part).unwrap();
        encoder.finish().unwrap()
    };
    let mut gzip_members = gzip_member(head);
    gzip_members.extend(gzip_member(tail));
    let expected = Digest::of(Algorithm::Sha256, &data);
    for (bytes, compression) in [
        (zstd_frames, Compression::Zstd),
        (gzip_members, Compression::Gzip),
    ] {
        let blob = LayerBlob::from_compressed(bytes.clone(), compression).unwrap();
        assert_eq!(*blob.diff_id(), expected, "{compression}");
        assert_eq!(*blob.digest(), Digest::of(Algorithm::Sha256, &bytes));
    }
}
