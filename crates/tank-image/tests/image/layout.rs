//! OCI image layouts: assemble -> write -> read gives the same digests and bytes; skopeo
//! reads what tank writes (`inspect --raw`, `copy`) and tank reads what skopeo copies;
//! multi-platform indexes; tampered blobs and unknown tags are refused.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use tank_image::{
    AssembleOptions, Compression, Error, Format, Image, ImageIndex, ImageOrIndex, IndexOptions,
    LayerEntry, LayerOptions, LayoutItem, Platform, assemble, layer_from_entries, read_layout,
    write_layout,
};
use tank_reference::{Algorithm, Digest};
use tank_testkit::{CopyOptions, LayoutSource, skopeo_copy, skopeo_inspect_raw};

fn image(architecture: &str, format: Format, tag: Option<&str>, file_backed: bool) -> Image {
    let options = LayerOptions {
        compression: Compression::Gzip,
        in_memory: !file_backed,
        mtime: Some(1_700_000_000),
        ..LayerOptions::default()
    };
    let base = layer_from_entries(
        &[
            LayerEntry::dir("etc", 0o755),
            LayerEntry::file("etc/arch", architecture, 0o644),
            LayerEntry::file("big", vec![42_u8; 300_000], 0o644),
        ],
        &options,
    )
    .unwrap();
    let top = layer_from_entries(
        &[
            LayerEntry::symlink("arch", "etc/arch"),
            LayerEntry::whiteout("big"),
        ],
        &LayerOptions {
            compression: Compression::None,
            ..options.clone()
        },
    )
    .unwrap();
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "history": [{"created_by": "base"}, {"created_by": "top"}],
    });
    let annotations = match format {
        Format::Oci => BTreeMap::from([(
            "org.opencontainers.image.title".to_owned(),
            format!("test {architecture}"),
        )]),
        Format::DockerV2 => BTreeMap::new(),
    };
    assemble(
        config,
        vec![base, top],
        &AssembleOptions {
            format,
            annotations,
            tag: tag.map(str::to_owned),
            created: Some("2024-05-06T07:08:09Z".to_owned()),
        },
    )
    .unwrap()
}

fn same_image(read: &Image, written: &Image) {
    assert_eq!(read.manifest_digest(), written.manifest_digest());
    assert_eq!(read.manifest_bytes(), written.manifest_bytes());
    assert_eq!(read.config_bytes(), written.config_bytes());
    assert_eq!(read.config_descriptor(), written.config_descriptor());
    assert_eq!(read.format(), written.format());
    assert_eq!(read.annotations(), written.annotations());
    assert_eq!(read.platform(), written.platform());
    assert_eq!(read.layers().len(), written.layers().len());
    for ((read_descriptor, read_diff_id, read_blob), (descriptor, diff_id, blob)) in
        read.layers().zip(written.layers())
    {
        assert_eq!(read_descriptor, descriptor);
        assert_eq!(read_diff_id, diff_id);
        assert_eq!(read_blob.compression(), blob.compression());
        assert_eq!(
            read_blob.blob().to_vec().unwrap(),
            blob.blob().to_vec().unwrap()
        );
    }
}

fn blob_file(layout: &Path, digest: &Digest) -> std::path::PathBuf {
    layout.join("blobs").join("sha256").join(digest.hex())
}

#[test]
fn write_then_read_gives_back_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let oci = image("amd64", Format::Oci, Some("v1"), true);
    let docker = image("arm64", Format::DockerV2, None, false);
    write_layout(
        dir.path(),
        &[
            (None, LayoutItem::from(&oci)),
            (Some("docker"), (&docker).into()),
        ],
    )
    .unwrap();

    assert_eq!(
        fs::read_to_string(dir.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: Value =
        serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
    // Every blob file holds bytes matching its name.
    for item in fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
        let path = item.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(
            Digest::of(Algorithm::Sha256, &bytes).hex(),
            path.file_name().unwrap().to_str().unwrap()
        );
    }

    let layout = read_layout(dir.path()).unwrap();
    assert_eq!(layout.tags().collect::<Vec<_>>(), ["v1", "docker"]);
    let entry = layout.resolve("v1").unwrap();
    assert_eq!(entry.descriptor().digest(), oci.manifest_digest());
    assert_eq!(
        entry.platform(),
        Some(&Platform::new("linux", "amd64", None))
    );
    let ImageOrIndex::Image(read) = layout.read("v1").unwrap() else {
        panic!("v1 is an image");
    };
    same_image(&read, &oci);
    assert_eq!(read.tag(), Some("v1"));
    // Layers read back are the layout's files, not copies.
    let (descriptor, _, blob) = read.layers().next().unwrap();
    assert_eq!(
        blob.blob(),
        tank_image::BlobRef::File(&blob_file(dir.path(), descriptor.digest()))
    );
    let ImageOrIndex::Image(read) = layout.read("docker").unwrap() else {
        panic!("docker is an image");
    };
    same_image(&read, &docker);

    // Writing again moves a tag and keeps the others.
    let moved = image("s390x", Format::Oci, None, false);
    write_layout(dir.path(), &[(Some("v1"), (&moved).into())]).unwrap();
    let layout = read_layout(dir.path()).unwrap();
    assert_eq!(layout.tags().collect::<Vec<_>>(), ["docker", "v1"]);
    assert_eq!(
        layout.resolve("v1").unwrap().descriptor().digest(),
        moved.manifest_digest()
    );

    let error = layout.read("absent").unwrap_err();
    assert!(
        matches!(error, Error::TagNotFound { ref tag, .. } if tag == "absent"),
        "{error}"
    );
    let error = write_layout(dir.path(), &[(Some("no spaces"), (&moved).into())]).unwrap_err();
    assert!(matches!(error, Error::InvalidTag { .. }), "{error}");
    let error = write_layout(
        dir.path(),
        &[
            (Some("twice"), (&moved).into()),
            (Some("twice"), (&oci).into()),
        ],
    )
    .unwrap_err();
    assert!(matches!(error, Error::InvalidTag { .. }), "{error}");
}

