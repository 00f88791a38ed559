//! The bench's tables (Markdown, printed and written to `docs/BENCHMARKS.md`) and the
//! description of the machine.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::measure::Sample;
use super::method::METHOD;
use super::stats::{Summary, format_bytes, format_ratio, format_seconds, pair_ratios, summarize};
use super::{ImageResult, Options};

/// The issue's targets.
const COLD_VS_ANCHOR: f64 = 0.5;
const COLD_VS_LIMIT: f64 = 1.3;
const OFFLINE_SECONDS: f64 = 0.015;
const RSS_BYTES: u64 = 64 * 1024 * 1024;

/// What the tables were measured on.
pub(crate) struct Machine {
    lines: Vec<(String, String)>,
}

/// The first non-empty line `program arguments…` prints (stdout, else stderr), if it runs.
fn first_line(program: &str, arguments: &[&str]) -> Option<String> {
    let output = Command::new(program).args(arguments).output().ok()?;
    let text = if output.stdout.iter().any(|byte| !byte.is_ascii_whitespace()) {
        output.stdout
    } else {
        output.stderr
    };
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
}

impl Machine {
    /// Adds the line `- name: value`.
    pub(crate) fn add(&mut self, name: &str, value: String) {
        self.lines.push((name.to_owned(), value));
    }

    /// Adds the load average now (at the end of the bench): other work on the machine.
    pub(crate) fn add_load_average(&mut self) {
        let load = fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|text| {
                text.split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "unknown".to_owned());
        self.lines.push((
            "load average when the bench ended (1, 5, 15 min)".into(),
            load,
        ));
    }

    /// Describes this machine, the filesystem of `root/target` and the `tank` binary.
    pub(crate) fn describe(root: &Path, tank: &Path, rss_floor: u64) -> Machine {
        let unknown = || "unknown".to_owned();
        let cpu = Command::new("lscpu")
            .output()
            .ok()
            .and_then(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .find_map(|line| {
                        line.strip_prefix("Model name:")
                            .map(|model| model.trim().to_owned())
                    })
            })
            .unwrap_or_else(unknown);
        let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
        let memory = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let kib: u64 = line
                        .strip_prefix("MemTotal:")?
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .ok()?;
                    Some(format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
                })
            })
            .unwrap_or_else(unknown);
        let kernel = first_line("uname", &["-srm"]).unwrap_or_else(unknown);
        let target = root.join("target");
        let filesystem = first_line(
            "findmnt",
            &[
                "--noheadings",
                "--output",
                "FSTYPE,SOURCE,TARGET",
                "--target",
                &target.display().to_string(),
            ],
        )
        .unwrap_or_else(unknown);
        let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(unknown);
        let commit = first_line(
            "git",
            &[
                "-C",
                &root.display().to_string(),
                "rev-parse",
                "--short",
                "HEAD",
            ],
        )
        .unwrap_or_else(unknown);
        let dirty = Command::new("git")
            .args([
                "-C",
                &root.display().to_string(),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .output()
            .is_ok_and(|output| !output.stdout.is_empty());
        let tank = format!(
            "`{}` (release build of the working tree at commit {commit}{})",
            tank.strip_prefix(root).unwrap_or(tank).display(),
            if dirty {
                " plus uncommitted changes"
            } else {
                ""
            }
        );
        let mut tools = Vec::new();
        for (program, arguments) in [
            ("skopeo", &["--version"][..]),
            ("umoci", &["--version"]),
            ("podman", &["--version"]),
            ("docker-registry", &["--version"]),
            ("curl", &["--version"]),
            ("zstd", &["--version"]),
            ("gzip", &["--version"]),
            ("pigz", &["--version"]),
            ("tar", &["--version"]),
        ] {
            if let Some(line) = first_line(program, arguments) {
                tools.push(line);
            }
        }
        Machine {
            lines: vec![
                ("date".into(), date),
                ("CPU".into(), cpu),
                ("cores".into(), cores.to_string()),
                ("RAM".into(), memory),
                ("kernel".into(), kernel),
                ("filesystem of target/".into(), filesystem),
                ("tank".into(), tank),
                (
                    "peak RSS floor (`true` through the launcher)".into(),
                    format_bytes(rss_floor),
                ),
                ("tools".into(), tools.join("; ")),
            ],
        }
    }
}

