//! Developer tasks for tank, run as `cargo xtask <task>`:
//!
//! - `cargo xtask fixtures [--check]`: regenerate the OCI layouts under `fixtures/`, or fail
//!   (naming the command to run) when the committed ones are stale.
//! - `cargo xtask registry [--port N] [--no-seed]`: run `docker-registry` on loopback in the
//!   foreground, push every fixture into it as `127.0.0.1:PORT/fixtures/<name>:<tag>` with
//!   tank's own push (tank-image's `copy`, digests unchanged), print the references, and
//!   serve until Ctrl-C. Its state lives in `target/xtask-registry/`, wiped at each start.
//! - `cargo xtask demo`: start a registry, `tank push` two demo images and `tank copy` one to
//!   another repository, `tank pull` them (progress bars on a terminal), pull again (cached),
//!   print `tank run-spec --offline` with and without overrides, `tank cache ls` and the
//!   rootfs trees, stop the registry.
//!
//! skopeo pushes images only in the interop tests, where what tank reads must come from
//! another tool.
//! - `cargo xtask ci`: `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test
//!   --workspace`, then `fuzz` for 60 seconds shared by the targets (at least 10 each): the
//!   README's test command, which `.ci/run` runs.
//! - `cargo xtask fuzz [--seconds N]`: run every cargo-fuzz target in `fuzz/` for N seconds
//!   (default 30), starting from its committed corpus; fails on a crash (saved under
//!   `fuzz/artifacts/`). Installs cargo-fuzz if missing.
//! - `cargo xtask bench-fleet [--pulls N] [--rounds R]`: N `tank pull`s at once, straight
//!   from a loopback registry and through a cold then warm pull-through mirror; counts the
//!   upstream's requests and writes `docs/FLEET.md` (see `fleet.rs`).

mod bench;
mod fleet;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;

