//! The machine's limit for pulling one image: each stage of a pull measured alone with the
//! fastest tool available, and the estimate of a perfect pipeline on this machine's cores.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};

use super::images::Image;
use super::layer::Compression;
use super::measure::{Logs, Sample, measure, process_cpu};
use super::stats::format_seconds;

/// A stage of a pull, measured alone.
#[derive(Clone, Debug)]
pub(crate) struct Stage {
    /// What the stage does.
    pub(crate) name: &'static str,
    /// The tool that was fastest, as shown in the table.
    pub(crate) tool: String,
    /// The fastest run's wall time.
    pub(crate) wall: Duration,
    /// That run's CPU time (for the transfer: curl's plus the registry's).
    pub(crate) cpu: Duration,
    /// Every tool tried, with its best wall time (the table lists them).
    pub(crate) tried: Vec<(String, Duration)>,
}

/// The stages and the estimates derived from them.
#[derive(Clone, Debug)]
pub(crate) struct Limit {
    /// Transfer, sha256, decompression, writing the files.
    pub(crate) stages: Vec<Stage>,
    /// What a correct pull pays on top and the limit leaves out: the diff_id check (sha256
    /// of the uncompressed layers) and durability (`syncfs` after writing the files).
    pub(crate) duties: Vec<Stage>,
    /// How many CPUs the estimate assumes.
    pub(crate) cores: usize,
}

impl Limit {
    /// The longest stage: what a pull takes if every stage overlapped perfectly with free
    /// cores to spare.
    pub(crate) fn max_stage(&self) -> Duration {
        self.stages
            .iter()
            .map(|stage| stage.wall)
            .max()
            .unwrap_or_default()
    }

    /// The CPU time of all stages spread over the cores: the floor when the stages, even
    /// overlapped, have to share the CPUs.
    pub(crate) fn cpu_bound(&self) -> Duration {
        let total: Duration = self.stages.iter().map(|stage| stage.cpu).sum();
        total / u32::try_from(self.cores.max(1)).unwrap_or(1)
    }

    /// The limit: the larger of the two.
    pub(crate) fn estimate(&self) -> Duration {
        self.max_stage().max(self.cpu_bound())
    }

    /// The limit of a pull that also checks diff_ids and makes its tree durable: the
    /// stages and the hashing of the uncompressed bytes share the cores as before, and the
    /// final sync comes after the last file.
    pub(crate) fn with_duties(&self) -> Duration {
        let (sync, compute): (Vec<&Stage>, Vec<&Stage>) = self
            .duties
            .iter()
            .partition(|stage| stage.name.starts_with("durability"));
        let cpu: Duration = self
            .stages
            .iter()
            .chain(compute.iter().copied())
            .map(|stage| stage.cpu)
            .sum();
        let longest = self
            .stages
            .iter()
            .chain(compute.iter().copied())
            .map(|stage| stage.wall)
            .max()
            .unwrap_or_default();
        let cores = u32::try_from(self.cores.max(1)).unwrap_or(1);
        let sync: Duration = sync.iter().map(|stage| stage.wall).sum();
        longest.max(cpu / cores) + sync
    }
}

/// What the limit measurements need from the bench.
pub(crate) struct Context<'a> {
    /// The registry's base URL (`http://127.0.0.1:PORT`).
    pub(crate) registry_url: &'a str,
    /// The registry's pid, whose CPU time counts towards the transfer.
    pub(crate) registry_pid: u32,
    /// The repository the image was pushed to (`bench/big-1`).
    pub(crate) repository: &'a str,
    /// The release build of xtask, for the in-process decoders and hashers.
    pub(crate) helper: &'a Path,
    /// A fresh directory on the cache's filesystem, removed only when the whole bench is done:
    /// every write run extracts into a new folder below it.
    pub(crate) scratch: &'a Path,
    /// Where command output goes.
    pub(crate) logs: &'a Logs,
    /// How many times each tool runs (the fastest run counts).
    pub(crate) repeats: usize,
    /// CPUs of the machine.
    pub(crate) cores: usize,
}

/// Runs `make(run)` for `run` in `0..repeats`; returns the run with the shortest wall time.
fn best(
    repeats: usize,
    mut make: impl FnMut(usize) -> anyhow::Result<Sample>,
) -> anyhow::Result<Sample> {
    let mut best: Option<Sample> = None;
    for run in 0..repeats.max(1) {
        let sample = make(run)?;
        if best.is_none_or(|best| sample.wall < best.wall) {
            best = Some(sample);
        }
    }
    Ok(best.expect("at least one run"))
}