fn walls(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(Sample::wall_seconds).collect()
}

fn summary_text(summary: Option<Summary>, format: fn(f64) -> String) -> (String, String) {
    match summary {
        Some(summary) => (
            format(summary.median),
            format!("{}–{}", format(summary.min), format(summary.max)),
        ),
        None => ("—".into(), "—".into()),
    }
}

/// `0.42× (0.40–0.45)` for the ratios of each pair of runs.
fn ratio_text(ratios: &[f64]) -> Option<String> {
    let summary = summarize(ratios)?;
    Some(format!(
        "{} ({}–{})",
        format_ratio(summary.median),
        format_ratio(summary.min),
        format_ratio(summary.max)
    ))
}

fn combined(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    a.iter()
        .zip(b)
        .map(|(a, b)| Sample {
            wall: a.wall + b.wall,
            cpu: a.cpu + b.cpu,
            max_rss: a.max_rss.max(b.max_rss),
        })
        .collect()
}

fn row(out: &mut String, variant: &str, samples: &[Sample], comparison: &str) {
    if samples.is_empty() {
        return;
    }
    let (median, range) = summary_text(summarize(&walls(samples)), format_seconds);
    let cpu: Vec<f64> = samples.iter().map(Sample::cpu_seconds).collect();
    let (cpu, _) = summary_text(summarize(&cpu), format_seconds);
    let rss = samples
        .iter()
        .map(|sample| sample.max_rss)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "| {variant} | {median} | {range} | {cpu} | {} | {comparison} |",
        format_bytes(rss)
    );
}

/// The derived numbers the summary and the targets use.
struct Derived {
    cold_vs_anchor: Vec<f64>,
    cold_vs_podman: Vec<f64>,
    warm_vs_podman: Vec<f64>,
    cold_vs_limit: Vec<f64>,
    /// tank cold ÷ the limit with the diff_id check and durability, per run.
    cold_vs_duties: Vec<f64>,
    anchor: Vec<Sample>,
}

fn derive(result: &ImageResult) -> Derived {
    let runs = &result.runs;
    let anchor = combined(&runs.skopeo, &runs.umoci);
    let limit = result.limit.estimate().as_secs_f64();
    Derived {
        cold_vs_anchor: pair_ratios(&walls(&runs.tank_cold), &walls(&anchor)),
        cold_vs_podman: pair_ratios(&walls(&runs.tank_cold), &walls(&runs.podman_cold)),
        warm_vs_podman: pair_ratios(&walls(&runs.tank_warm), &walls(&runs.podman_warm)),
        cold_vs_limit: pair_ratios(&walls(&runs.tank_cold), &vec![limit; runs.tank_cold.len()]),
        cold_vs_duties: pair_ratios(
            &walls(&runs.tank_cold),
            &vec![result.limit.with_duties().as_secs_f64(); runs.tank_cold.len()],
        ),
        anchor,
    }
}

fn describe_image(result: &ImageResult) -> String {
    let image = &result.image;
    let compression = image
        .layers
        .first()
        .map_or("", |layer| layer.compression.as_str());
    format!(
        "{} {compression} layer{}, {} compressed, {} as tar, {} regular files ({}), {} tar entries; \
         pulled as `{}`.",
        image.layers.len(),
        if image.layers.len() == 1 { "" } else { "s" },
        format_bytes(image.compressed()),
        format_bytes(image.uncompressed()),
        image.files,
        format_bytes(image.file_bytes),
        image.entries,
        result.reference,
    )
}

