//! `cargo xtask bench-fleet`: many `tank pull`s at once, straight from a registry and
//! through a pull-through mirror, counting what the upstream registry serves (issue 8).
//!
//! 1. Builds `target/release/tank`, generates one image (four gzip layers, about 50 MiB,
//!    mostly incompressible, plus a few thousand small files; deterministic, no internet)
//!    as an OCI layout and pushes it with tank's own copy to an upstream docker-registry on
//!    loopback.
//! 2. Per round: N pulls at once straight from the upstream (`direct`); a fresh
//!    pull-through docker-registry (`proxy.remoteurl` = the upstream) and N pulls at once
//!    through it with `--mirror` (`mirror-cold`); N more through the same mirror
//!    (`mirror-warm`). Each pull has its own empty `--cache` and an empty
//!    `--registries-conf`, so this machine's configuration plays no part.
//! 3. Each scenario: wall time until the last pull exits, each pull's wall time (wait4),
//!    every exit status (the bench fails unless all are 0), the upstream's and the mirror's
//!    access logs (blob and manifest requests, bytes), the manifest digest each pull
//!    printed and the rootfs trees of the first and last pull against the first ever.
//! 4. Writes `docs/FLEET.md`.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tank_testkit::{
    ACCESS_LOG_MARKER, ImageBuilder, Kind, LoggedRequest, OciLayoutBuilder, Platform, Registry,
    TarBuilder, Tree, parse_access_log,
};

/// Pulls started at once per scenario unless `--pulls` says otherwise.
const DEFAULT_PULLS: usize = 16;
/// Rounds unless `--rounds` says otherwise.
const DEFAULT_ROUNDS: usize = 3;
/// The longest one scenario (N pulls at once) may take before its pulls are killed.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// The repository and tag the image is pushed to.
const REPOSITORY: &str = "bench/fleet";

/// What `cargo xtask bench-fleet` was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Options {
    /// Pulls started at once per scenario.
    pulls: usize,
    /// Rounds of the three scenarios.
    rounds: usize,
}

impl Options {
    fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            pulls: DEFAULT_PULLS,
            rounds: DEFAULT_ROUNDS,
        };
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            let (target, range) = match argument.as_str() {
                "--pulls" => (&mut options.pulls, 1..=64),
                "--rounds" => (&mut options.rounds, 1..=20),
                other => bail!(
                    "unknown option {other:?} for `bench-fleet`\n{}",
                    super::USAGE
                ),
            };
            let value = arguments
                .next()
                .with_context(|| format!("{argument} needs a number"))?;
            *target = value
                .parse::<usize>()
                .ok()
                .filter(|number| range.contains(number))
                .with_context(|| {
                    format!(
                        "{argument} {value:?} is not a number from {} to {}",
                        range.start(),
                        range.end()
                    )
                })?;
        }
        Ok(options)
    }

    /// The command line that reproduces this run.
    fn command_line(&self) -> String {
        let mut line = "cargo xtask bench-fleet".to_owned();
        if self.pulls != DEFAULT_PULLS {
            line.push_str(&format!(" --pulls {}", self.pulls));
        }
        if self.rounds != DEFAULT_ROUNDS {
            line.push_str(&format!(" --rounds {}", self.rounds));
        }
        line
    }
}

/// The three ways the fleet pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Direct,
    MirrorCold,
    MirrorWarm,
}

impl Scenario {
    const ALL: [Scenario; 3] = [Scenario::Direct, Scenario::MirrorCold, Scenario::MirrorWarm];

    fn name(self) -> &'static str {
        match self {
            Scenario::Direct => "direct",
            Scenario::MirrorCold => "mirror-cold",
            Scenario::MirrorWarm => "mirror-warm",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Scenario::Direct => "every pull straight from the upstream registry",
            Scenario::MirrorCold => {
                "through a pull-through mirror started empty this round (`--mirror`)"
            }
            Scenario::MirrorWarm => {
                "through the same mirror again, which now holds the image (new empty caches)"
            }
        }
    }
}