#[test]
fn tampered_blobs_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let written = image("amd64", Format::Oci, Some("v1"), false);
    write_layout(dir.path(), &[(None, (&written).into())]).unwrap();
    let (descriptor, _, _) = written.layers().nth(1).unwrap();
    let layer_path = blob_file(dir.path(), descriptor.digest());
    let mut bytes = fs::read(&layer_path).unwrap();
    bytes[600] ^= 0xff;
    fs::write(&layer_path, &bytes).unwrap();
    let error = read_layout(dir.path()).unwrap().read("v1").unwrap_err();
    match &error {
        Error::BlobMismatch {
            path,
            expected,
            actual,
            ..
        } => {
            assert_eq!(path, &layer_path);
            assert_eq!(expected, &descriptor.digest().to_string());
            assert_ne!(actual, expected);
        }
        other => panic!("expected a blob mismatch, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains(&layer_path.display().to_string()),
        "{error}"
    );

    // A config of the wrong size is refused too.
    let config_path = blob_file(dir.path(), written.config_descriptor().digest());
    fs::write(&config_path, b"{}").unwrap();
    let error = read_layout(dir.path()).unwrap().read("v1").unwrap_err();
    assert!(
        matches!(&error, Error::BlobMismatch { path, actual_size: 2, .. } if *path == config_path),
        "{error}"
    );
}

#[test]
fn skopeo_reads_and_copies_the_written_layout() {
    let dir = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let written = image("amd64", Format::Oci, Some("v1"), true);
    write_layout(dir.path(), &[(None, (&written).into())]).unwrap();

    let source = format!("oci:{}:v1", dir.path().display());
    let raw = skopeo_inspect_raw(&source, None).expect("skopeo inspect --raw");
    assert_eq!(raw, written.manifest_bytes());

    let destination = format!("oci:{}:copied", copy.path().display());
    skopeo_copy(
        &source,
        &destination,
        &CopyOptions {
            preserve_digests: true,
            ..CopyOptions::default()
        },
    )
    .expect("skopeo copy oci -> oci");
    // tank reads skopeo's layout back, with the same manifest digest and bytes.
    let layout = read_layout(copy.path()).unwrap();
    let ImageOrIndex::Image(read) = layout.read("copied").unwrap() else {
        panic!("copied is an image");
    };
    same_image(&read, &written);
}

#[test]
fn skopeo_reads_docker_manifests_written_by_tank() {
    let dir = tempfile::tempdir().unwrap();
    let written = image("amd64", Format::DockerV2, Some("d"), false);
    write_layout(dir.path(), &[(None, (&written).into())]).unwrap();
    // skopeo's oci: transport refuses Docker media types in index.json; the testkit hands
    // it the same blobs in its dir: format.
    let source = LayoutSource::new(dir.path(), "d").unwrap();
    let raw = skopeo_inspect_raw(source.reference(), None).expect("skopeo inspect --raw");
    assert_eq!(raw, written.manifest_bytes());
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy(
        source.reference(),
        &format!("dir:{}", copy.path().display()),
        &CopyOptions {
            preserve_digests: true,
            ..CopyOptions::default()
        },
    )
    .expect("skopeo copy verifies every blob");
}

