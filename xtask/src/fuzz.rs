//! `cargo xtask fuzz [--seconds N]`: every cargo-fuzz target in `fuzz/` for N seconds from
//! its committed corpus (and `ci`'s shared fuzz budget).

use std::fs;

use anyhow::{Context as _, bail};

use crate::tools::{cargo, run_command};
use crate::{USAGE, workspace_root};

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
pub(crate) fn fuzz(options: &[String]) -> anyhow::Result<()> {
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
pub(crate) fn fuzz_for(seconds: Option<u64>) -> anyhow::Result<()> {
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

    #[test]
    fn ci_shares_the_fuzz_budget_with_a_floor() {
        assert_eq!(ci_fuzz_seconds(1), 60);
        assert_eq!(ci_fuzz_seconds(4), 15);
        assert_eq!(ci_fuzz_seconds(6), 10);
        assert_eq!(ci_fuzz_seconds(9), 10);
        assert_eq!(ci_fuzz_seconds(0), 60);
    }
}