/// `cargo xtask bench-fleet [--pulls N] [--rounds R]`.
pub(crate) fn bench_fleet(arguments: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(arguments)?;
    let root = super::workspace_root();
    let mut build = crate::tools::cargo();
    build.args(["build", "--release", "--bin", "tank"]);
    crate::tools::run_command(build)?;
    // The bench's own time, without the build.
    let started = Instant::now();
    let tank = root.join("target/release/tank");
    let machine = describe_machine(&root, &tank);

    let work = root.join("target/fleet");
    if work.exists() {
        crate::tools::make_tree_writable(&work);
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let home = work.join("home");
    fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let registries_conf = work.join("registries.conf");
    fs::write(&registries_conf, "").with_context(|| format!("writing {registries_conf:?}"))?;

    let layout = work.join("layout");
    let generated = Instant::now();
    let image = write_image(&layout)?;
    eprintln!(
        "xtask bench-fleet: generated the image ({} blobs, {} in layers) in {:.1} s",
        image.blobs,
        format_bytes(image.layer_bytes),
        generated.elapsed().as_secs_f64()
    );

    let upstream = Registry::builder()
        .root_dir(work.join("upstream"))
        .start()?;
    eprintln!(
        "xtask bench-fleet: upstream registry {} (pid {})",
        upstream.url(),
        upstream.pid()
    );
    let reference = format!("{}/{REPOSITORY}:latest", upstream.host());
    push(&layout, &reference)?;

    let context = Context {
        tank: &tank,
        home: &home,
        registries_conf: &registries_conf,
        reference: &reference,
        image: &image,
        pulls: options.pulls,
    };
    let mut reference_tree = None;
    let mut runs: Vec<(Scenario, Vec<Measured>)> =
        Scenario::ALL.iter().map(|&s| (s, Vec::new())).collect();
    for round in 1..=options.rounds {
        eprintln!("xtask bench-fleet: round {round} of {}", options.rounds);
        let direct = run_scenario(
            &context,
            Scenario::Direct,
            round,
            &work,
            &upstream,
            None,
            &mut reference_tree,
        )?;
        runs[0].1.push(direct);
        let mirror = Registry::builder()
            .root_dir(work.join(format!("mirror-{round}")))
            .proxy(upstream.url(), None)
            .start()?;
        eprintln!(
            "xtask bench-fleet: mirror {} (pid {}, pull-through of {})",
            mirror.url(),
            mirror.pid(),
            upstream.url()
        );
        for (slot, scenario) in [(1, Scenario::MirrorCold), (2, Scenario::MirrorWarm)] {
            let measured = run_scenario(
                &context,
                scenario,
                round,
                &work,
                &upstream,
                Some(&mirror),
                &mut reference_tree,
            )?;
            runs[slot].1.push(measured);
        }
        drop(mirror);
    }
    drop(upstream);
    let elapsed = started.elapsed();

    let document = document(&options, &machine, &image, &runs, elapsed);
    let output = root.join("docs/FLEET.md");
    fs::write(&output, &document).with_context(|| format!("writing {}", output.display()))?;
    println!("{}", summary_table(&runs));
    println!(
        "xtask bench-fleet: wrote {} (bench wall time {:.0} s)",
        output.display(),
        elapsed.as_secs_f64()
    );
    crate::tools::make_tree_writable(&work);
    fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(())
}

/// What the image holds.
struct Image {
    /// Config plus layers: the blobs a cold pull fetches.
    blobs: usize,
    layers: usize,
    layer_bytes: u64,
    /// Config and layer sizes by digest.
    sizes: BTreeMap<String, u64>,
    files: usize,
    manifest_digest: String,
}

/// A deterministic pseudo-random stream (splitmix64): incompressible bytes without a seed
/// file or internet.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn bytes(&mut self, length: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(length + 8);
        while out.len() < length {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(length);
        out
    }

    /// Text-like bytes (words from a small vocabulary): gzip shrinks them, as real
    /// configuration and script files.
    fn text(&mut self, length: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "tank",
            "layer",
            "mirror",
            "registry",
            "blob",
            "digest",
            "manifest",
            "config",
            "=",
            "true",
            "false",
            "/usr/lib",
            "\n",
            "# comment",
            "0.1.0",
            "value",
        ];
        let mut out = Vec::with_capacity(length + 16);
        while out.len() < length {
            let index = usize::try_from(self.below(16)).expect("below 16 fits usize");
            out.extend_from_slice(WORDS[index].as_bytes());
            out.push(b' ');
        }
        out.truncate(length);
        out
    }
}

const MIB: usize = 1024 * 1024;

/// Writes the bench image as an OCI layout into `dir`: a "base" layer of 2000 small
/// files (half text, half random), one 20 MiB random file, four 4 MiB random files and
/// 300 files of 16-64 KiB.
fn write_image(dir: &Path) -> anyhow::Result<Image> {
    let mut random = Random(0x7461_6e6b_666c_6565);
    let mut files = 0;
    let mut base = TarBuilder::new();
    for group in 0..40 {
        base = base.dir(format!("usr/share/fleet/{group:02}"), 0o755);
    }
    for index in 0..2000 {
        let length = usize::try_from(200 + random.below(6000)).expect("small length");
        let content = if index % 2 == 0 {
            random.text(length)
        } else {
            random.bytes(length)
        };
        base = base.file(
            format!("usr/share/fleet/{:02}/file-{index:04}", index % 40),
            content,
            0o644,
        );
        files += 1;
    }
    let big = TarBuilder::new().dir("opt/data", 0o755).file(
        "opt/data/big.bin",
        random.bytes(20 * MIB),
        0o644,
    );
    files += 1;
    let mut medium = TarBuilder::new().dir("opt/medium", 0o755);
    for index in 0..4 {
        medium = medium.file(
            format!("opt/medium/part-{index}.bin"),
            random.bytes(4 * MIB),
            0o644,
        );
        files += 1;
    }
    let mut app = TarBuilder::new().dir("opt/app", 0o755);
    for index in 0..300 {
        let length = usize::try_from(16 * 1024 + random.below(48 * 1024)).expect("small length");
        app = app.file(
            format!("opt/app/lib-{index:03}.so"),
            random.bytes(length),
            0o755,
        );
        files += 1;
    }
    let architecture = match env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let image = ImageBuilder::new(Platform::new("linux", architecture))
        .layer(&base)
        .layer(&big)
        .layer(&medium)
        .layer(&app)
        .cmd(&["/bin/true"])
        .created("2025-01-01T00:00:00Z");
    let summary = OciLayoutBuilder::new()
        .image("latest", image)
        .write(dir)
        .with_context(|| format!("writing the bench image into {}", dir.display()))?;
    let built = summary
        .get("latest")
        .and_then(|built| built.as_image())
        .context("the layout holds the image just built")?;
    Ok(Image {
        blobs: built.layers().len() + 1,
        layers: built.layers().len(),
        layer_bytes: built.layers().iter().map(|layer| layer.size()).sum(),
        sizes: built
            .layers()
            .iter()
            .chain([built.config()])
            .map(|blob| (blob.digest().to_owned(), blob.size()))
            .collect(),
        files,
        manifest_digest: built.manifest().digest().to_owned(),
    })
}

