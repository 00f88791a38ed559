//! `cargo xtask bench`: tank's pull against skopeo + umoci and podman, and against the
//! machine's limit, on images built here without internet (issue 5).
//!
//! 1. Installs what is missing (docker-registry, skopeo, umoci, podman, debootstrap, curl,
//!    zstd), builds `tank` and xtask itself in release, and continues in the release xtask
//!    (the image builder, hashers and decoders run at full speed there).
//! 2. Builds the images (cached in `target/bench/images/`, the Debian userland in
//!    `target/bench/base/`), starts docker-registry on loopback and pushes them with skopeo.
//! 3. For each image, a warm-up round then `--runs` rounds, each running in turn tank cold,
//!    skopeo copy, umoci unpack, tank warm, podman cold, tank --offline, podman warm; every
//!    command measured alone (wall time, CPU time, peak RSS from wait4). Every round writes
//!    into fresh directories, and no tree is removed until the whole bench is measured (see
//!    [`trees`]: ext4 without a journal slows file creation after deletions); `--keep`
//!    leaves them for inspection.
//! 4. Compares tank's rootfs with umoci's, measures each pull stage alone (the limit), and
//!    prints and writes the tables: `docs/BENCHMARKS.md` (`--quick`:
//!    `target/bench/BENCHMARKS-quick.md`).

mod images;
mod layer;
mod limit;
mod measure;
mod method;
mod report;
mod stats;
mod trees;
mod userland;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use tank_testkit::{Kind, Registry, Tree};

use images::{Image, ImageName, Workspace};
use measure::{Logs, Sample, measure};
use trees::{RoundDirs, Trees};

/// Set in the environment of the release xtask the bench continues in.
const CHILD_VARIABLE: &str = "XTASK_BENCH_RELEASE";
/// Rounds measured per image unless `--runs` says otherwise.
const DEFAULT_RUNS: usize = 5;

/// What `cargo xtask bench` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// Measured rounds per image (after one warm-up round).
    pub(crate) runs: usize,
    /// The images, in the order given (all by default).
    pub(crate) images: Vec<ImageName>,
    /// Small images: a smoke run.
    pub(crate) quick: bool,
    /// Rebuild the Debian userland and the images even if cached.
    pub(crate) rebuild: bool,
    /// Leave every run's trees under `target/bench/work/` when the bench ends.
    pub(crate) keep: bool,
}

/// The bench or one of its in-process helpers.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Bench(Options),
    Helper(String, Vec<String>),
}

fn parse(options: &[String]) -> anyhow::Result<Mode> {
    let mut parsed = Options {
        runs: DEFAULT_RUNS,
        images: ImageName::ALL.to_vec(),
        quick: false,
        rebuild: false,
        keep: false,
    };
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--runs" => {
                let value = options.next().context("--runs needs a number")?;
                parsed.runs = value
                    .parse::<usize>()
                    .ok()
                    .filter(|runs| (1..=1000).contains(runs))
                    .with_context(|| format!("--runs {value:?} is not a number from 1 to 1000"))?;
            }
            "--images" => {
                let value = options
                    .next()
                    .context("--images needs a list such as big-1,many-files")?;
                let mut images = Vec::new();
                for name in value.split(',').filter(|name| !name.is_empty()) {
                    let image = ImageName::parse(name)?;
                    if !images.contains(&image) {
                        images.push(image);
                    }
                }
                if images.is_empty() {
                    bail!("--images {value:?} names no image");
                }
                parsed.images = images;
            }
            "--quick" => parsed.quick = true,
            "--rebuild" => parsed.rebuild = true,
            "--keep" => parsed.keep = true,
            "--helper" => {
                let operation = options.next().context("--helper needs an operation")?;
                return Ok(Mode::Helper(operation.clone(), options.cloned().collect()));
            }
            other => bail!("unknown option {other:?} for `bench`\n{}", super::USAGE),
        }
    }
    Ok(Mode::Bench(parsed))
}

impl Options {
    /// The options as given on the command line, for "how to reproduce".
    fn command_line(&self) -> String {
        let mut line = "cargo xtask bench".to_owned();
        if self.quick {
            line.push_str(" --quick");
        }
        if self.runs != DEFAULT_RUNS {
            line.push_str(&format!(" --runs {}", self.runs));
        }
        if self.images != ImageName::ALL {
            let names: Vec<&str> = self.images.iter().map(|image| image.as_str()).collect();
            line.push_str(&format!(" --images {}", names.join(",")));
        }
        line
    }
}