use anyhow::{Context as _, bail};
use tank_image::{CopyOptions, Endpoint};
use tank_registry::{Client, ClientConfig};
use tank_testkit::{FIXTURE_NAMES, Registry, check_fixtures, fixtures_dir, write_fixtures};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  fixtures [--check]          regenerate fixtures/ (or check they are up to date)
  registry [--port N] [--no-seed]
                              run docker-registry on 127.0.0.1 with the fixtures pushed by
                              tank, until Ctrl-C (state in target/xtask-registry/)
  demo                        start a local registry, tank push and copy demo images, pull
                              them with tank and print rootfs and run-spec (no internet needed)
  ci                          fmt --check, clippy -D warnings, test --workspace, fuzz 60 s
                              (shared by the targets, at least 10 s each)
  fuzz [--seconds N]          run each fuzz target for N seconds (default 30)
  bench [--runs N] [--images big-1,big-5,big-zstd,many-layers,many-files] [--quick] [--rebuild] [--keep]
                              as root: build the bench images (Debian userland by debootstrap,
                              cached in target/bench/), push them to a loopback registry, time
                              tank pull cold/warm/--offline against skopeo+umoci and podman and
                              the machine's limit (default 5 runs); write docs/BENCHMARKS.md
                              (--quick: small images, target/bench/BENCHMARKS-quick.md;
                              --keep: leave every run's trees for inspection)
  bench-fleet [--pulls N] [--rounds R]
                              N tank pulls at once (default 16), R rounds (default 3):
                              straight from a loopback registry, through a cold and a warm
                              pull-through mirror; count the upstream's requests, write
                              docs/FLEET.md
";

fn main() -> ExitCode {
    let arguments: Vec<String> = env::args().skip(1).collect();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &[String]) -> anyhow::Result<()> {
    let Some((task, options)) = arguments.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    match task.as_str() {
        "fixtures" => fixtures(options),
        "registry" => registry(options),
        "demo" => {
            no_options(task, options)?;
            demo()
        }
        "ci" => {
            no_options(task, options)?;
            ci()
        }
        "fuzz" => fuzz(options),
        "bench" => bench::bench(options),
        "bench-fleet" => fleet::bench_fleet(options),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task {other:?}\n{USAGE}"),
    }
}

fn no_options(task: &str, options: &[String]) -> anyhow::Result<()> {
    match options.first() {
        Some(option) => bail!("`{task}` takes no options, got {option:?}\n{USAGE}"),
        None => Ok(()),
    }
}

/// The workspace root: xtask lives in `<root>/xtask`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}

fn fixtures(options: &[String]) -> anyhow::Result<()> {
    let dir = fixtures_dir();
    match options {
        [] => {
            write_fixtures(&dir)
                .with_context(|| format!("writing fixtures into {}", dir.display()))?;
            for name in FIXTURE_NAMES {
                println!("wrote {}", dir.join(name).display());
            }
            Ok(())
        }
        [check] if check == "--check" => {
            check_fixtures(&dir)?;
            println!("fixtures are up to date");
            Ok(())
        }
        [other, ..] => bail!("unknown option {other:?} for `fixtures`\n{USAGE}"),
    }
}

fn registry(options: &[String]) -> anyhow::Result<()> {
    let mut port = None;
    let mut seed = true;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--port" => {
                let value = options.next().context("--port needs a number")?;
                port = Some(
                    value
                        .parse::<u16>()
                        .with_context(|| format!("--port {value:?} is not a port number"))?,
                );
            }
            "--no-seed" => seed = false,
            other => bail!("unknown option {other:?} for `registry`\n{USAGE}"),
        }
    }

    ensure_tools()?;
    // A kept directory under target/ rather than a temporary one: Ctrl-C ends this process
    // without running destructors, and the next start wipes what was left.
    let root = workspace_root().join("target").join("xtask-registry");
    stop_leftover_registry(&root);
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let mut builder = Registry::builder().root_dir(&root);
    if let Some(port) = port {
        builder = builder.port(port);
    }
    let registry = builder.start()?;
    let pid_file = root.join("registry.pid");
    fs::write(&pid_file, registry.pid().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    println!("registry: {} (pid {})", registry.url(), registry.pid());
    println!("storage:  {}", registry.storage_dir().display());
    println!("log:      {}", registry.log_path().display());
    if seed {
        for reference in seed_fixtures(&registry)? {
            println!("pushed    {reference}");
        }
    }
    println!("serving until Ctrl-C (the registry is in this process group and stops with it)");
    loop {
        thread::park();
    }
}