/// Pushes the layout's `latest` to `reference` with tank's own copy.
fn push(layout: &Path, reference: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    let client = tank_registry::Client::new(tank_registry::ClientConfig::default())?;
    crate::registry::push_layout(&runtime, &client, layout, "latest", reference)?;
    eprintln!("xtask bench-fleet: pushed {reference} with tank");
    Ok(())
}

/// What every scenario shares.
struct Context<'a> {
    tank: &'a Path,
    home: &'a Path,
    registries_conf: &'a Path,
    reference: &'a str,
    image: &'a Image,
    pulls: usize,
}

/// One scenario of one round.
struct Measured {
    /// From the first spawn to the last exit.
    total: Duration,
    /// Each pull's wall time, spawn to exit.
    each: Vec<Duration>,
    /// User plus system CPU time of all pulls.
    cpu: Duration,
    upstream: Traffic,
    /// The mirror's own requests, when the pulls went through one.
    mirror: Option<Traffic>,
    /// The messages of the errors the mirror logged.
    mirror_errors: Vec<String>,
}

/// What a registry's access log recorded during one scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Traffic {
    requests: usize,
    blob_gets: usize,
    blob_heads: usize,
    blob_bytes: u64,
    /// Successful blob GETs whose response was shorter than the blob.
    short_blob_gets: usize,
    manifest_gets: usize,
    manifest_heads: usize,
    /// Requests whose User-Agent is tank's (not the mirror's).
    from_tank: usize,
    /// `level=error` lines the registry logged meanwhile.
    errors: usize,
}

/// One access-log line (testkit's parser).
type LogLine = LoggedRequest;

/// The `/v2/` requests of docker-registry's access log, except testkit's markers.
fn parse_log(log: &str) -> Vec<LogLine> {
    let mut requests = parse_access_log(log);
    requests.retain(|request| !request.is_marker());
    requests
}