/// The tables of one image: the variants, the limit, the rootfs check and the targets.
pub(crate) fn image_section(result: &ImageResult) -> String {
    let runs = &result.runs;
    let derived = derive(result);
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", result.image.name);
    let _ = writeln!(out, "{}\n", describe_image(result));
    let _ = writeln!(
        out,
        "| variant | wall median | wall min–max | CPU median | peak RSS (max) | tank ÷ anchor, per pair of runs: median (min–max) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut cold = Vec::new();
    if let Some(text) = ratio_text(&derived.cold_vs_anchor) {
        cold.push(format!("{text} of skopeo + umoci"));
    }
    if let Some(text) = ratio_text(&derived.cold_vs_podman) {
        cold.push(format!("{text} of podman cold"));
    }
    if let Some(text) = ratio_text(&derived.cold_vs_limit) {
        cold.push(format!("{text} of the limit"));
    }
    row(&mut out, "tank cold", &runs.tank_cold, &cold.join("; "));
    let warm = ratio_text(&derived.warm_vs_podman)
        .map(|text| format!("{text} of podman warm"))
        .unwrap_or_default();
    row(&mut out, "tank warm online", &runs.tank_warm, &warm);
    row(&mut out, "tank --offline", &runs.tank_offline, "");
    row(&mut out, "skopeo copy (cold)", &runs.skopeo, "");
    row(&mut out, "umoci unpack --rootless", &runs.umoci, "");
    row(&mut out, "skopeo + umoci", &derived.anchor, "");
    row(&mut out, "podman pull, vfs, cold", &runs.podman_cold, "");
    row(&mut out, "podman pull, vfs, warm", &runs.podman_warm, "");
    if let Some(error) = &result.umoci_error {
        let _ = writeln!(
            out,
            "\numoci could not unpack this image, so its rows and the ratios to skopeo + umoci are \
             missing (the rootfs check below unpacks a gzip copy of the same layer tars instead):\n\n```\n{}\n```",
            error.trim()
        );
    }
    if let Some(error) = &result.podman_error {
        let _ = writeln!(
            out,
            "\npodman could not run here, so its rows are missing:\n\n```\n{}\n```",
            error.trim()
        );
    }

    let limit = &result.limit;
    let _ = writeln!(
        out,
        "\nThe machine's limit for this image (each stage alone, fastest tool, best run):\n"
    );
    let _ = writeln!(
        out,
        "| stage | fastest tool | wall | CPU | all tools tried (best wall) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for stage in &limit.stages {
        let tried: Vec<String> = stage
            .tried
            .iter()
            .map(|(tool, wall)| format!("{tool}: {}", format_seconds(wall.as_secs_f64())))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            stage.name,
            stage.tool,
            format_seconds(stage.wall.as_secs_f64()),
            format_seconds(stage.cpu.as_secs_f64()),
            tried.join(", ")
        );
    }
    let _ = writeln!(out, "\nLimit: {}.", super::limit::describe(limit));
    if let Some(cold) = summarize(&walls(&runs.tank_cold)) {
        let _ = writeln!(
            out,
            "tank cold (median {}) is {} the limit and {} the longest stage alone.",
            format_seconds(cold.median),
            format_ratio(cold.median / limit.estimate().as_secs_f64().max(1e-9)),
            format_ratio(cold.median / limit.max_stage().as_secs_f64().max(1e-9)),
        );
    }
    if !limit.duties.is_empty() {
        let _ = writeln!(
            out,
            "\nWhat a correct pull pays on top, left out of the limit (best run):\n"
        );
        let _ = writeln!(out, "| duty | tool | wall | CPU |");
        let _ = writeln!(out, "|---|---|---|---|");
        for duty in &limit.duties {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                duty.name,
                duty.tool,
                format_seconds(duty.wall.as_secs_f64()),
                format_seconds(duty.cpu.as_secs_f64()),
            );
        }
        let with = limit.with_duties().as_secs_f64();
        let _ = write!(
            out,
            "\nLimit with these (the diff_id hashing shares the cores with the stages, the sync comes after the last file): {}",
            format_seconds(with)
        );
        match summarize(&walls(&runs.tank_cold)) {
            Some(cold) => {
                let _ = writeln!(
                    out,
                    "; tank cold is {} of it.",
                    format_ratio(cold.median / with.max(1e-9))
                );
            }
            None => {
                let _ = writeln!(out, ".");
            }
        }
    }

    let equality = &result.equality;
    if equality.differences.is_empty() {
        let _ = writeln!(
            out,
            "\nRootfs, tank vs umoci: **equal**, {} paths (kinds, modes, sizes, sha256 of contents, \
             link targets, file mtimes, user xattrs, hard-link groups).",
            equality.paths
        );
    } else {
        let shown: Vec<&str> = equality
            .differences
            .iter()
            .take(20)
            .map(String::as_str)
            .collect();
        let _ = writeln!(
            out,
            "\nRootfs, tank vs umoci: **{} differences** over {} paths (first 20):\n\n```\n{}\n```",
            equality.differences.len(),
            equality.paths,
            shown.join("\n")
        );
    }

    let _ = writeln!(out, "\nTargets:\n");
    let _ = writeln!(out, "| target | measured (median) | met |");
    let _ = writeln!(out, "|---|---|---|");
    for (target, value, met) in targets(result, &derived) {
        let _ = writeln!(out, "| {target} | {value} | {met} |");
    }
    out
}

