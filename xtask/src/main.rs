//! Developer tasks for tank, run as `cargo xtask <task>`; this file parses the task and
//! hands it to its module:
//!
//! - `cargo xtask fixtures [--check]`: regenerate the OCI layouts under `fixtures/`, or fail
//!   (naming the command to run) when the committed ones are stale (`fixtures.rs`).
//! - `cargo xtask registry [--port N] [--no-seed]`: run `docker-registry` on loopback in the
//!   foreground, push every fixture into it as `127.0.0.1:PORT/fixtures/<name>:<tag>` with
//!   tank's own push (tank-image's `copy`, digests unchanged), print the references, and
//!   serve until Ctrl-C. Its state lives in `target/xtask-registry/`, wiped at each start
//!   (`registry.rs`).
//! - `cargo xtask demo`: start a registry, `tank push` two demo images and `tank copy` one to
//!   another repository, `tank pull` them (progress bars on a terminal), pull again (cached),
//!   print `tank run-spec --offline` with and without overrides, `tank cache ls` and the
//!   rootfs trees, stop the registry (`demo.rs`).
//! - `cargo xtask ci`: `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test
//!   --workspace` (which runs the tidy checks, `tidy.rs`), then `fuzz` for 60 seconds shared
//!   by the targets (at least 10 each): the README's test command, which `.ci/run` runs
//!   (`ci.rs`).
//! - `cargo xtask fuzz [--seconds N]`: run every cargo-fuzz target in `fuzz/` for N seconds
//!   (default 30), starting from its committed corpus; fails on a crash (saved under
//!   `fuzz/artifacts/`). Installs cargo-fuzz if missing (`fuzz.rs`).
//! - `cargo xtask bench [...]`: as root, time `tank pull` against skopeo+umoci and podman on
//!   generated Debian images and write `docs/BENCHMARKS.md` (`bench.rs`, `bench/`).
//! - `cargo xtask bench-fleet [--pulls N] [--rounds R]`: N `tank pull`s at once, straight
//!   from a loopback registry and through a cold then warm pull-through mirror; counts the
//!   upstream's requests and writes `docs/FLEET.md` (`fleet/`).
//!
//! skopeo pushes images only in the interop tests, where what tank reads must come from
//! another tool; xtask seeds registries with tank's own push.

mod bench;
mod ci;
mod demo;
mod fixtures;
mod fleet;
mod fuzz;
mod registry;
mod sys;
#[cfg(test)]
mod tidy;
mod tools;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

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
        "fixtures" => fixtures::fixtures(options),
        "registry" => registry::registry(options),
        "demo" => {
            no_options(task, options)?;
            demo::demo()
        }
        "ci" => {
            no_options(task, options)?;
            ci::ci()
        }
        "fuzz" => fuzz::fuzz(options),
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
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