/// Every request `registry` has logged (after waiting until its log is complete).
/// Also the messages of its `level=error` lines (but the markers').
fn logged(registry: &Registry) -> anyhow::Result<(Vec<LogLine>, Vec<String>)> {
    // Returns once every earlier request's line is in the log.
    registry.requests()?;
    let log = fs::read_to_string(registry.log_path())
        .with_context(|| format!("reading {}", registry.log_path().display()))?;
    let errors = log
        .lines()
        .filter(|line| line.contains("level=error") && !line.contains(ACCESS_LOG_MARKER))
        .map(|line| {
            line.split_once("msg=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(line, |(message, _)| message)
                .to_owned()
        })
        .collect();
    Ok((parse_log(&log), errors))
}

/// The requests logged since `before` (lines, errors), counted; `sizes` are the image's
/// blob sizes by digest.
fn traffic_since(
    now: &(Vec<LogLine>, Vec<String>),
    before: (usize, usize),
    sizes: &BTreeMap<String, u64>,
) -> Traffic {
    Traffic {
        errors: now.1.len().saturating_sub(before.1),
        ..traffic(now.0.get(before.0..).unwrap_or(&[]), sizes)
    }
}

fn traffic(lines: &[LogLine], sizes: &BTreeMap<String, u64>) -> Traffic {
    let mut traffic = Traffic {
        requests: lines.len(),
        ..Traffic::default()
    };
    for line in lines {
        let blob = line.path.contains("/blobs/sha256:");
        let manifest = line.path.contains("/manifests/");
        match (line.method.as_str(), blob, manifest) {
            ("GET", true, _) => {
                traffic.blob_gets += 1;
                if (200..300).contains(&line.status) {
                    traffic.blob_bytes += line.bytes;
                    let digest = line
                        .path
                        .rsplit_once("/blobs/")
                        .map_or("", |(_, digest)| digest);
                    if sizes.get(digest).is_some_and(|&size| line.bytes < size) {
                        traffic.short_blob_gets += 1;
                    }
                }
            }
            ("HEAD", true, _) => traffic.blob_heads += 1,
            ("GET", _, true) => traffic.manifest_gets += 1,
            ("HEAD", _, true) => traffic.manifest_heads += 1,
            _ => {}
        }
        if line.user_agent.starts_with("tank/") {
            traffic.from_tank += 1;
        }
    }
    traffic
}

/// Runs N pulls at once for `scenario`, checks them and counts the registries' requests.
fn run_scenario(
    context: &Context<'_>,
    scenario: Scenario,
    round: usize,
    work: &Path,
    upstream: &Registry,
    mirror: Option<&Registry>,
    reference_tree: &mut Option<Tree>,
) -> anyhow::Result<Measured> {
    let dir = work.join(format!("round-{round}-{}", scenario.name()));
    let mut commands = Vec::new();
    let mut outputs = Vec::new();
    for index in 0..context.pulls {
        let pull_dir = dir.join(format!("pull-{index:02}"));
        fs::create_dir_all(&pull_dir)
            .with_context(|| format!("creating {}", pull_dir.display()))?;
        let out_path = pull_dir.join("stdout.json");
        let err_path = pull_dir.join("stderr.log");
        let out = fs::File::create(&out_path)
            .with_context(|| format!("creating {}", out_path.display()))?;
        let err = fs::File::create(&err_path)
            .with_context(|| format!("creating {}", err_path.display()))?;
        let mut command = Command::new(context.tank);
        // No credentials or registries.conf of this machine.
        command
            .env("HOME", context.home)
            .env("DOCKER_CONFIG", context.home.join(".docker"))
            .env("XDG_RUNTIME_DIR", context.home)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("CONTAINERS_REGISTRIES_CONF")
            .env_remove("RUST_LOG")
            .arg("--registries-conf")
            .arg(context.registries_conf);
        if let Some(mirror) = mirror {
            command.arg("--mirror").arg(mirror.host());
        }
        command
            .arg("pull")
            .arg("--json")
            .arg("--cache")
            .arg(pull_dir.join("cache"))
            .arg(context.reference)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        commands.push(command);
        outputs.push((out_path, err_path));
    }
    let counts = |(lines, errors): (Vec<LogLine>, Vec<String>)| (lines.len(), errors.len());
    let upstream_before = counts(logged(upstream)?);
    let mirror_before = match mirror {
        Some(mirror) => counts(logged(mirror)?),
        None => (0, 0),
    };
    // Earlier writes flushed, so their writeback does not land in this scenario's time.
    let _ = Command::new("sync").status();
    let finished = run_all(commands, SCENARIO_TIMEOUT)
        .with_context(|| format!("round {round}, {}", scenario.name()))?;
    let sizes = &context.image.sizes;
    let upstream_traffic = traffic_since(&logged(upstream)?, upstream_before, sizes);
    let mut mirror_errors = Vec::new();
    let mirror_traffic = match mirror {
        Some(mirror) => {
            let now = logged(mirror)?;
            mirror_errors = now.1.get(mirror_before.1..).unwrap_or(&[]).to_vec();
            Some(traffic_since(&now, mirror_before, sizes))
        }
        None => None,
    };

    let mut failures = Vec::new();
    for run in &finished {
        if run.status != Some(0) {
            let (_, err_path) = &outputs[run.index];
            let stderr = fs::read_to_string(err_path).unwrap_or_default();
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "pull {} exited with {}:\n{}",
                run.index,
                run.status
                    .map_or_else(|| "a signal".to_owned(), |code| format!("code {code}")),
                tail.join("\n")
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "round {round}, {}: {} of {} pulls failed\n{}",
            scenario.name(),
            failures.len(),
            finished.len(),
            failures.join("\n")
        );
    }
    let mut rootfs = Vec::new();
    for (out_path, _) in &outputs {
        let text = fs::read_to_string(out_path)
            .with_context(|| format!("reading {}", out_path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not tank pull's JSON", out_path.display()))?;
        let digest = value["manifest_digest"].as_str().unwrap_or_default();
        if digest != context.image.manifest_digest {
            bail!(
                "{}: pulled manifest {digest:?}, pushed {}",
                out_path.display(),
                context.image.manifest_digest
            );
        }
        rootfs.push(PathBuf::from(value["rootfs"].as_str().with_context(
            || format!("{} names no rootfs", out_path.display()),
        )?));
    }
    let mut checked = vec![0];
    if rootfs.len() > 1 {
        checked.push(rootfs.len() - 1);
    }
    for index in checked {
        let tree = snapshot(&rootfs[index])?;
        match reference_tree {
            None => {
                if tree.entries.len() < context.image.files {
                    bail!(
                        "{} holds {} paths, the image {} files",
                        rootfs[index].display(),
                        tree.entries.len(),
                        context.image.files
                    );
                }
                *reference_tree = Some(tree);
            }
            Some(expected) => {
                let differences = tree.differences(expected, "this pull", "the first pull");
                if !differences.is_empty() {
                    bail!(
                        "round {round}, {}: the rootfs {} differs from the first pull's:\n{}",
                        scenario.name(),
                        rootfs[index].display(),
                        differences
                            .iter()
                            .take(10)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
            }
        }
    }

    let total = finished
        .iter()
        .map(|run| run.exited)
        .max()
        .context("no pull ran")?;
    let measured = Measured {
        total,
        each: finished.iter().map(|run| run.wall).collect(),
        cpu: finished.iter().map(|run| run.cpu).sum(),
        upstream: upstream_traffic,
        mirror: mirror_traffic,
        mirror_errors,
    };
    eprintln!(
        "xtask bench-fleet: round {round} {:<11} {} pulls in {:.2} s; upstream: {} blob GETs \
         ({}), {} manifest GETs{}",
        scenario.name(),
        context.pulls,
        total.as_secs_f64(),
        upstream_traffic.blob_gets,
        format_bytes(upstream_traffic.blob_bytes),
        upstream_traffic.manifest_gets,
        mirror_traffic.map_or_else(String::new, |traffic| format!(
            "; mirror: {} requests",
            traffic.requests
        ))
    );
    crate::tools::make_tree_writable(&dir);
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(measured)
}

/// The rootfs tree with directory mtimes left out (tank sets only those a layer lists).
fn snapshot(root: &Path) -> anyhow::Result<Tree> {
    let mut tree =
        Tree::snapshot(root).with_context(|| format!("reading the tree {}", root.display()))?;
    for entry in tree.entries.values_mut() {
        if entry.kind == Kind::Dir {
            entry.mtime = 0;
        }
    }
    Ok(tree)
}

/// How one process of a fleet ended.
#[derive(Debug)]
struct Finished {
    index: usize,
    /// Spawn to exit.
    wall: Duration,
    /// From the fleet's start to this exit.
    exited: Duration,
    cpu: Duration,
    /// The exit code, `None` when a signal ended it.
    status: Option<i32>,
}

/// Kills, by pid, the processes of a fleet that have not been reaped when it is dropped.
struct Reaper {
    children: Vec<(u32, Arc<AtomicBool>)>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, done) in &self.children {
            if !done.load(Ordering::SeqCst) {
                crate::sys::kill(*pid);
            }
        }
    }
}

/// Starts every command at once and waits (wait4, one thread each) until all have exited
/// or `timeout` has passed; on timeout or error the ones still running are killed.
fn run_all(commands: Vec<Command>, timeout: Duration) -> anyhow::Result<Vec<Finished>> {
    let count = commands.len();
    let (sender, receiver) = mpsc::channel();
    let mut reaper = Reaper {
        children: Vec::new(),
    };
    let start = Instant::now();
    for (index, mut command) in commands.into_iter().enumerate() {
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let pid = child.id();
        let done = Arc::new(AtomicBool::new(false));
        reaper.children.push((pid, Arc::clone(&done)));
        let sender = sender.clone();
        thread::spawn(move || {
            // The handle is kept but never waited on: wait4 below reaps the process.
            let _child = child;
            let result = wait_for(pid);
            done.store(true, Ordering::SeqCst);
            let now = Instant::now();
            let _ = sender.send(result.map(|(status, cpu)| Finished {
                index,
                wall: now - spawned,
                exited: now - start,
                cpu,
                status,
            }));
        });
    }
    drop(sender);
    let deadline = start + timeout;
    let mut finished = Vec::with_capacity(count);
    while finished.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(result) => finished.push(result?),
            Err(_) => bail!(
                "{} of {count} pulls still running after {} s: killed",
                count - finished.len(),
                timeout.as_secs()
            ),
        }
    }
    finished.sort_by_key(|run| run.index);
    Ok(finished)
}

/// Waits for the child `pid` with wait4: its exit code (`None` for a signal) and CPU time.
fn wait_for(pid: u32) -> anyhow::Result<(Option<i32>, Duration)> {
    let (status, usage) =
        tank_testkit::wait_with_usage(pid).with_context(|| format!("wait4 on pid {pid}"))?;
    Ok((status.code(), usage.cpu))
}

/// `(label, value)` lines about the machine and the build.
fn describe_machine(root: &Path, tank: &Path) -> Vec<(String, String)> {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let command_output = |program: &str, arguments: &[&str]| {
        Command::new(program)
            .args(arguments)
            .current_dir(root)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown", |(_, model)| model.trim())
        .to_owned();
    let cores = thread::available_parallelism().map_or(1, |cores| cores.get());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0),
        );
    let tank_version = command_output(&tank.display().to_string(), &["--version"]);
    vec![
        (
            "date".to_owned(),
            command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        ),
        ("cpu".to_owned(), format!("{model}, {cores} cores")),
        ("memory".to_owned(), memory),
        (
            "kernel".to_owned(),
            read("/proc/sys/kernel/osrelease").trim().to_owned(),
        ),
        (
            "load average at start".to_owned(),
            read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "tank".to_owned(),
            format!(
                "{tank_version} (release build), commit {}",
                command_output("git", &["rev-parse", "--short", "HEAD"])
            ),
        ),
        (
            "registry".to_owned(),
            command_output("docker-registry", &["--version"]),
        ),
        (
            "filesystem of target/".to_owned(),
            command_output(
                "stat",
                &["-f", "-c", "%T", &root.join("target").display().to_string()],
            ),
        ),
    ]
}

