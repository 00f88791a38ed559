//! Load: eight `tank pull` processes at once on one cache, over three images from one
//! docker-registry (several processes per image). Every pull succeeds, every layer is
//! downloaded once, every rootfs equals the one an uninterrupted pull into another cache
//! gives. Wall time and each process's peak RSS (`/usr/bin/time -f %M`) are printed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use tank_testkit::{Registry, Tree};

use crate::crash::{assert_no_temporaries, noisy_image};
use crate::{
    blob_gets, layout_layer_digests, ok, push_image, requests, run, snapshot, stderr, tank,
};

/// Which image each of the eight processes pulls.
const PROCESSES: [&str; 8] = ["a", "b", "c", "a", "b", "c", "a", "a"];

/// Each image's layers, each with this much incompressible data (MiB) and 300 small files.
const LAYERS: usize = 3;
const NOISE_MIB: usize = 8;

/// One image in the registry.
struct Pushed {
    reference: String,
    repository: String,
    layers: Vec<String>,
    tree: Tree,
    rootfs_name: String,
}

/// `tank pull --cache <cache> <reference>` (with [`tank`]'s environment) run by GNU time,
/// which writes the peak RSS in KiB to `rss_file`.
fn timed_pull(home: &Path, rss_file: &Path, cache: &Path, reference: &str) -> Command {
    let tank = tank(home);
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%M", "-o"])
        .arg(rss_file)
        .arg(tank.get_program())
        .args(["pull", "--cache"])
        .arg(cache)
        .arg(reference)
        .env_clear();
    for (key, value) in tank.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command
}

#[test]
fn eight_concurrent_pulls_of_three_images_share_one_cache_and_download_each_layer_once() {
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let registry = Registry::start().expect("docker-registry starts");

    let mut images: BTreeMap<&str, Pushed> = BTreeMap::new();
    for name in ["a", "b", "c"] {
        let layout = work.path().join(format!("layout-{name}"));
        let repository = format!("load/{name}");
        let reference = push_image(
            &registry,
            &layout,
            noisy_image(&format!("load-{name}"), LAYERS, NOISE_MIB << 20, 300),
            &format!("{repository}:1"),
        );
        let layers = layout_layer_digests(&layout, "latest");
        // The reference rootfs, from an uninterrupted pull alone in its own cache.
        let out = ok(run(tank(home)
            .args(["pull", "--cache"])
            .arg(work.path().join(format!("reference-{name}")))
            .arg(&reference)));
        let rootfs = PathBuf::from(out.lines().last().expect("the rootfs path"));
        images.insert(
            name,
            Pushed {
                reference,
                repository,
                layers,
                tree: snapshot(&rootfs),
                rootfs_name: rootfs.file_name().unwrap().to_string_lossy().into_owned(),
            },
        );
    }
    let setup = started.elapsed();
    let before = requests(&registry);

    let cache = work.path().join("shared-cache");
    let load_started = Instant::now();
    let children: Vec<_> = PROCESSES
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let rss_file = work.path().join(format!("rss-{index}"));
            let child = timed_pull(home, &rss_file, &cache, &images[name].reference)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("/usr/bin/time starts tank");
            (index, *name, rss_file, child)
        })
        .collect();
    let mut results = Vec::new();
    for (index, name, rss_file, child) in children {
        let output = child.wait_with_output().expect("the pull is reaped");
        let log = stderr(&output);
        let out = ok(output);
        let rss_kib: u64 = fs::read_to_string(&rss_file)
            .expect("GNU time wrote its report")
            .trim()
            .parse()
            .expect("%M is a number of KiB");
        results.push((index, name, out, log, rss_kib));
    }
    let wall = load_started.elapsed();
    let after = requests(&registry);

    for (index, name, out, _, _) in &results {
        let image = &images[name];
        let rootfs = PathBuf::from(out.lines().last().expect("the rootfs path"));
        assert_eq!(rootfs.parent(), Some(cache.join("rootfs/sha256").as_path()));
        assert_eq!(
            rootfs.file_name().unwrap().to_string_lossy(),
            image.rootfs_name,
            "process {index} ({name})"
        );
        let differences = snapshot(&rootfs).differences(&image.tree, "loaded", "reference");
        assert!(
            differences.is_empty(),
            "process {index} ({name}):\n{}",
            differences.join("\n")
        );
    }
    for (name, image) in &images {
        for layer in &image.layers {
            assert_eq!(
                blob_gets(&after, &image.repository, layer)
                    - blob_gets(&before, &image.repository, layer),
                1,
                "image {name} layer {layer}"
            );
        }
        let pulling = results
            .iter()
            .filter(|(_, pulled, _, log, _)| pulled == name && log.contains("pulling "))
            .count();
        assert_eq!(
            pulling, 1,
            "image {name}: one process builds, the rest wait"
        );
    }
    assert_no_temporaries(&cache, "after the load");

    let peak = results.iter().map(|result| result.4).max().unwrap_or(0);
    let per_child: Vec<String> = results
        .iter()
        .map(|(index, name, _, _, rss)| format!("{index}:{name} {rss} KiB"))
        .collect();
    eprintln!(
        "load: {} processes over {} images ({} layers of {NOISE_MIB} MiB) on one cache: wall {wall:?}; \
         peak RSS {peak} KiB (per process: {}); setup {setup:?}; total {:?}",
        results.len(),
        images.len(),
        images
            .values()
            .map(|image| image.layers.len())
            .sum::<usize>(),
        per_child.join(", "),
        started.elapsed()
    );
}