#[test]
fn multi_platform_indexes_are_written_read_and_understood_by_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let images = vec![
        image("amd64", Format::Oci, None, true),
        image("arm64", Format::Oci, None, false),
    ];
    let index = ImageIndex::new(
        images,
        &IndexOptions {
            format: Format::Oci,
            annotations: BTreeMap::from([("org.example".to_owned(), "multi".to_owned())]),
        },
    )
    .unwrap();
    let single = image("s390x", Format::Oci, None, false);
    write_layout(
        dir.path(),
        &[
            (Some("multi"), (&index).into()),
            (Some("single"), (&single).into()),
        ],
    )
    .unwrap();

    let document: Value = serde_json::from_slice(index.manifest_bytes()).unwrap();
    assert_eq!(
        document["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        document["manifests"][1]["platform"]["architecture"],
        "arm64"
    );
    assert_eq!(
        document["manifests"][0]["digest"],
        index.images()[0].manifest_digest().to_string()
    );

    let source = format!("oci:{}:multi", dir.path().display());
    let raw = skopeo_inspect_raw(&source, None).expect("skopeo inspect --raw of the index");
    assert_eq!(raw, index.manifest_bytes());
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy(
        &source,
        &format!("oci:{}:all", copy.path().display()),
        &CopyOptions {
            all: true,
            preserve_digests: true,
            ..CopyOptions::default()
        },
    )
    .expect("skopeo copy --all of the index");

    for layout_dir in [dir.path(), copy.path()] {
        let layout = read_layout(layout_dir).unwrap();
        let tag = if layout_dir == dir.path() {
            "multi"
        } else {
            "all"
        };
        let ImageOrIndex::Index(read) = layout.read(tag).unwrap() else {
            panic!("{tag} is an index");
        };
        assert_eq!(read.manifest_digest(), index.manifest_digest());
        assert_eq!(read.annotations(), index.annotations());
        for (read_image, written_image) in read.images().iter().zip(index.images()) {
            same_image(read_image, written_image);
        }
        let arm = read
            .image_for(&Platform::new("linux", "arm64", None))
            .unwrap();
        assert_eq!(arm.manifest_digest(), index.images()[1].manifest_digest());
    }
}

#[test]
fn indexes_need_platforms_and_one_format() {
    let no_platform = assemble(json!({"config": {}}), vec![], &AssembleOptions::default()).unwrap();
    let error = ImageIndex::new(vec![no_platform], &IndexOptions::default()).unwrap_err();
    assert!(matches!(error, Error::MissingPlatform { .. }), "{error}");
    let docker = image("amd64", Format::DockerV2, None, false);
    let error = ImageIndex::new(vec![docker.clone()], &IndexOptions::default()).unwrap_err();
    assert!(matches!(error, Error::MixedFormats { .. }), "{error}");
    let list = ImageIndex::new(
        vec![docker],
        &IndexOptions {
            format: Format::DockerV2,
            ..IndexOptions::default()
        },
    )
    .unwrap();
    let document: Value = serde_json::from_slice(list.manifest_bytes()).unwrap();
    assert_eq!(
        document["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(
        document["manifests"][0]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

/// The peak resident set size of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("Linux reports VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_large_layer_goes_through_build_write_and_read_without_being_held_in_memory() {
    const SIZE: usize = 64 * 1024 * 1024;
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    fs::create_dir(&tree).unwrap();
    // Incompressible content, so neither the tar stream nor the compressed blob is small.
    {
        let mut file = std::io::BufWriter::new(fs::File::create(tree.join("big")).unwrap());
        let mut words = tank_testkit::Xorshift::new(0x9e37_79b9_7f4a_7c15);
        let mut chunk = vec![0_u8; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() {
            for bytes in chunk.chunks_mut(8) {
                let word = words.next().expect("xorshift never ends");
                bytes.copy_from_slice(&word.to_le_bytes()[..bytes.len()]);
            }
            std::io::Write::write_all(&mut file, &chunk).unwrap();
        }
    }
    let before = peak_rss_kib();
    let layer = tank_image::layer_from_dir(
        &tree,
        &LayerOptions {
            temp_dir: Some(work.path().to_path_buf()),
            ..LayerOptions::default()
        },
    )
    .unwrap();
    assert!(matches!(layer.blob(), tank_image::BlobRef::File(_)));
    assert!(layer.size() > SIZE as u64, "random bytes do not compress");
    let image = assemble(
        json!({"os": "linux", "architecture": "amd64"}),
        vec![layer],
        &AssembleOptions::default(),
    )
    .unwrap();
    let layout_dir = work.path().join("layout");
    write_layout(&layout_dir, &[(Some("big"), (&image).into())]).unwrap();
    let ImageOrIndex::Image(read) = read_layout(&layout_dir).unwrap().read("big").unwrap() else {
        panic!("big is an image");
    };
    let growth_kib = peak_rss_kib().saturating_sub(before);
    assert_eq!(read.manifest_digest(), image.manifest_digest());
    assert!(
        growth_kib < 24 * 1024,
        "peak memory grew by {growth_kib} KiB for a {SIZE}-byte layer"
    );
    // The layer really holds the file.
    let dest = work.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let (_, diff_id, blob) = read.layers().next().unwrap();
    let report = tank_layer::extract(
        blob.blob().open().unwrap(),
        blob.compression(),
        &dest,
        &tank_layer::ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(report.diff_id, diff_id.to_string());
    assert_eq!(
        Digest::of(Algorithm::Sha256, &fs::read(dest.join("big")).unwrap()),
        Digest::of(Algorithm::Sha256, &fs::read(tree.join("big")).unwrap())
    );
}
