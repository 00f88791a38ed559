//! Tests of the builders: digests, media types, configs, indexes and layouts read back.

use std::process::Command;

use super::*;
use crate::sha256_hex;

fn small_image(platform: Platform, content: &str) -> ImageBuilder {
    ImageBuilder::new(platform)
        .layer(&TarBuilder::new().file("etc/content", content, 0o644))
        .cmd(&["/bin/true"])
}

fn parse(blob: &Blob) -> Value {
    serde_json::from_slice(blob.bytes()).unwrap()
}

#[test]
fn platform_parses_and_prints() {
    let platform: Platform = "linux/arm64/v8".parse().unwrap();
    assert_eq!(platform, Platform::new("linux", "arm64").with_variant("v8"));
    assert_eq!(platform.to_string(), "linux/arm64/v8");
    assert_eq!(
        platform.to_json(),
        json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
    );
    assert_eq!("linux/amd64".parse::<Platform>().unwrap().variant(), None);
    for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
        assert!(
            matches!(bad.parse::<Platform>(), Err(Error::InvalidPlatform { input }) if input == bad),
            "{bad:?} parsed"
        );
    }
}

#[test]
fn image_digests_sizes_and_diff_ids_match_the_bytes() {
    let tar = TarBuilder::new().file("a", "alpha", 0o644);
    let built = ImageBuilder::new(Platform::new("linux", "amd64"))
        .layer(&tar)
        .layer_tar(
            TarBuilder::new().file("b", "beta", 0o600).build(),
            Compression::None,
        )
        .env("A=1")
        .entrypoint(&["/entry"])
        .cmd(&["arg"])
        .user("1000:1000")
        .working_dir("/work")
        .label("k", "v")
        .build();

    let manifest = parse(built.manifest());
    assert_eq!(manifest["mediaType"], media_type::OCI_MANIFEST);
    assert_eq!(manifest["config"]["digest"], built.config().digest());
    assert_eq!(manifest["config"]["size"], built.config().size());
    assert_eq!(manifest["config"]["mediaType"], media_type::OCI_CONFIG);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (descriptor, blob) in layers.iter().zip(built.layers()) {
        assert_eq!(descriptor["digest"], sha256_digest(blob.bytes()));
        assert_eq!(descriptor["size"], blob.bytes().len() as u64);
    }
    assert_eq!(layers[0]["mediaType"], media_type::OCI_LAYER_GZIP);
    assert_eq!(layers[1]["mediaType"], media_type::OCI_LAYER);
    assert_eq!(
        built.manifest().digest(),
        sha256_digest(built.manifest().bytes())
    );
    assert_eq!(built.manifest().hex(), sha256_hex(built.manifest().bytes()));

    let config = parse(built.config());
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&tar.build()));
    assert_ne!(config["rootfs"]["diff_ids"][0], layers[0]["digest"]);
    assert_eq!(config["rootfs"]["diff_ids"][1], layers[1]["digest"]);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    assert_eq!(
        built.diff_ids(),
        config["rootfs"]["diff_ids"].as_array().unwrap().as_slice()
    );
    assert_eq!(config["config"]["Env"], json!(["A=1"]));
    assert_eq!(config["config"]["Entrypoint"], json!(["/entry"]));
    assert_eq!(config["config"]["Cmd"], json!(["arg"]));
    assert_eq!(config["config"]["User"], "1000:1000");
    assert_eq!(config["config"]["WorkingDir"], "/work");
    assert_eq!(config["config"]["Labels"], json!({"k": "v"}));
    assert_eq!(config["history"].as_array().unwrap().len(), 2);
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    assert!(config.get("variant").is_none());
}

#[test]
fn explicit_history_replaces_the_generated_one() {
    let built = small_image(Platform::new("linux", "amd64"), "x")
        .history("ADD etc /etc", false)
        .history("ENV A=1", true)
        .build();
    let config = parse(built.config());
    assert_eq!(
        config["history"],
        json!([{"created_by": "ADD etc /etc"}, {"created_by": "ENV A=1", "empty_layer": true}])
    );
}

#[test]
fn raw_config_is_used_verbatim() {
    let lying = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
    let built = small_image(Platform::new("linux", "amd64"), "x")
        .raw_config(lying.clone())
        .build();
    assert_eq!(parse(built.config()), lying);
    assert_eq!(built.diff_ids().len(), 1);
}

#[test]
fn docker_media_types_are_used_throughout() {
    let built = small_image(Platform::new("linux", "amd64"), "x")
        .media_types(MediaTypes::Docker)
        .annotation("ignored", "docker manifests have no annotations")
        .build();
    let manifest = parse(built.manifest());
    assert_eq!(manifest["mediaType"], media_type::DOCKER_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], media_type::DOCKER_CONFIG);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        media_type::DOCKER_LAYER_GZIP
    );
    assert!(manifest.get("annotations").is_none());
    assert_eq!(built.manifest().media_type(), media_type::DOCKER_MANIFEST);

    let oci = small_image(Platform::new("linux", "amd64"), "x")
        .annotation("k", "v")
        .build();
    assert_eq!(parse(oci.manifest())["annotations"], json!({"k": "v"}));
}