/// Stops the registry a previous `cargo xtask registry` left running if it died by a signal
/// that did not reach its process group: the pid in `registry.pid`, if that process is still
/// a `docker-registry` serving this directory's config.
fn stop_leftover_registry(root: &Path) {
    let Ok(pid) = fs::read_to_string(root.join("registry.pid")) else {
        return;
    };
    let pid = pid.trim();
    let Ok(command_line) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let command_line = String::from_utf8_lossy(&command_line);
    let config = root.join("config.yml");
    if command_line.contains("docker-registry") && command_line.contains(&*config.to_string_lossy())
    {
        eprintln!("xtask: stopping the registry left running by an earlier run (pid {pid})");
        let _ = Command::new("kill").arg(pid).status();
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

fn cargo() -> Command {
    // Cargo sets CARGO for the programs it runs; fall back to PATH.
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run_command(mut command: Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    eprintln!("xtask: running {shown}");
    let status = command
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// The programs the demo and the tests drive, each with the Debian package holding it.
const TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    // GNU time (/usr/bin/time) measures the hostile pulls' peak RSS; openssl makes the
    // TLS registry's CA; chattr pins an unremovable cache leftover; GNU tar writes the
    // reference sparse archives. Debian ships them by default.
    ("time", "time"),
    ("openssl", "openssl"),
    ("chattr", "e2fsprogs"),
    ("tar", "tar"),
];

fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}

/// Makes sure the [`TOOLS`] are installed: as root, installs the missing ones with
/// apt-get; otherwise fails naming the command to run.
fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", missing.join(" "));
    if !running_as_root() || !on_path("apt-get") {
        bail!(
            "missing {}: install them first (as root: `{install}`)",
            missing.join(", ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    run_command(update)?;
    let mut apt = Command::new("apt-get");
    apt.args(["install", "-y", "-qq"]).args(&missing);
    apt.env("DEBIAN_FRONTEND", "noninteractive");
    run_command(apt)?;
    Ok(())
}

fn demo() -> anyhow::Result<()> {
    ensure_tools()?;
    // Build first, so the demo's output is tank's, not cargo's.
    let mut build = cargo();
    build.args(["build", "--quiet", "--bin", "tank"]);
    run_command(build)?;
    let tank = workspace_root().join("target/debug/tank");

    let registry = Registry::start()?;
    println!(
        "registry: {} (docker-registry on loopback, storage in a temporary folder)",
        registry.url()
    );
    let host = registry.host();
    let demo = format!("{host}/demo/hello:1.0");
    let layers = format!("{host}/demo/layers:1.0");
    let pushes = [
        vec![
            "push".to_owned(),
            format!("{}:latest", fixtures_dir().join("single").display()),
            demo.clone(),
        ],
        vec![
            "push".to_owned(),
            format!("{}:latest", fixtures_dir().join("multi-platform").display()),
            format!("{host}/demo/multi:1.0"),
        ],
        // Within one registry, copying mounts the blobs: nothing is uploaded again.
        vec![
            "copy".to_owned(),
            format!("{host}/demo/multi:1.0"),
            format!("{host}/demo/multi-copy:1.0"),
        ],
        vec![
            "push".to_owned(),
            format!("{}:latest", fixtures_dir().join("multi-layer").display()),
            layers.clone(),
        ],
    ];
    for arguments in pushes {
        println!("\n$ tank {}", arguments.join(" "));
        let mut command = Command::new(&tank);
        command.args(&arguments);
        run_command(command)?;
    }

    let cache = workspace_root().join("target/xtask-demo/cache");
    if cache.exists() {
        make_tree_writable(&cache);
        std::fs::remove_dir_all(&cache)
            .with_context(|| format!("removing the old demo cache {}", cache.display()))?;
    }
    let cache_flag = ["--cache".to_owned(), cache.display().to_string()];
    let steps: Vec<Vec<String>> = vec![
        vec!["pull".into(), demo.clone()],
        vec!["pull".into(), demo.clone()],
        vec!["pull".into(), layers.clone()],
        vec!["run-spec".into(), "--offline".into(), demo.clone()],
        vec![
            "run-spec".into(),
            "--offline".into(),
            "--user".into(),
            "root".into(),
            "--env".into(),
            "GREETING=bonjour".into(),
            demo.clone(),
            "--".into(),
            "--quiet".into(),
        ],
        vec!["cache".into(), "ls".into()],
    ];
    for step in steps {
        let mut arguments = step.clone();
        let at = if arguments[0] == "cache" { 2 } else { 1 };
        for (offset, flag) in cache_flag.iter().enumerate() {
            arguments.insert(at + offset, flag.clone());
        }
        println!("\n$ tank {}", arguments.join(" "));
        let mut command = Command::new(&tank);
        command.args(&arguments);
        run_command(command)?;
    }
    let rootfs = cache.join("rootfs");
    println!("\nthe assembled root filesystems:");
    let mut listing = Command::new("find");
    listing
        .arg(&rootfs)
        .args(["-mindepth", "3", "-maxdepth", "5"]);
    run_command(listing)?;

    drop(registry);
    println!(
        "\nregistry stopped; try `tank pull --offline --cache {} {host}/demo/hello:1.0` again",
        cache.display()
    );
    Ok(())
}

/// Pushes every tag of every fixture to `registry` as `HOST/fixtures/<name>:<tag>` with
/// tank's own push (tank-image's `copy` from the OCI layout, digests unchanged); returns the
/// references.
fn seed_fixtures(registry: &Registry) -> anyhow::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    let client = Client::new(ClientConfig::default())?;
    let mut references = Vec::new();
    for name in FIXTURE_NAMES {
        let dir = fixtures_dir().join(name);
        let layout = tank_image::read_layout(&dir)?;
        for tag in layout.tags() {
            let reference = format!("{}/fixtures/{name}:{tag}", registry.host());
            push_layout(&runtime, &client, &dir, tag, &reference)?;
            references.push(reference);
        }
    }
    Ok(references)
}

/// Pushes `tag` of the OCI layout `dir` to `reference` with tank's own push (tank-image's
/// `copy`, digests unchanged).
fn push_layout(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    dir: &Path,
    tag: &str,
    reference: &str,
) -> anyhow::Result<()> {
    let source = Endpoint::Layout {
        dir: dir.to_path_buf(),
        tag: tag.to_owned(),
    };
    let destination = Endpoint::Registry(reference.parse()?);
    runtime
        .block_on(tank_image::copy(
            client,
            &source,
            &destination,
            &CopyOptions::default(),
        ))
        .with_context(|| format!("pushing {source} to {reference}"))?;
    Ok(())
}

/// Makes every directory in `root` writable so it can be removed (a rootfs may hold
/// read-only directories).
fn make_tree_writable(root: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(entries.flatten().map(|entry| entry.path()));
        }
    }
}

fn ci() -> anyhow::Result<()> {
    ensure_tools()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run_command(fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run_command(clippy)?;

    // The test run includes tank-testkit's fixture staleness check and the tests against a
    // real docker-registry, which fail (never skip) when it cannot start.
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    run_command(test)?;

    fuzz_for(None)?;
    println!("xtask ci: all checks passed");
    Ok(())
}

/// How long `ci` fuzzes in all, shared between the targets.
const CI_FUZZ_BUDGET_SECONDS: u64 = 60;
/// The least time `ci` gives one fuzz target, whatever their number.
const CI_FUZZ_MIN_SECONDS: u64 = 10;
/// How long `cargo xtask fuzz` runs each target without `--seconds`.
const FUZZ_SECONDS: u64 = 30;

/// How long `ci` runs each of `targets` fuzz targets: the budget shared out, but at least
/// [`CI_FUZZ_MIN_SECONDS`].
fn ci_fuzz_seconds(targets: usize) -> u64 {
    let targets = u64::try_from(targets.max(1)).unwrap_or(u64::MAX);
    (CI_FUZZ_BUDGET_SECONDS / targets).max(CI_FUZZ_MIN_SECONDS)
}

fn fuzz(options: &[String]) -> anyhow::Result<()> {
    let mut seconds = FUZZ_SECONDS;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--seconds" => {
                let value = options.next().context("--seconds needs a number")?;
                seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|seconds| *seconds > 0)
                    .with_context(|| format!("--seconds {value:?} is not a positive number"))?;
            }
            other => bail!("unknown option {other:?} for `fuzz`\n{USAGE}"),
        }
    }
    fuzz_for(Some(seconds))
}