fn targets(result: &ImageResult, derived: &Derived) -> Vec<(String, String, &'static str)> {
    let verdict = |met: Option<bool>| match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    };
    let median = |values: &[f64]| summarize(values).map(|summary| summary.median);
    let ratio = |value: Option<f64>| value.map_or("—".to_owned(), format_ratio);
    let runs = &result.runs;
    let cold_anchor = median(&derived.cold_vs_anchor);
    let cold_limit = median(&derived.cold_vs_limit);
    let warm = median(&derived.warm_vs_podman);
    let offline = median(&walls(&runs.tank_offline));
    let rss = runs
        .tank_cold
        .iter()
        .chain(&runs.tank_warm)
        .chain(&runs.tank_offline)
        .map(|sample| sample.max_rss)
        .max();
    vec![
        (
            format!("cold ≤ {COLD_VS_ANCHOR}× skopeo + umoci"),
            ratio(cold_anchor),
            verdict(cold_anchor.map(|value| value <= COLD_VS_ANCHOR)),
        ),
        (
            format!("cold ≤ {COLD_VS_LIMIT}× limit"),
            ratio(cold_limit),
            verdict(cold_limit.map(|value| value <= COLD_VS_LIMIT)),
        ),
        (
            "warm online ≤ podman warm".to_owned(),
            ratio(warm),
            verdict(warm.map(|value| value <= 1.0)),
        ),
        (
            format!("--offline ≤ {} ms", OFFLINE_SECONDS * 1000.0),
            offline.map_or("—".to_owned(), format_seconds),
            verdict(offline.map(|value| value <= OFFLINE_SECONDS)),
        ),
        (
            "peak RSS ≤ 64 MiB (max over tank runs)".to_owned(),
            rss.map_or("—".to_owned(), format_bytes),
            verdict(rss.map(|value| value <= RSS_BYTES)),
        ),
    ]
}

