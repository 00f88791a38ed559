//! `cargo xtask ci`: the README's test command (fmt, clippy, tank-layer without default
//! features, the workspace's tests, fuzz),
//! which `.ci/run` runs.

use crate::fuzz::fuzz_for;
use crate::tools::{cargo, ensure_tools, run_command};

pub(crate) fn ci() -> anyhow::Result<()> {
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

    // tank-layer without its default `zstd` feature (a layer-only user's build): it must
    // build, stay clippy-clean and refuse zstd layers by naming the feature.
    let mut lean_clippy = cargo();
    lean_clippy.args([
        "clippy",
        "-p",
        "tank-layer",
        "--no-default-features",
        "--lib",
        "--",
        "-D",
        "warnings",
    ]);
    run_command(lean_clippy)?;
    let mut lean_test = cargo();
    lean_test.args(["test", "-p", "tank-layer", "--no-default-features", "--lib"]);
    run_command(lean_test)?;

    // The test run includes tank-testkit's fixture staleness check and the tests against a
    // real docker-registry, which fail (never skip) when it cannot start.
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    run_command(test)?;

    fuzz_for(None)?;
    println!("xtask ci: all checks passed");
    Ok(())
}