#[test]
fn index_lists_each_image_with_its_platform() {
    let index = IndexBuilder::new()
        .image(small_image(Platform::new("linux", "amd64"), "amd64"))
        .image(small_image(
            Platform::new("linux", "arm64").with_variant("v8"),
            "arm64",
        ))
        .build();
    let document = parse(index.index());
    assert_eq!(document["mediaType"], media_type::OCI_INDEX);
    let entries = document["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for (entry, image) in entries.iter().zip(index.images()) {
        assert_eq!(entry["digest"], image.manifest().digest());
        assert_eq!(entry["size"], image.manifest().size());
        assert_eq!(entry["mediaType"], media_type::OCI_MANIFEST);
    }
    assert_eq!(
        entries[1]["platform"],
        json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
    );
    assert_ne!(index.images()[0].layers()[0], index.images()[1].layers()[0]);
    assert_eq!(parse(index.images()[1].config())["variant"], "v8");

    let list = IndexBuilder::new()
        .media_types(MediaTypes::Docker)
        .image(small_image(Platform::new("linux", "amd64"), "a").media_types(MediaTypes::Docker))
        .build();
    let document = parse(list.index());
    assert_eq!(document["mediaType"], media_type::DOCKER_MANIFEST_LIST);
    assert_eq!(
        document["manifests"][0]["mediaType"],
        media_type::DOCKER_MANIFEST
    );
}

#[test]
fn layout_files_are_named_by_the_digest_of_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let summary = OciLayoutBuilder::new()
        .image("one", small_image(Platform::new("linux", "amd64"), "1"))
        .index(
            "many",
            IndexBuilder::new()
                .image(small_image(Platform::new("linux", "amd64"), "2"))
                .image(small_image(
                    Platform::new("linux", "arm").with_variant("v7"),
                    "3",
                )),
        )
        .write(dir.path())
        .unwrap();

    let mut blob_count = 0;
    for entry in fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let bytes = fs::read(entry.path()).unwrap();
        assert_eq!(entry.file_name().to_str().unwrap(), sha256_hex(&bytes));
        blob_count += 1;
    }
    // One image (config, layer, manifest) plus two images and their index.
    assert_eq!(blob_count, 3 + 3 * 2 + 1);

    let layout: Value =
        serde_json::from_slice(&fs::read(dir.path().join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout, json!({"imageLayoutVersion": "1.0.0"}));
    let tags = read_layout_tags(dir.path()).unwrap();
    let names: Vec<&str> = tags.iter().map(|tag| tag.tag.as_str()).collect();
    assert_eq!(names, vec!["one", "many"]);
    assert_eq!(tags[0].digest, summary.get("one").unwrap().digest());
    assert_eq!(tags[0].media_type, media_type::OCI_MANIFEST);
    assert_eq!(tags[1].digest, summary.get("many").unwrap().digest());
    assert_eq!(tags[1].media_type, media_type::OCI_INDEX);
    assert_eq!(tags[1].size, summary.get("many").unwrap().top().size());
    assert!(summary.get("missing").is_none());
}

#[test]
fn reading_a_directory_without_a_layout_fails() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_layout_tags(dir.path()),
        Err(Error::Io { .. })
    ));
    fs::write(dir.path().join("index.json"), "{}").unwrap();
    assert!(matches!(
        read_layout_tags(dir.path()),
        Err(Error::InvalidLayout { .. })
    ));
    fs::write(dir.path().join("index.json"), "not json").unwrap();
    assert!(matches!(
        read_layout_tags(dir.path()),
        Err(Error::Json { .. })
    ));
}

fn skopeo_inspect(dir: &Path, tag: &str, extra: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("inspect")
        .args(extra)
        .arg(format!("oci:{}:{tag}", dir.display()))
        .output()
        .expect("skopeo must be installed (apt-get install skopeo)")
}

#[test]
fn skopeo_reads_images_and_indexes_from_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let summary = OciLayoutBuilder::new()
        .image(
            "single",
            small_image(Platform::new("linux", "amd64"), "s").env("GREETING=hi"),
        )
        .index(
            "multi",
            IndexBuilder::new()
                .image(small_image(Platform::new("linux", "amd64"), "a"))
                .image(small_image(
                    Platform::new("linux", "arm64").with_variant("v8"),
                    "b",
                )),
        )
        .image(
            "docker",
            small_image(Platform::new("linux", "amd64"), "d").media_types(MediaTypes::Docker),
        )
        .write(dir.path())
        .unwrap();

    let output = skopeo_inspect(dir.path(), "single", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(inspected["Digest"], summary.get("single").unwrap().digest());
    assert_eq!(inspected["Env"], json!(["GREETING=hi"]));
    assert_eq!(inspected["Architecture"], "amd64");

    let output = skopeo_inspect(dir.path(), "multi", &["--raw"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, summary.get("multi").unwrap().top().bytes());

    // skopeo 1.9's `oci:` transport refuses Docker media types in index.json, so the
    // Docker image is read through the `dir:` copy that pushes use.
    let source = crate::skopeo::LayoutSource::new(dir.path(), "docker").unwrap();
    assert!(
        source.reference().starts_with("dir:"),
        "{}",
        source.reference()
    );
    let raw = crate::skopeo::skopeo_inspect_raw(source.reference(), None).unwrap();
    assert_eq!(raw, summary.get("docker").unwrap().top().bytes());
    let oci_source = crate::skopeo::LayoutSource::new(dir.path(), "multi").unwrap();
    assert!(
        oci_source.reference().starts_with("oci:"),
        "{}",
        oci_source.reference()
    );

    let output = skopeo_inspect(dir.path(), "absent", &[]);
    assert!(!output.status.success());
}

#[test]
fn building_twice_gives_identical_bytes() {
    let layout = OciLayoutBuilder::new().index(
        "latest",
        IndexBuilder::new()
            .image(small_image(Platform::new("linux", "amd64"), "a"))
            .image(small_image(Platform::new("linux", "arm64"), "b")),
    );
    assert_eq!(layout.build(), layout.build());
}