fn format_bytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn seconds(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64())
}

fn median<T: Copy + Ord>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

/// `median (min–max)` of durations, in seconds.
fn spread(values: &[Duration]) -> String {
    match (median(values), values.iter().min(), values.iter().max()) {
        (Some(median), Some(min), Some(max)) if values.len() > 1 => {
            format!("{} ({}–{})", seconds(median), seconds(*min), seconds(*max))
        }
        (Some(median), _, _) => seconds(median),
        _ => "–".to_owned(),
    }
}

/// `median (min–max)` of counts.
fn count_spread(values: &[usize]) -> String {
    match (median(values), values.iter().min(), values.iter().max()) {
        (Some(median), Some(min), Some(max)) if min != max => format!("{median} ({min}–{max})"),
        (Some(median), _, _) => median.to_string(),
        _ => "–".to_owned(),
    }
}

/// The one-line-per-scenario table.
fn summary_table(runs: &[(Scenario, Vec<Measured>)]) -> String {
    let mut table = String::from(
        "| scenario | all pulls done, s: median (min–max) | one pull, s: median | CPU of all \
         pulls, s | upstream blob GETs | upstream blob bytes | upstream manifest GETs / HEADs | \
         mirror requests |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (scenario, measured) in runs {
        let totals: Vec<Duration> = measured.iter().map(|m| m.total).collect();
        let each: Vec<Duration> = measured.iter().flat_map(|m| m.each.clone()).collect();
        let cpu: Vec<Duration> = measured.iter().map(|m| m.cpu).collect();
        let blob_gets: Vec<usize> = measured.iter().map(|m| m.upstream.blob_gets).collect();
        let bytes: Vec<u64> = measured.iter().map(|m| m.upstream.blob_bytes).collect();
        let manifest_gets: Vec<usize> = measured.iter().map(|m| m.upstream.manifest_gets).collect();
        let manifest_heads: Vec<usize> =
            measured.iter().map(|m| m.upstream.manifest_heads).collect();
        let mirror: Vec<usize> = measured
            .iter()
            .filter_map(|m| m.mirror.map(|traffic| traffic.requests))
            .collect();
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} |\n",
            scenario.name(),
            spread(&totals),
            median(&each).map_or_else(|| "–".to_owned(), seconds),
            median(&cpu).map_or_else(|| "–".to_owned(), seconds),
            count_spread(&blob_gets),
            median(&bytes).map_or_else(|| "–".to_owned(), format_bytes),
            count_spread(&manifest_gets),
            count_spread(&manifest_heads),
            if mirror.is_empty() {
                "–".to_owned()
            } else {
                count_spread(&mirror)
            },
        ));
    }
    table
}