/// One line per image with the headline numbers.
pub(crate) fn summary_table(results: &[ImageResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| image | tank cold | skopeo + umoci | tank ÷ (skopeo + umoci) | limit | tank cold ÷ limit | limit + diff_id + sync | tank cold ÷ that | tank warm | podman warm | tank ÷ podman warm | tank --offline | tank peak RSS | rootfs = umoci's |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for result in results {
        let derived = derive(result);
        let runs = &result.runs;
        let median = |samples: &[Sample]| {
            summarize(&walls(samples))
                .map_or("—".to_owned(), |summary| format_seconds(summary.median))
        };
        let ratio = |values: &[f64]| {
            summarize(values).map_or("—".to_owned(), |summary| format_ratio(summary.median))
        };
        let rss = runs
            .tank_cold
            .iter()
            .chain(&runs.tank_warm)
            .chain(&runs.tank_offline)
            .map(|sample| sample.max_rss)
            .max()
            .map_or("—".to_owned(), format_bytes);
        let equal = if result.equality.differences.is_empty() {
            "yes".to_owned()
        } else {
            format!("**no** ({} differences)", result.equality.differences.len())
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            result.image.name,
            median(&runs.tank_cold),
            median(&derived.anchor),
            ratio(&derived.cold_vs_anchor),
            format_seconds(result.limit.estimate().as_secs_f64()),
            ratio(&derived.cold_vs_limit),
            format_seconds(result.limit.with_duties().as_secs_f64()),
            ratio(&derived.cold_vs_duties),
            median(&runs.tank_warm),
            median(&runs.podman_warm),
            ratio(&derived.warm_vs_podman),
            median(&runs.tank_offline),
            rss,
            equal,
        );
    }
    out
}

/// The whole `BENCHMARKS.md`.
pub(crate) fn document(
    options: &Options,
    command: &str,
    machine: &Machine,
    results: &[ImageResult],
    elapsed: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench` (`xtask/src/bench.rs`); do not edit by hand. To reproduce, \
         as root on a clone of this repository (debootstrap needs root; the machine needs Debian's \
         package mirror and crates.io, nothing else from the internet):\n\n```\n{command}\n```\n"
    );
    let _ = writeln!(
        out,
        "{} measured rounds per image after one warm-up round{}; the whole bench took {}.\n",
        options.runs,
        if options.quick {
            " (`--quick`: small images, a smoke run, not the real figures)"
        } else {
            ""
        },
        format_seconds(elapsed.as_secs_f64())
    );
    let _ = writeln!(out, "## Machine\n");
    for (name, value) in &machine.lines {
        let _ = writeln!(out, "- {name}: {value}");
    }
    let _ = writeln!(out, "\n## Summary (medians)\n");
    out.push_str(&summary_table(results));
    let _ = writeln!(out, "\n## Images\n");
    for result in results {
        out.push_str(&image_section(result));
        out.push('\n');
    }
    out.push_str(METHOD);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wall_ms: u64, rss_mib: u64) -> Sample {
        Sample {
            wall: Duration::from_millis(wall_ms),
            cpu: Duration::from_millis(wall_ms / 2),
            max_rss: rss_mib * 1024 * 1024,
        }
    }

    #[test]
    fn a_row_shows_median_range_cpu_and_peak_rss() {
        let mut out = String::new();
        row(
            &mut out,
            "tank cold",
            &[sample(1200, 30), sample(1000, 40), sample(1500, 35)],
            "x",
        );
        assert_eq!(
            out,
            "| tank cold | 1.20 s | 1.00 s–1.50 s | 600 ms | 40.0 MiB | x |\n"
        );
        let mut empty = String::new();
        row(&mut empty, "podman", &[], "");
        assert!(empty.is_empty());
    }

    #[test]
    fn combined_steps_add_times_and_keep_the_larger_rss() {
        let both = combined(
            &[sample(100, 10), sample(200, 5)],
            &[sample(50, 20), sample(60, 1)],
        );
        assert_eq!(both[0].wall, Duration::from_millis(150));
        assert_eq!(both[0].max_rss, 20 * 1024 * 1024);
        assert_eq!(both[1].wall, Duration::from_millis(260));
        assert_eq!(
            ratio_text(&pair_ratios(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0])),
            Some("1.00× (0.50×–1.50×)".to_owned())
        );
    }
}
