//! `docs/FLEET.md`: the machine, the summary and per-round tables, and what the numbers mean.

use super::*;

/// `(label, value)` lines about the machine and the build.
pub(super) fn describe_machine(root: &Path, tank: &Path) -> Vec<(String, String)> {
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

pub(super) fn format_bytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

pub(super) fn seconds(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64())
}

pub(super) fn median<T: Copy + Ord>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

/// `median (min–max)` of durations, in seconds.
pub(super) fn spread(values: &[Duration]) -> String {
    match (median(values), values.iter().min(), values.iter().max()) {
        (Some(median), Some(min), Some(max)) if values.len() > 1 => {
            format!("{} ({}–{})", seconds(median), seconds(*min), seconds(*max))
        }
        (Some(median), _, _) => seconds(median),
        _ => "–".to_owned(),
    }
}

/// `median (min–max)` of counts.
pub(super) fn count_spread(values: &[usize]) -> String {
    match (median(values), values.iter().min(), values.iter().max()) {
        (Some(median), Some(min), Some(max)) if min != max => format!("{median} ({min}–{max})"),
        (Some(median), _, _) => median.to_string(),
        _ => "–".to_owned(),
    }
}

/// The one-line-per-scenario table.
pub(super) fn summary_table(runs: &[(Scenario, Vec<Measured>)]) -> String {
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
pub(super) fn scenario_table(measured: &[Measured]) -> String {
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
pub(super) fn upstream_medians(
    runs: &[(Scenario, Vec<Measured>)],
    scenario: Scenario,
) -> (usize, usize) {
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
pub(super) fn explanation(
    options: &Options,
    image: &Image,
    runs: &[(Scenario, Vec<Measured>)],
) -> String {
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

pub(super) fn document(
    options: &Options,
    machine: &[(String, String)],
    image: &Image,
    runs: &[(Scenario, Vec<Measured>)],
    elapsed: Duration,
) -> String {
    let mut text = String::from(
        "# A fleet of pulls, with and without a pull-through mirror\n\n\
         Written by `cargo xtask bench-fleet` (xtask/src/fleet/); do not edit by hand.\n\n",
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