/// Per-round detail of one scenario.
fn scenario_table(measured: &[Measured]) -> String {
    let mut table = String::from(
        "| round | all pulls done, s | one pull, s: median (min–max) | CPU, s | upstream blob \
         GETs / HEADs (cut short) | upstream blob bytes | upstream manifest GETs / HEADs | \
         upstream requests from tank | mirror requests (blob GETs) | mirror errors logged |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (round, m) in measured.iter().enumerate() {
        let up = m.upstream;
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} / {} ({}) | {} | {} / {} | {} | {} | {} |\n",
            round + 1,
            seconds(m.total),
            spread(&m.each),
            seconds(m.cpu),
            up.blob_gets,
            up.blob_heads,
            up.short_blob_gets,
            format_bytes(up.blob_bytes),
            up.manifest_gets,
            up.manifest_heads,
            up.from_tank,
            m.mirror.map_or_else(
                || "–".to_owned(),
                |mirror| format!("{} ({})", mirror.requests, mirror.blob_gets)
            ),
            m.mirror
                .map_or_else(|| "–".to_owned(), |mirror| mirror.errors.to_string()),
        ));
    }
    table
}

/// The medians of one scenario's upstream blob GETs and manifest requests.
fn upstream_medians(runs: &[(Scenario, Vec<Measured>)], scenario: Scenario) -> (usize, usize) {
    let measured = runs
        .iter()
        .find(|(s, _)| *s == scenario)
        .map_or(&[][..], |(_, m)| m.as_slice());
    let blobs: Vec<usize> = measured.iter().map(|m| m.upstream.blob_gets).collect();
    let manifests: Vec<usize> = measured
        .iter()
        .map(|m| m.upstream.manifest_gets + m.upstream.manifest_heads)
        .collect();
    (median(&blobs).unwrap_or(0), median(&manifests).unwrap_or(0))
}