/// `cargo xtask bench [options]`.
pub(crate) fn bench(arguments: &[String]) -> anyhow::Result<()> {
    let options = match parse(arguments)? {
        Mode::Helper(operation, arguments) if operation == "run" => {
            return measure::launch(&arguments);
        }
        Mode::Helper(operation, files) => return limit::helper(&operation, &files),
        Mode::Bench(options) => options,
    };
    if env::var_os(CHILD_VARIABLE).is_some() {
        return run_bench(&options);
    }
    ensure_bench_tools()?;
    let mut build = crate::tools::cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "tank",
        "--package",
        "xtask",
    ]);
    crate::tools::run_command(build)?;
    let release = super::workspace_root().join("target/release/xtask");
    let status = Command::new(&release)
        .arg("bench")
        .args(arguments)
        .env(CHILD_VARIABLE, "1")
        .current_dir(super::workspace_root())
        .status()
        .with_context(|| format!("starting {}", release.display()))?;
    if !status.success() {
        bail!("the bench failed ({status})");
    }
    Ok(())
}

/// The programs the bench runs, each with its Debian package.
const BENCH_TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("podman", "podman"),
    ("debootstrap", "debootstrap"),
    ("curl", "curl"),
    ("zstd", "zstd"),
    ("pigz", "pigz"),
];