/// Runs every target in `fuzz/fuzz_targets/` for `seconds` each (`None`: `ci`'s budget,
/// see [`ci_fuzz_seconds`]) with cargo-fuzz (installed if missing), after building them all
/// in one cargo run. libFuzzer needs nightly-only flags: RUSTC_BOOTSTRAP=1 lets stable
/// accept them. New inputs go to `fuzz/target/corpus-work/<target>`, never into the
/// committed corpus.
fn fuzz_for(seconds: Option<u64>) -> anyhow::Result<()> {
    let fuzz_dir = workspace_root().join("fuzz");
    let have_cargo_fuzz = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !have_cargo_fuzz {
        let mut install = cargo();
        install.args(["install", "cargo-fuzz", "--locked"]);
        run_command(install)?;
    }
    let mut targets = Vec::new();
    let targets_dir = fuzz_dir.join("fuzz_targets");
    for entry in
        fs::read_dir(&targets_dir).with_context(|| format!("listing {}", targets_dir.display()))?
    {
        let path = entry?.path();
        if let Some(stem) = path.file_stem()
            && path.extension().is_some_and(|extension| extension == "rs")
        {
            targets.push(stem.to_string_lossy().into_owned());
        }
    }
    targets.sort();
    if targets.is_empty() {
        bail!("no fuzz targets in {}", targets_dir.display());
    }
    let seconds = seconds.unwrap_or_else(|| ci_fuzz_seconds(targets.len()));
    let fuzz_cargo = || {
        let mut command = cargo();
        command
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", fuzz_dir.join("target"));
        command
    };
    let mut build = fuzz_cargo();
    // No AddressSanitizer: the code under test is safe Rust, and without it the build takes
    // half the time and runs three times as many inputs a second.
    build
        .args(["fuzz", "build", "--sanitizer", "none", "--fuzz-dir"])
        .arg(&fuzz_dir);
    run_command(build)?;
    for target in targets {
        let work = fuzz_dir.join("target").join("corpus-work").join(&target);
        fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let seeds = fuzz_dir.join("corpus").join(&target);
        let mut run = fuzz_cargo();
        run.args(["fuzz", "run", "--sanitizer", "none", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(&target)
            .arg(&work)
            .arg(&seeds)
            .args([
                "--".to_owned(),
                format!("-max_total_time={seconds}"),
                "-timeout=10".to_owned(),
                "-print_final_stats=1".to_owned(),
            ]);
        let dictionary = fuzz_dir.join(format!("{target}.dict"));
        if dictionary.is_file() {
            run.arg(format!("-dict={}", dictionary.display()));
        }
        run_command(run)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(arguments: &[&str]) -> anyhow::Result<()> {
        let arguments: Vec<String> = arguments
            .iter()
            .map(|&argument| argument.to_owned())
            .collect();
        run(&arguments)
    }

    #[test]
    fn ci_shares_the_fuzz_budget_with_a_floor() {
        assert_eq!(ci_fuzz_seconds(1), 60);
        assert_eq!(ci_fuzz_seconds(4), 15);
        assert_eq!(ci_fuzz_seconds(6), 10);
        assert_eq!(ci_fuzz_seconds(9), 10);
        assert_eq!(ci_fuzz_seconds(0), 60);
    }

    #[test]
    fn bad_arguments_fail_before_doing_anything() {
        for arguments in [
            &["nope"][..],
            &["fixtures", "--bogus"],
            &["registry", "--port"],
            &["registry", "--port", "not-a-number"],
            &["registry", "--port", "70000"],
            &["registry", "--bogus"],
            &["demo", "extra"],
            &["ci", "extra"],
            &["fuzz", "--seconds"],
            &["fuzz", "--seconds", "0"],
            &["fuzz", "--bogus"],
        ] {
            let error = run_with(arguments).expect_err(&format!("{arguments:?} was accepted"));
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn help_and_fixture_check_succeed() {
        run_with(&[]).unwrap();
        run_with(&["help"]).unwrap();
        run_with(&["fixtures", "--check"]).expect("committed fixtures are up to date");
    }

    #[test]
    fn fixtures_are_seeded_by_tank_with_their_digests() {
        let registry = Registry::start().unwrap();
        let references = seed_fixtures(&registry).unwrap();
        let mut expected = Vec::new();
        for name in FIXTURE_NAMES {
            for tagged in tank_testkit::read_layout_tags(&fixtures_dir().join(name)).unwrap() {
                expected.push((
                    format!("{}/fixtures/{name}:{}", registry.host(), tagged.tag),
                    tagged.digest,
                ));
            }
        }
        assert_eq!(
            references,
            expected
                .iter()
                .map(|(reference, _)| reference.clone())
                .collect::<Vec<_>>()
        );
        for (reference, digest) in expected {
            let raw =
                tank_testkit::skopeo_inspect_raw(&format!("docker://{reference}"), None).unwrap();
            assert_eq!(tank_testkit::sha256_digest(&raw), digest, "{reference}");
        }
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
