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

mod image;
mod report;
mod run;
mod traffic;

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

use image::{Image, MIB, push, write_image};
use report::{describe_machine, document, format_bytes, summary_table};
use run::run_scenario;
use traffic::{LogLine, Traffic, logged, traffic_since};

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
}