/// Installs the missing bench tools with apt-get (the bench needs root for debootstrap).
fn ensure_bench_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = BENCH_TOOLS
        .iter()
        .filter(|(program, _)| !crate::tools::on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::tools::running_as_root() || !crate::tools::on_path("apt-get") {
        bail!(
            "missing {}: install them first (as root: `apt-get install -y {}`)",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("xtask bench: installing {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    crate::tools::run_command(update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    crate::tools::run_command(install)
}

/// Flushes dirty pages, so one run's writeback does not land in the next run's time.
fn sync() {
    let _ = Command::new("sync").status();
}

/// Each variant's samples over the measured rounds of one image.
#[derive(Clone, Debug, Default)]
pub(crate) struct Runs {
    pub(crate) tank_cold: Vec<Sample>,
    pub(crate) tank_warm: Vec<Sample>,
    pub(crate) tank_offline: Vec<Sample>,
    pub(crate) skopeo: Vec<Sample>,
    pub(crate) umoci: Vec<Sample>,
    pub(crate) podman_cold: Vec<Sample>,
    pub(crate) podman_warm: Vec<Sample>,
}

/// The comparison of tank's rootfs with umoci's.
#[derive(Clone, Debug)]
pub(crate) struct Equality {
    /// Paths in umoci's rootfs.
    pub(crate) paths: usize,
    /// Differences, empty when equal.
    pub(crate) differences: Vec<String>,
}

/// Everything measured for one image.
pub(crate) struct ImageResult {
    pub(crate) image: Image,
    pub(crate) reference: String,
    pub(crate) runs: Runs,
    /// Why podman could not run, if it could not.
    pub(crate) podman_error: Option<String>,
    /// Why umoci could not unpack the image, if it could not (the rootfs check then unpacks
    /// a gzip twin of the image).
    pub(crate) umoci_error: Option<String>,
    pub(crate) equality: Equality,
    pub(crate) limit: limit::Limit,
}

fn run_bench(options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = super::workspace_root();
    let bench_dir = root.join("target/bench");
    let tank = root.join("target/release/tank");
    let helper = root.join("target/release/xtask");
    let logs = Logs::new(&bench_dir.join("logs"))?.with_launcher(&helper);
    // Described now, while the commit is the one `tank` was just built from.
    let (floor, _) = measure(&mut Command::new("true"), &logs, "rss-floor")?;
    let mut machine = report::Machine::describe(&root, &tank, floor.max_rss);
    let workspace = Workspace {
        root: bench_dir.clone(),
    };

    let mut base = None;
    let mut base_rebuilt = false;
    if options.images.iter().any(|image| image.needs_base()) {
        let (rootfs, rebuilt) = userland::ensure_base(&bench_dir.join("base"), options.rebuild)?;
        base = Some(rootfs);
        base_rebuilt = rebuilt;
    }
    let mut built = Vec::new();
    for name in &options.images {
        let rebuild = options.rebuild || (base_rebuilt && name.needs_base());
        built.push(workspace.image(*name, options.quick, rebuild, base.as_deref())?);
    }

    let mut trees = Trees::new(&bench_dir, &env::temp_dir(), options.keep, trees::SETTLE)?;
    eprintln!(
        "xtask bench: every run writes into a fresh folder below {}",
        trees.run_dir().display()
    );
    let registry_dir = bench_dir.join("registry");
    // Set aside, not deleted: removed with the other trees at the end.
    trees.set_aside(&registry_dir)?;
    let registry = Registry::builder().root_dir(&registry_dir).start()?;
    eprintln!(
        "xtask bench: registry {} (pid {})",
        registry.url(),
        registry.pid()
    );
    // Seeded through tank's own push (tank-image's layout -> registry copy); skopeo is one
    // of the measured tools, not the seeder.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    let client = tank_registry::Client::new(tank_registry::ClientConfig::default())?;
    let mut pushed = Vec::new();
    for image in built {
        let repository = format!("bench/{}", image.name);
        eprintln!("xtask bench: pushing {repository} with tank");
        let reference = format!("{}/{repository}:latest", registry.host());
        crate::registry::push_layout(&runtime, &client, &image.layout, "latest", &reference)?;
        pushed.push((image, repository, reference));
    }

    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let limit_repeats = options.runs.min(3);
    trees.wait_after_last_removal();
    let mut results = Vec::new();
    for (image, repository, reference) in pushed {
        let need = trees::need(&image, options.runs + 1, limit_repeats);
        let image_dir = trees.start_image(&image, need)?;
        let Rounds {
            runs,
            podman_error,
            umoci_error,
            equality,
        } = run_rounds(
            &image,
            &reference,
            options.runs,
            &tank,
            &trees,
            &image_dir,
            &logs,
        )?;
        eprintln!("xtask bench: {}: measuring the limit", image.name);
        let limit = limit::measure_limit(
            &image,
            &limit::Context {
                registry_url: &registry.url(),
                registry_pid: registry.pid(),
                repository: &repository,
                helper: &helper,
                scratch: &image_dir,
                logs: &logs,
                repeats: limit_repeats,
                cores,
            },
        )?;
        let result = ImageResult {
            image,
            reference,
            runs,
            podman_error,
            umoci_error,
            equality,
            limit,
        };
        println!("{}", report::image_section(&result));
        results.push(result);
    }
    drop(registry);

    let elapsed = started.elapsed();
    machine.add_load_average();
    machine.add(
        "trees removed while the bench ran",
        if trees.removals.is_empty() {
            "none (every run wrote into a fresh folder; all were removed after the last \
             measurement)"
                .to_owned()
        } else {
            trees.removals.join("; ")
        },
    );
    let cleanup = trees.finish()?;
    eprintln!("xtask bench: {cleanup}");
    let document = report::document(
        options,
        &options.command_line(),
        &machine,
        &results,
        elapsed,
    );
    let output = if options.quick {
        bench_dir.join("BENCHMARKS-quick.md")
    } else {
        root.join("docs/BENCHMARKS.md")
    };
    if let Some(parent) = output.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(&output, &document).with_context(|| format!("writing {}", output.display()))?;
    println!("{}", report::summary_table(&results));
    println!(
        "xtask bench: wrote {} (bench wall time {})",
        output.display(),
        stats::format_seconds(elapsed.as_secs_f64())
    );
    Ok(())
}

/// What the rounds of one image found.
struct Rounds {
    runs: Runs,
    podman_error: Option<String>,
    umoci_error: Option<String>,
    equality: Equality,
}

/// The warm-up round and `runs` measured rounds of one image, then the rootfs comparison.
fn run_rounds(
    image: &Image,
    reference: &str,
    runs: usize,
    tank: &Path,
    trees: &Trees,
    image_dir: &Path,
    logs: &Logs,
) -> anyhow::Result<Rounds> {
    let name = image.name.as_str();
    let mut recorded = Runs::default();
    let mut podman_error: Option<String> = None;
    let mut umoci_error: Option<String> = None;
    let mut tank_rootfs = None;
    let mut umoci_bundle = None;
    let home = image_dir.join("home");
    fs::create_dir(&home).with_context(|| format!("creating {}", home.display()))?;
    let tank_pull = |dirs: &RoundDirs, offline: bool| {
        let mut command = Command::new(tank);
        // No credentials of this machine: a scratch HOME and Docker config.
        command
            .env("HOME", &home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env("XDG_RUNTIME_DIR", &home)
            .env_remove("REGISTRY_AUTH_FILE")
            .arg("pull")
            .arg("--cache")
            .arg(&dirs.cache);
        if offline {
            command.arg("--offline");
        }
        command.arg(reference);
        command
    };
    let podman = |dirs: &RoundDirs| {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(&dirs.podman_root)
            .arg("--runroot")
            .arg(&dirs.podman_runroot)
            .args([
                "--storage-driver",
                "vfs",
                "pull",
                "--tls-verify=false",
                reference,
            ]);
        command
    };
    for round in 0..=runs {
        // Fresh folders: nothing is deleted while the bench measures (see `trees`).
        let dirs = trees.round(image_dir, round)?;
        let oci_image = format!("{}:bench", dirs.oci.display());
        let label = |variant: &str| format!("{name}-{round}-{variant}");
        eprintln!(
            "xtask bench: {name}: {}",
            if round == 0 {
                "warm-up round".to_owned()
            } else {
                format!("round {round} of {runs}")
            }
        );
        let mut samples: Vec<(&str, Sample)> = Vec::new();

        sync();
        let (sample, stdout) = measure(&mut tank_pull(&dirs, false), logs, &label("tank-cold"))?;
        tank_rootfs = stdout.lines().last().map(PathBuf::from);
        samples.push(("tank_cold", sample));

        sync();
        let mut skopeo = Command::new("skopeo");
        skopeo
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
            ])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{oci_image}"));
        samples.push(("skopeo", measure(&mut skopeo, logs, &label("skopeo"))?.0));
        let mut umoci = Command::new("umoci");
        umoci
            .args(["unpack", "--rootless", "--image", &oci_image])
            .arg(&dirs.bundle);
        if umoci_error.is_none() {
            match measure(&mut umoci, logs, &label("umoci")) {
                Ok((sample, _)) => {
                    samples.push(("umoci", sample));
                    umoci_bundle = Some(dirs.bundle.clone());
                }
                Err(error) => umoci_error = Some(format!("{error:#}")),
            }
        }

        samples.push((
            "tank_warm",
            measure(&mut tank_pull(&dirs, false), logs, &label("tank-warm"))?.0,
        ));

        if podman_error.is_none() {
            sync();
            match measure(&mut podman(&dirs), logs, &label("podman-cold")) {
                Ok((sample, _)) => samples.push(("podman_cold", sample)),
                Err(error) => podman_error = Some(format!("{error:#}")),
            }
        }

        samples.push((
            "tank_offline",
            measure(&mut tank_pull(&dirs, true), logs, &label("tank-offline"))?.0,
        ));

        if podman_error.is_none() {
            match measure(&mut podman(&dirs), logs, &label("podman-warm")) {
                Ok((sample, _)) => samples.push(("podman_warm", sample)),
                Err(error) => podman_error = Some(format!("{error:#}")),
            }
        }

        if round > 0 {
            for (variant, sample) in samples {
                let list = match variant {
                    "tank_cold" => &mut recorded.tank_cold,
                    "tank_warm" => &mut recorded.tank_warm,
                    "tank_offline" => &mut recorded.tank_offline,
                    "skopeo" => &mut recorded.skopeo,
                    "umoci" => &mut recorded.umoci,
                    "podman_cold" => &mut recorded.podman_cold,
                    _ => &mut recorded.podman_warm,
                };
                list.push(sample);
            }
        }
    }
    if let Some(error) = &podman_error {
        eprintln!("xtask bench: {name}: podman failed, its rows are left out:\n{error}");
    }

    eprintln!("xtask bench: {name}: comparing tank's rootfs with umoci's");
    let tank_rootfs = tank_rootfs.context("tank pull printed no rootfs path")?;
    let umoci_rootfs = match (&umoci_error, umoci_bundle) {
        (None, Some(bundle)) => bundle.join("rootfs"),
        (None, None) => bail!("umoci never ran"),
        (Some(error), _) => {
            eprintln!(
                "xtask bench: {name}: umoci failed, so its rows are left out and the rootfs \
                 check unpacks a gzip copy of the image:\n{error}"
            );
            let twin_dir = image_dir.join("twin");
            let twin = layer::gzip_twin(image, &twin_dir)?;
            let unpack_dir = twin_dir.join("umoci");
            fs::create_dir_all(&unpack_dir)
                .with_context(|| format!("creating {}", unpack_dir.display()))?;
            tank_testkit::umoci_unpack(&twin, "latest", &unpack_dir)?
        }
    };
    let equality = compare_trees(&tank_rootfs, &umoci_rootfs)?;
    Ok(Rounds {
        runs: recorded,
        podman_error,
        umoci_error,
        equality,
    })
}

/// Compares tank's rootfs with umoci's as the CLI tests do: directory mtimes are left out
/// (tank, like containerd, sets only the mtimes of directories a layer lists) and so is
/// umoci's `user.rootlesscontainers` xattr (the owners it could not set).
fn compare_trees(ours: &Path, theirs: &Path) -> anyhow::Result<Equality> {
    let snapshot = |root: &Path| -> anyhow::Result<Tree> {
        let mut tree =
            Tree::snapshot(root).with_context(|| format!("reading the tree {}", root.display()))?;
        for entry in tree.entries.values_mut() {
            if entry.kind == Kind::Dir {
                entry.mtime = 0;
            }
            entry.xattrs.remove("user.rootlesscontainers");
        }
        Ok(tree)
    };
    let (ours, theirs) = (snapshot(ours)?, snapshot(theirs)?);
    let mut differences = ours.differences(&theirs, "tank", "umoci");
    if theirs.entries.is_empty() {
        differences.push("  umoci unpacked nothing".to_owned());
    }
    Ok(Equality {
        paths: theirs.entries.len(),
        differences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(arguments: &[&str]) -> anyhow::Result<Mode> {
        let arguments: Vec<String> = arguments.iter().map(|&a| a.to_owned()).collect();
        parse(&arguments)
    }

    fn options(arguments: &[&str]) -> Options {
        match parse_strs(arguments).unwrap() {
            Mode::Bench(options) => options,
            Mode::Helper(..) => panic!("{arguments:?} parsed as a helper"),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let defaults = options(&[]);
        assert_eq!(defaults.runs, 5);
        assert_eq!(defaults.images, ImageName::ALL.to_vec());
        assert!(!defaults.quick && !defaults.rebuild && !defaults.keep);
        assert_eq!(defaults.command_line(), "cargo xtask bench");

        let chosen = options(&[
            "--runs",
            "3",
            "--images",
            "many-files,big-1,many-files",
            "--quick",
            "--rebuild",
            "--keep",
        ]);
        assert_eq!(chosen.runs, 3);
        assert_eq!(chosen.images, vec![ImageName::ManyFiles, ImageName::Big1]);
        assert!(chosen.quick && chosen.rebuild && chosen.keep);
        assert_eq!(
            chosen.command_line(),
            "cargo xtask bench --quick --runs 3 --images many-files,big-1"
        );
    }

    #[test]
    fn helpers_take_the_rest_of_the_line() {
        assert_eq!(
            parse_strs(&["--helper", "gunzip", "a", "--runs"]).unwrap(),
            Mode::Helper("gunzip".into(), vec!["a".into(), "--runs".into()])
        );
    }

    #[test]
    fn bad_options_are_refused() {
        for arguments in [
            &["--runs"][..],
            &["--runs", "0"],
            &["--runs", "many"],
            &["--images"],
            &["--images", "big-2"],
            &["--images", ","],
            &["--helper"],
            &["--fast"],
        ] {
            assert!(parse_strs(arguments).is_err(), "{arguments:?} was accepted");
        }
    }

    #[test]
    fn equal_trees_compare_equal_and_a_changed_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let write = |path: &Path, text: &str| {
            fs::write(path, text).unwrap();
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(time)
                .unwrap();
        };
        for root in [&a, &b] {
            fs::create_dir_all(root.join("etc")).unwrap();
            write(&root.join("etc/motd"), "hi");
        }
        let equal = compare_trees(&a, &b).unwrap();
        assert_eq!(equal.paths, 2);
        assert!(equal.differences.is_empty(), "{:?}", equal.differences);
        write(&b.join("etc/motd"), "ho");
        let differ = compare_trees(&a, &b).unwrap();
        assert_eq!(differ.differences.len(), 1, "{:?}", differ.differences);
        assert!(differ.differences[0].contains("etc/motd"));
    }
}
