//! Running a command to its end and measuring what it cost: wall time, CPU time and peak
//! resident memory (from wait4(2)), with a deadline after which it is killed.

use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The CPU time and peak RSS wait4 reports for one child (and the descendants it waited for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// The largest resident set, in bytes.
    pub max_rss: u64,
}

/// A finished command: its output, status and cost.
#[derive(Debug)]
pub struct Measured {
    /// How it ended (killed by SIGKILL when it ran past the deadline).
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// What it cost.
    pub usage: Usage,
    /// From the spawn to its end.
    pub wall: Duration,
    /// Whether it was killed for running past the deadline.
    pub timed_out: bool,
}

impl Measured {
    /// Peak RSS in MiB, for messages.
    pub fn max_rss_mib(&self) -> f64 {
        self.usage.max_rss as f64 / (1024.0 * 1024.0)
    }
}

/// Runs `command` (stdin closed, stdout and stderr captured) until it ends or `deadline`
/// passes, when it is killed with everything it started; returns its output and what it
/// cost.
///
/// The command runs under GNU time (`/usr/bin/time`, Debian package `time`), which reports
/// the peak RSS of the command alone: wait4 on a child spawned by this (possibly large)
/// process would also count the memory the child shared with it before `exec`. The
/// environment is only what `command` sets explicitly, as after `env_clear`.
///
/// # Errors
///
/// When GNU time or the command cannot start, or its report cannot be read.
pub fn output_with_usage(command: &mut Command, deadline: Duration) -> io::Result<Measured> {
    use std::os::unix::process::CommandExt as _;
    let report = tempfile::NamedTempFile::new()?;
    let mut timed = Command::new(GNU_TIME);
    timed
        .args(["-f", "%M %e %U %S", "-o"])
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args())
        .env_clear()
        .process_group(0);
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            timed.env(key, value);
        }
    }
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    let start = Instant::now();
    let mut child = timed
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot run {GNU_TIME} (apt-get install time): {error}"),
            )
        })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > deadline && !timed_out {
            timed_out = true;
            kill_group(&child);
        }
        thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed();
    let text = std::fs::read_to_string(report.path())?;
    // When the command was killed, GNU time writes "Command terminated by signal 9" first.
    let line = text.lines().last().unwrap_or_default();
    let fields: Vec<f64> = line
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    let (max_rss_kib, user, system) = match fields[..] {
        [max_rss_kib, _, user, system] => (max_rss_kib, user, system),
        // Killed with the command, GNU time reported nothing.
        _ if timed_out => (0.0, 0.0, 0.0),
        _ => {
            return Err(io::Error::other(format!(
                "cannot read GNU time's report {text:?}"
            )));
        }
    };
    Ok(Measured {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        usage: Usage {
            cpu: Duration::from_secs_f64(user + system),
            max_rss: (max_rss_kib as u64) * 1024,
        },
        wall,
        timed_out,
    })
}

/// GNU time, which reports a command's own peak RSS.
const GNU_TIME: &str = "/usr/bin/time";

/// Kills the process group of `child` (GNU time and the command it runs).
fn kill_group(child: &Child) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for the child `pid` with wait4(2), which, unlike `Child::wait`, also returns the
/// child's resource usage. The `Child` handle must not be waited for by anyone else.
///
/// # Errors
///
/// When wait4 fails (the pid is not an unwaited child of this process).
pub fn wait_with_usage(pid: u32) -> io::Result<(ExitStatus, Usage)> {
    wait4(pid, 0).map(|ended| ended.expect("wait4 without WNOHANG returns only when it ended"))
}

/// As [`wait_with_usage`], but returns `None` at once when the child is still running.
///
/// # Errors
///
/// As [`wait_with_usage`].
pub fn try_wait_with_usage(pid: u32) -> io::Result<Option<(ExitStatus, Usage)>> {
    wait4(pid, libc::WNOHANG)
}

#[allow(
    unsafe_code,
    reason = "wait4(2) with rusage: std and rustix have no safe wrapper"
)]
fn wait4(pid: u32, options: libc::c_int) -> io::Result<Option<(ExitStatus, Usage)>> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is a child of this process that nothing else waits for; `status` and
        // `usage` are live, writable locals of the types wait4 expects.
        let waited = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
        if waited == pid {
            break;
        }
        if waited == 0 {
            return Ok(None);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let time = |value: libc::timeval| {
        Duration::from_secs(u64::try_from(value.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(value.tv_usec).unwrap_or(0))
    };
    Ok(Some((
        ExitStatus::from_raw(status),
        Usage {
            cpu: time(usage.ru_utime) + time(usage.ru_stime),
            // Linux reports ru_maxrss in KiB.
            max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_commands_own_memory_and_kills_at_the_deadline() {
        // A 64 MiB string in a small shell is measured as the shell's own, and what this
        // (test) process holds is not counted.
        let ballast = vec![1_u8; 256 << 20];
        let measured = output_with_usage(
            Command::new("sh")
                .args([
                    "-c",
                    "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}; echo err >&2",
                ])
                .env("PATH", std::env::var_os("PATH").unwrap_or_default()),
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(ballast.iter().all(|byte| *byte == 1));
        assert!(measured.status.success(), "{measured:?}");
        assert_eq!(String::from_utf8_lossy(&measured.stdout).trim(), "67108864");
        assert_eq!(measured.stderr, b"err\n");
        assert!(!measured.timed_out);
        let mib = measured.max_rss_mib();
        assert!(mib > 60.0 && mib < 200.0, "{mib} MiB");

        let measured = output_with_usage(
            Command::new("sh").args(["-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(measured.timed_out);
        assert!(!measured.status.success());
        assert!(measured.wall < Duration::from_secs(10));
    }
}
