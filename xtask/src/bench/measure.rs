//! Running one command and measuring it: wall time, user+sys CPU time and peak RSS of the
//! child and every descendant it waited for, from wait4(2).

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tank_testkit::wait_with_usage;

/// What one run of a command cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    /// From just before the spawn to the return of wait4.
    pub(crate) wall: Duration,
    /// User plus system CPU time of the process and its waited-for descendants.
    pub(crate) cpu: Duration,
    /// The largest resident set of the process or of one of its waited-for descendants, in
    /// bytes.
    pub(crate) max_rss: u64,
}

impl Sample {
    /// The wall time in seconds.
    pub(crate) fn wall_seconds(&self) -> f64 {
        self.wall.as_secs_f64()
    }

    /// The CPU time in seconds.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.cpu.as_secs_f64()
    }
}

/// Where a measured command's output goes (`<dir>/<name>.out` and `<dir>/<name>.err`), and
/// how it is started.
#[derive(Clone, Debug)]
pub(crate) struct Logs {
    dir: PathBuf,
    launcher: Option<PathBuf>,
}

impl Logs {
    /// Output files in `dir` (created); commands are started directly.
    pub(crate) fn new(dir: &Path) -> anyhow::Result<Logs> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Logs {
            dir: dir.to_path_buf(),
            launcher: None,
        })
    }

    /// Starts every command through `xtask bench --helper run` of the xtask binary
    /// `launcher` (see [`launch`]).
    ///
    /// Linux starts a child's peak RSS at its parent's peak RSS (exec records the high-water
    /// mark of the address space it replaces, which a vfork child shares with its parent and
    /// a fork child copies), so a child of a parent that grew to 100 MiB reports at least
    /// 100 MiB. The launcher is a fresh small process, so what it reports is the command's
    /// own peak plus the launcher's few MiB.
    pub(crate) fn with_launcher(mut self, launcher: &Path) -> Logs {
        self.launcher = Some(launcher.to_path_buf());
        self
    }
}

/// Runs `command` with its stdout and stderr in files under `logs` named after `name`, and
/// measures it. Fails, quoting the end of stderr, when it exits unsuccessfully; returns the
/// sample and stdout.
pub(crate) fn measure(
    command: &mut Command,
    logs: &Logs,
    name: &str,
) -> anyhow::Result<(Sample, String)> {
    let out_path = logs.dir.join(format!("{name}.out"));
    let err_path = logs.dir.join(format!("{name}.err"));
    let out =
        File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let err =
        File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let shown = format!("{command:?}");
    if let Some(launcher) = &logs.launcher {
        return measure_launched(
            command,
            launcher,
            &logs.dir.join(format!("{name}.usage")),
            &shown,
            &out_path,
            &err_path,
        );
    }
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let (status, usage) =
        wait_with_usage(child.id()).with_context(|| format!("waiting for {shown}"))?;
    let wall = start.elapsed();
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{shown} failed ({status}):\n{}", tail.join("\n"));
    }
    Ok((
        Sample {
            wall,
            cpu: usage.cpu,
            max_rss: usage.max_rss,
        },
        stdout,
    ))
}

/// The last lines of the file `path`, for an error message.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(15).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Runs `command` through the launcher, which writes the usage to `usage_path`.
fn measure_launched(
    command: &mut Command,
    launcher: &Path,
    usage_path: &Path,
    shown: &str,
    out_path: &Path,
    err_path: &Path,
) -> anyhow::Result<(Sample, String)> {
    // Not removed first (no deletions while the bench measures): the launcher overwrites it,
    // and its file is read only when the launcher succeeded, which means it wrote it.
    let mut wrapper = Command::new(launcher);
    wrapper
        .args(["bench", "--helper", "run"])
        .arg(usage_path)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapper.env(key, value),
            None => wrapper.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapper.current_dir(dir);
    }
    let out = File::create(out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let err = File::create(err_path).with_context(|| format!("creating {}", err_path.display()))?;
    let status = wrapper
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .status()
        .with_context(|| format!("starting {shown} through {}", launcher.display()))?;
    if !status.success() {
        bail!("launching {shown} failed ({status}):\n{}", tail(err_path));
    }
    let usage = fs::read_to_string(usage_path)
        .with_context(|| format!("reading {}", usage_path.display()))?;
    let numbers: Vec<u64> = usage
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not four numbers: {usage:?}", usage_path.display()))?;
    let [wall, cpu, max_rss, raw_status] = numbers[..] else {
        bail!("{} is not four numbers: {usage:?}", usage_path.display());
    };
    let child_status = ExitStatus::from_raw(i32::try_from(raw_status).unwrap_or(-1));
    if !child_status.success() {
        bail!("{shown} failed ({child_status}):\n{}", tail(err_path));
    }
    Ok((
        Sample {
            wall: Duration::from_nanos(wall),
            cpu: Duration::from_nanos(cpu),
            max_rss,
        },
        fs::read_to_string(out_path).unwrap_or_default(),
    ))
}