/// What the numbers mean, from the numbers.
fn explanation(options: &Options, image: &Image, runs: &[(Scenario, Vec<Measured>)]) -> String {
    let n = options.pulls;
    let blobs = image.blobs;
    let (direct_blobs, direct_manifests) = upstream_medians(runs, Scenario::Direct);
    let (cold_blobs, cold_manifests) = upstream_medians(runs, Scenario::MirrorCold);
    let cold_runs = runs
        .iter()
        .find(|(s, _)| *s == Scenario::MirrorCold)
        .map_or(&[][..], |(_, m)| m.as_slice());
    let short: usize = cold_runs.iter().map(|m| m.upstream.short_blob_gets).sum();
    let mut messages: BTreeMap<&str, usize> = BTreeMap::new();
    for message in cold_runs.iter().flat_map(|m| &m.mirror_errors) {
        *messages.entry(message.as_str()).or_default() += 1;
    }
    let errors = if messages.is_empty() {
        "the mirror logged no error".to_owned()
    } else {
        let listed: Vec<String> = messages
            .iter()
            .map(|(message, count)| format!("{count}× \"{message}\""))
            .collect();
        format!("the mirror logged {}", listed.join(", "))
    };
    let comparison = match cold_blobs.cmp(&direct_blobs) {
        std::cmp::Ordering::Greater => "more than pulling directly",
        std::cmp::Ordering::Equal => "as much as pulling directly",
        std::cmp::Ordering::Less => "here somewhat less than pulling directly",
    };
    let (warm_blobs, warm_manifests) = upstream_medians(runs, Scenario::MirrorWarm);
    let cold = if cold_blobs <= blobs {
        format!(
            "the cold mirror fetched each blob once ({cold_blobs} blob GETs for {blobs} blobs): \
             it coalesced the {n} concurrent misses ({cold_manifests} manifest requests)"
        )
    } else {
        format!(
            "the cold mirror did not coalesce concurrent misses: the upstream served \
             {cold_blobs} blob GETs for {blobs} blobs, against {direct_blobs} direct \
             (N×blobs = {}, N×blobs + blobs = {}). Distribution 2.8's proxy \
             (registry/proxy/proxyblobstore.go) answers a blob it does not hold by fetching \
             it from the upstream for that client and, for the first request only, starting \
             a second upstream fetch in the background that writes it to its storage (each \
             fetch a HEAD then a GET); a request for a blob whose background copy is still \
             in flight is not made to wait, it gets its own upstream fetch, served and not \
             stored. So a fleet arriving at an empty mirror costs the upstream up to N + 1 \
             fetches of every blob ({comparison}); only pulls that arrive after the copy is \
             stored are served from the mirror ({cold_manifests} manifest requests reached \
             the upstream). Over the rounds, {short} of those upstream blob GETs ended before \
             the whole blob was sent, and {errors} (no pull failed)",
            n * blobs,
            n * blobs + blobs,
        )
    };
    format!(
        "Each pull fetches the manifest and {blobs} blobs (config and {} layers, {} of \
         layers). Straight from the upstream, {n} pulls cost it {direct_blobs} blob GETs and \
         {direct_manifests} manifest requests (N×blobs = {}). Through a mirror, {cold}. Once the \
         mirror holds the image (warm), the upstream served {warm_blobs} blob GETs and \
         {warm_manifests} manifest requests: the blobs, addressed by digest, come from the \
         mirror's storage, while a tag is still checked against the upstream (Distribution's \
         proxy asks the remote for a tag each time and falls back to its copy only when the \
         remote cannot answer). All of this runs on loopback on one machine, where the \
         network costs nothing and the registries, the mirror and the {n} pulls share {} \
         cores: wall times here measure CPU and disk contention, not transfer time, and a \
         mirror is not expected to make pulls faster. The point of the table is the load on \
         the upstream, which is what a mirror saves on a real network (and what rate limits \
         count).",
        image.layers,
        format_bytes(image.layer_bytes),
        n * blobs,
        thread::available_parallelism().map_or(1, |cores| cores.get()),
    )
}