/// A stage from the best run of each tool: the fastest tool wins.
fn stage(name: &'static str, runs: Vec<(String, Sample)>) -> anyhow::Result<Stage> {
    let (tool, sample) = runs
        .iter()
        .min_by_key(|(_, sample)| sample.wall)
        .with_context(|| format!("no tool measured {name}"))?;
    Ok(Stage {
        name,
        tool: tool.clone(),
        wall: sample.wall,
        cpu: sample.cpu,
        tried: runs
            .iter()
            .map(|(tool, sample)| (tool.clone(), sample.wall))
            .collect(),
    })
}

fn shell(script: &str, arguments: &[PathBuf]) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script).arg("sh").args(arguments);
    command
}

fn on_path(program: &str) -> bool {
    crate::tools::on_path(program)
}

/// Measures the stages of pulling `image`.
pub(crate) fn measure_limit(image: &Image, context: &Context<'_>) -> anyhow::Result<Limit> {
    let name = image.name.as_str();
    let blobs: Vec<PathBuf> = image
        .layers
        .iter()
        .map(|layer| layer.blob.clone())
        .collect();
    let log = |what: &str| format!("limit-{name}-{what}");

    // Transfer: every blob over loopback to /dev/null, one curl for all of them.
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--fail"]);
    for layer in &image.layers {
        curl.arg("--output").arg("/dev/null").arg(format!(
            "{}/v2/{}/blobs/{}",
            context.registry_url, context.repository, layer.digest
        ));
    }
    let transfer = best(context.repeats, |_| {
        let before = process_cpu(context.registry_pid)?;
        let (mut sample, _) = measure(&mut curl, context.logs, &log("curl"))?;
        sample.cpu += process_cpu(context.registry_pid)?.saturating_sub(before);
        Ok(sample)
    })?;
    let transfer = stage(
        "transfer (loopback)",
        vec![("curl > /dev/null (+ registry CPU)".to_owned(), transfer)],
    )?;

    // sha256 of the compressed blobs.
    let mut hashes = Vec::new();
    let mut sha256sum = Command::new("sha256sum");
    sha256sum.args(&blobs);
    hashes.push((
        "sha256sum".to_owned(),
        best(context.repeats, |_| {
            Ok(measure(&mut sha256sum, context.logs, &log("sha256sum"))?.0)
        })?,
    ));
    let mut sha2 = Command::new(context.helper);
    sha2.args(["bench", "--helper", "sha256"]).args(&blobs);
    hashes.push((
        "sha2 crate".to_owned(),
        best(context.repeats, |_| {
            Ok(measure(&mut sha2, context.logs, &log("sha2"))?.0)
        })?,
    ));
    let hash = stage("sha256", hashes)?;

    // Decompression alone, to nothing.
    let mut decoders: Vec<(String, Command)> = Vec::new();
    let zstd = image
        .layers
        .iter()
        .all(|layer| layer.compression == Compression::Zstd);
    let gzip = image
        .layers
        .iter()
        .all(|layer| layer.compression == Compression::Gzip);
    if zstd {
        decoders.push((
            "zstd -d".to_owned(),
            shell(r#"zstd -d -q -c "$@" > /dev/null"#, &blobs),
        ));
        let mut helper = Command::new(context.helper);
        helper.args(["bench", "--helper", "unzstd"]).args(&blobs);
        decoders.push(("zstd crate".to_owned(), helper));
    } else if gzip {
        let mut helper = Command::new(context.helper);
        helper.args(["bench", "--helper", "gunzip"]).args(&blobs);
        decoders.push(("flate2 (zlib-rs)".to_owned(), helper));
        decoders.push((
            "gzip -d".to_owned(),
            shell(r#"gzip -d -c "$@" > /dev/null"#, &blobs),
        ));
        if on_path("pigz") {
            decoders.push((
                "pigz -d".to_owned(),
                shell(r#"pigz -d -c "$@" > /dev/null"#, &blobs),
            ));
        }
    } else {
        bail!("{name} mixes compressions; the bench images never do");
    }
    let mut decoded = Vec::new();
    for (tool, mut command) in decoders {
        let label = log(&format!(
            "decompress-{}",
            tool.split(' ').next().unwrap_or("tool")
        ));
        let sample = best(context.repeats, |_| {
            Ok(measure(&mut command, context.logs, &label)?.0)
        })?;
        decoded.push((tool, sample));
    }
    let decompress = stage("decompress", decoded)?;

    // Writing the files alone: GNU tar from the uncompressed layer tars, bottom first, into a
    // fresh directory on the cache's filesystem. Every run gets a new one and none is removed
    // before the bench ends: ext4 without a journal scans past recently deleted inodes when
    // it creates files, which made this stage take anywhere from 0.08 s to 2.7 s on the same
    // tar while the previous run's tree was removed just before.
    let tars: Vec<PathBuf> = image.layers.iter().map(|layer| layer.tar.clone()).collect();
    let fresh = |tool: &str, run: usize| -> anyhow::Result<PathBuf> {
        let target = context.scratch.join(format!("limit-{tool}-{run}"));
        std::fs::create_dir(&target).with_context(|| format!("creating {}", target.display()))?;
        super::sync();
        Ok(target)
    };
    let written = best(context.repeats, |run| {
        let target = fresh("tar", run)?;
        let mut untar = shell(
            r#"dir="$1"; shift; for t in "$@"; do tar --no-same-owner -xf "$t" -C "$dir" || exit 1; done"#,
            &std::iter::once(target)
                .chain(tars.iter().cloned())
                .collect::<Vec<_>>(),
        );
        Ok(measure(&mut untar, context.logs, &log("tar-x"))?.0)
    })?;
    let crate_written = best(context.repeats, |run| {
        let target = fresh("tar-crate", run)?;
        let mut crate_untar = Command::new(context.helper);
        crate_untar
            .args(["bench", "--helper", "untar"])
            .arg(&target)
            .args(&tars);
        Ok(measure(&mut crate_untar, context.logs, &log("tar-crate"))?.0)
    })?;
    let write = stage(
        "write files",
        vec![
            ("GNU tar -xf (uncompressed)".to_owned(), written),
            ("tar crate unpack".to_owned(), crate_written),
        ],
    )?;

    // The diff_id check: sha256 of the uncompressed layer tars.
    let mut diff_ids = Command::new(context.helper);
    diff_ids.args(["bench", "--helper", "sha256"]).args(&tars);
    let diff_id = stage(
        "diff_id check (sha256 of the uncompressed layers)",
        vec![(
            "sha2 crate".to_owned(),
            best(context.repeats, |_| {
                Ok(measure(&mut diff_ids, context.logs, &log("diff-id"))?.0)
            })?,
        )],
    )?;

    // Durability: `sync -f` (syncfs) of a tree GNU tar just wrote, timed alone.
    let synced = best(context.repeats, |run| {
        let target = fresh("tar-sync", run)?;
        let mut untar = shell(
            r#"dir="$1"; shift; for t in "$@"; do tar --no-same-owner -xf "$t" -C "$dir" || exit 1; done"#,
            &std::iter::once(target.clone())
                .chain(tars.iter().cloned())
                .collect::<Vec<_>>(),
        );
        measure(&mut untar, context.logs, &log("tar-x-before-sync"))?;
        let mut sync = Command::new("sync");
        sync.arg("-f").arg(&target);
        Ok(measure(&mut sync, context.logs, &log("syncfs"))?.0)
    })?;
    let durability = stage(
        "durability (syncfs of the written tree)",
        vec![("sync -f after GNU tar".to_owned(), synced)],
    )?;

    Ok(Limit {
        stages: vec![transfer, hash, decompress, write],
        duties: vec![diff_id, durability],
        cores: context.cores,
    })
}

/// `xtask bench --helper OP FILE…`: the in-process stages, run from the release build so
/// they run at full speed. `sha256` hashes each file, `gunzip` and `unzstd` decompress each
/// to nothing; prints one line per file.
pub(crate) fn helper(operation: &str, files: &[String]) -> anyhow::Result<()> {
    if files.is_empty() {
        bail!("--helper {operation} needs files");
    }
    if operation == "untar" {
        // untar DIR TAR…: the tar crate's extractor, bottom layer first.
        let (dir, tars) = files.split_first().expect("files is not empty");
        if tars.is_empty() {
            bail!("--helper untar needs a folder and tars");
        }
        for tar in tars {
            let file = File::open(tar).with_context(|| format!("opening {tar}"))?;
            let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
            archive.set_preserve_permissions(true);
            archive.set_preserve_mtime(true);
            archive.set_overwrite(true);
            archive
                .unpack(dir)
                .with_context(|| format!("unpacking {tar} into {dir}"))?;
        }
        return Ok(());
    }
    for file in files {
        let reader = BufReader::with_capacity(
            1 << 20,
            File::open(file).with_context(|| format!("opening {file}"))?,
        );
        let failed = || format!("{operation} of {file}");
        match operation {
            "sha256" => {
                let mut hasher = Sha256::new();
                let mut reader = reader;
                let mut buffer = vec![0_u8; 1 << 20];
                loop {
                    let read = reader.read(&mut buffer).with_context(failed)?;
                    if read == 0 {
                        break;
                    }
                    hasher.update(&buffer[..read]);
                }
                let hex: String = hasher
                    .finalize()
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                println!("{hex}  {file}");
            }
            "gunzip" => {
                let mut decoder = flate2::read::MultiGzDecoder::new(reader);
                let bytes = io::copy(&mut decoder, &mut io::sink()).with_context(failed)?;
                println!("{bytes} bytes  {file}");
            }
            "unzstd" => {
                let mut decoder = zstd::Decoder::with_buffer(reader).with_context(failed)?;
                let bytes = io::copy(&mut decoder, &mut io::sink()).with_context(failed)?;
                println!("{bytes} bytes  {file}");
            }
            other => bail!("unknown helper {other:?} (sha256, gunzip, unzstd, untar)"),
        }
    }
    Ok(())
}

/// One line describing the estimate: `max stage 1.20 s; CPU 3.0 s / 2 = 1.50 s; limit 1.50 s`.
pub(crate) fn describe(limit: &Limit) -> String {
    format!(
        "longest stage {}; all stages' CPU / {} cores = {}; limit = the larger = {}",
        format_seconds(limit.max_stage().as_secs_f64()),
        limit.cores,
        format_seconds(limit.cpu_bound().as_secs_f64()),
        format_seconds(limit.estimate().as_secs_f64()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_of(wall_ms: u64, cpu_ms: u64) -> Stage {
        Stage {
            name: "s",
            tool: "t".into(),
            wall: Duration::from_millis(wall_ms),
            cpu: Duration::from_millis(cpu_ms),
            tried: Vec::new(),
        }
    }

    #[test]
    fn the_limit_is_the_longest_stage_or_the_cpu_spread_over_the_cores() {
        let limit = Limit {
            stages: vec![stage_of(100, 80), stage_of(300, 290), stage_of(200, 60)],
            duties: Vec::new(),
            cores: 2,
        };
        assert_eq!(limit.max_stage(), Duration::from_millis(300));
        assert_eq!(limit.cpu_bound(), Duration::from_millis(215));
        assert_eq!(limit.estimate(), Duration::from_millis(300));
        let busy = Limit {
            stages: vec![stage_of(300, 300), stage_of(300, 300), stage_of(250, 250)],
            duties: Vec::new(),
            cores: 2,
        };
        assert_eq!(busy.estimate(), Duration::from_millis(425));
        assert_eq!(busy.with_duties(), busy.estimate());
        let mut hashed = Stage {
            name: "diff_id check",
            ..stage_of(150, 150)
        };
        let synced = Stage {
            name: "durability (syncfs)",
            ..stage_of(200, 10)
        };
        hashed.tool = "sha2".into();
        let dutiful = Limit {
            duties: vec![hashed, synced],
            ..busy
        };
        // (850 + 150) / 2 = 500 ms of shared CPU, then 200 ms of sync.
        assert_eq!(dutiful.with_duties(), Duration::from_millis(700));
        assert_eq!(dutiful.estimate(), Duration::from_millis(425));
    }

    #[test]
    fn the_fastest_tool_is_the_stage() {
        let slow = Sample {
            wall: Duration::from_millis(500),
            ..Sample::default()
        };
        let fast = Sample {
            wall: Duration::from_millis(200),
            cpu: Duration::from_millis(190),
            max_rss: 0,
        };
        let chosen = stage("x", vec![("slow".into(), slow), ("fast".into(), fast)]).unwrap();
        assert_eq!(chosen.tool, "fast");
        assert_eq!(chosen.cpu, Duration::from_millis(190));
        assert_eq!(chosen.tried.len(), 2);
    }

    #[test]
    fn helpers_hash_and_decompress() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.gz");
        let mut encoder = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        io::Write::write_all(&mut encoder, b"hello").unwrap();
        encoder.finish().unwrap();
        let path = gz.display().to_string();
        helper("sha256", std::slice::from_ref(&path)).unwrap();
        helper("gunzip", std::slice::from_ref(&path)).unwrap();
        // Not zstd: the decoder must fail rather than report success.
        assert!(helper("unzstd", std::slice::from_ref(&path)).is_err());
        assert!(helper("nope", std::slice::from_ref(&path)).is_err());
        assert!(helper("sha256", &[]).is_err());

        let tar_path = dir.path().join("layer.tar");
        let mut builder = tar::Builder::new(File::create(&tar_path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o640);
        builder
            .append_data(&mut header, "etc/motd", &b"hello"[..])
            .unwrap();
        builder.into_inner().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        helper(
            "untar",
            &[out.display().to_string(), tar_path.display().to_string()],
        )
        .unwrap();
        assert_eq!(std::fs::read(out.join("etc/motd")).unwrap(), b"hello");
        assert!(helper("untar", &[out.display().to_string()]).is_err());
    }
}