/// `xtask bench --helper run USAGE PROGRAM ARG…`: runs the program (stdio and environment
/// inherited), waits for it with wait4 and writes `wall_ns cpu_ns max_rss_bytes status` to
/// USAGE, where `status` is the raw wait status. Fails only when the program cannot start.
pub(crate) fn launch(arguments: &[String]) -> anyhow::Result<()> {
    let [usage_path, program, rest @ ..] = arguments else {
        bail!("--helper run needs a usage file and a program");
    };
    let start = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let (status, usage) =
        wait_with_usage(child.id()).with_context(|| format!("waiting for {program}"))?;
    let wall = start.elapsed();
    fs::write(
        usage_path,
        format!(
            "{} {} {} {}\n",
            wall.as_nanos(),
            usage.cpu.as_nanos(),
            usage.max_rss,
            status.into_raw()
        ),
    )
    .with_context(|| format!("writing {usage_path}"))?;
    Ok(())
}

/// The CPU time (user + system) process `pid` has used so far, from `/proc/<pid>/stat`;
/// used for the registry's share of a transfer.
pub(crate) fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    stat_cpu(&stat).with_context(|| format!("parsing {path}"))
}

/// utime + stime of a `/proc/<pid>/stat` line.
fn stat_cpu(stat: &str) -> anyhow::Result<Duration> {
    // Fields after the command name (which may hold spaces and parentheses) start after the
    // last ')'.
    let (_, rest) = stat
        .rsplit_once(')')
        .context("no ')' after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (counting from 1); `rest` starts at field 3.
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index - 3)
            .context("too few fields")?
            .parse::<u64>()
            .with_context(|| format!("field {index} is not a number"))
    };
    let total = ticks(14)? + ticks(15)?;
    // sysconf(_SC_CLK_TCK) is 100 on every Linux architecture this runs on.
    Ok(Duration::from_millis(total * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_and_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::new(dir.path()).unwrap();
        // A shell that burns CPU in a loop, then prints: CPU time and RSS must be counted.
        let (sample, stdout) = measure(
            Command::new("sh").args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done $i",
            ]),
            &logs,
            "busy",
        )
        .unwrap();
        assert_eq!(stdout, "done 200000\n");
        assert!(sample.cpu > Duration::ZERO, "{sample:?}");
        assert!(sample.max_rss > 100 * 1024, "{sample:?}");
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::new(dir.path()).unwrap();
        let error = measure(
            Command::new("sh").args(["-c", "echo broken pipe dream >&2; exit 3"]),
            &logs,
            "fail",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("broken pipe dream"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
    }

    #[test]
    fn the_launcher_reports_the_usage_and_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let usage = dir.path().join("usage");
        let usage_text = usage.display().to_string();
        launch(&[
            usage_text.clone(),
            "sh".into(),
            "-c".into(),
            "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exit 4".into(),
        ])
        .unwrap();
        let numbers: Vec<u64> = fs::read_to_string(&usage)
            .unwrap()
            .split_whitespace()
            .map(|number| number.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 4);
        assert!(numbers[1] > 0, "CPU time: {numbers:?}");
        assert!(numbers[2] > 0, "peak RSS: {numbers:?}");
        assert_eq!(
            ExitStatus::from_raw(i32::try_from(numbers[3]).unwrap()).code(),
            Some(4)
        );
        assert!(launch(&[usage_text.clone(), "/nonexistent/program".into()]).is_err());
        assert!(launch(&[usage_text]).is_err());
    }

    #[test]
    fn stat_cpu_adds_user_and_system_ticks() {
        let stat = "4242 (docker (reg) 1) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    250 75 0 0 20 0 12 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(stat_cpu(stat).unwrap(), Duration::from_millis(3250));
        assert!(stat_cpu("4242 (short) S 1 2").is_err());
        process_cpu(std::process::id()).expect("this process's stat is readable");
    }
}