fn document(
    options: &Options,
    machine: &[(String, String)],
    image: &Image,
    runs: &[(Scenario, Vec<Measured>)],
    elapsed: Duration,
) -> String {
    let mut text = String::from(
        "# A fleet of pulls, with and without a pull-through mirror\n\n\
         Written by `cargo xtask bench-fleet` (xtask/src/fleet.rs); do not edit by hand.\n\n",
    );
    text.push_str(&format!(
        "Command: `{}` ({} pulls at once per scenario, {} rounds; the bench took {:.0} s).\n\n",
        options.command_line(),
        options.pulls,
        options.rounds,
        elapsed.as_secs_f64()
    ));
    text.push_str("## Machine\n\n");
    for (label, value) in machine {
        text.push_str(&format!("- {label}: {value}\n"));
    }
    text.push_str(&format!(
        "\n## Setup\n\n\
         - Image: generated deterministically by the bench (no internet): {} layers (gzip), \
         {} of layers, {} files (2000 small files of 0.2–6 KiB, half text half random; one \
         20 MiB file; four of 4 MiB; 300 of 16–64 KiB, all random), pushed with tank's own \
         copy (tank-image) to an upstream docker-registry on 127.0.0.1.\n\
         - Each scenario starts {} `tank pull --json --cache <own empty dir> \
         --registries-conf <empty file> [--mirror <mirror>] <upstream>/{REPOSITORY}:latest` \
         at once; time is measured from the first spawn to the last exit (wait4), and every \
         exit status must be 0.\n\
         - The mirror is docker-registry in pull-through mode (`proxy.remoteurl` = the \
         upstream), started with empty storage each round; `mirror-warm` reuses that round's \
         mirror after `mirror-cold` filled it.\n\
         - Request counts come from the registries' access logs; bytes are the response sizes \
         of successful blob GETs. Every pull printed the pushed manifest digest ({}), and the \
         rootfs of the first and last pull of every scenario is the same tree (paths, modes, \
         sizes, contents) as the first pull's.\n\n",
        image.layers,
        format_bytes(image.layer_bytes),
        image.files,
        options.pulls,
        image.manifest_digest,
    ));
    text.push_str("## Summary\n\n");
    text.push_str(&summary_table(runs));
    text.push('\n');
    text.push_str(&explanation(options, image, runs));
    text.push_str("\n\n");
    for (scenario, measured) in runs {
        text.push_str(&format!(
            "## {}\n\n{}.\n\n",
            scenario.name(),
            scenario.description()
        ));
        text.push_str(&scenario_table(measured));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> anyhow::Result<Options> {
        let arguments: Vec<String> = arguments.iter().map(|&a| a.to_owned()).collect();
        Options::parse(&arguments)
    }

    #[test]
    fn options_default_and_parse() {
        let defaults = parse(&[]).unwrap();
        assert_eq!((defaults.pulls, defaults.rounds), (16, 3));
        assert_eq!(defaults.command_line(), "cargo xtask bench-fleet");
        let chosen = parse(&["--rounds", "1", "--pulls", "4"]).unwrap();
        assert_eq!((chosen.pulls, chosen.rounds), (4, 1));
        assert_eq!(
            chosen.command_line(),
            "cargo xtask bench-fleet --pulls 4 --rounds 1"
        );
        for bad in [
            &["--pulls"][..],
            &["--pulls", "0"],
            &["--pulls", "65"],
            &["--rounds", "x"],
            &["--fast"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn access_log_lines_are_parsed_and_counted() {
        let log = "\
time=\"x\" level=info msg=\"response completed\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/ HTTP/1.1\" 200 2 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"HEAD /v2/a/manifests/latest HTTP/1.1\" 200 1 \"\" \"Go-http-client/1.1\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/manifests/latest HTTP/1.1\" 200 500 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:ab HTTP/1.1\" 200 1000 \"\" \"Go-http-client/1.1\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:cd HTTP/1.1\" 404 70 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"HEAD /v2/a/blobs/sha256:cd HTTP/1.1\" 200 0 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/tank-testkit-sync/0/manifests/latest HTTP/1.0\" 404 9 \"\" \"\"\n";
        let lines = parse_log(log);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[1].user_agent, "Go-http-client/1.1");
        assert_eq!((lines[3].status, lines[3].bytes), (200, 1000));
        // sha256:ab is 2000 bytes: the GET that sent 1000 was cut short.
        let sizes = BTreeMap::from([("sha256:ab".to_owned(), 2000), ("sha256:cd".to_owned(), 70)]);
        let counted = traffic(&lines, &sizes);
        assert_eq!(
            counted,
            Traffic {
                requests: 6,
                blob_gets: 2,
                blob_heads: 1,
                blob_bytes: 1000,
                short_blob_gets: 1,
                manifest_gets: 1,
                manifest_heads: 1,
                from_tank: 4,
                errors: 0,
            }
        );
    }

    #[test]
    fn a_fleet_reports_each_exit_status() {
        let mut commands = Vec::new();
        for code in [0, 3] {
            let mut command = Command::new("sh");
            command.args(["-c", &format!("exit {code}")]);
            commands.push(command);
        }
        let finished = run_all(commands, Duration::from_secs(30)).unwrap();
        assert_eq!(finished.len(), 2);
        assert_eq!(finished[0].status, Some(0));
        assert_eq!(finished[1].status, Some(3));
        assert!(finished.iter().all(|run| run.exited >= run.wall));
    }

    #[test]
    fn a_fleet_past_its_deadline_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let error = run_all(vec![command], Duration::from_millis(200)).unwrap_err();
        assert!(error.to_string().contains("still running"), "{error:#}");
    }

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3, 1, 2]), Some(2));
        assert_eq!(median::<usize>(&[]), None);
        assert_eq!(count_spread(&[5, 5, 5]), "5");
        assert_eq!(count_spread(&[4, 6, 5]), "5 (4–6)");
        let values = [
            Duration::from_millis(1500),
            Duration::from_millis(1000),
            Duration::from_millis(2000),
        ];
        assert_eq!(spread(&values), "1.50 (1.00–2.00)");
    }
}
