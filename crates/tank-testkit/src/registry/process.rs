//! The registry process: finding programs, a free port, waiting until the registry answers,
//! and stopping it.

use std::env;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http::http_get;
use crate::Error;

/// Finds `program` through the environment variable `override_variable`, else on `PATH`.
pub(crate) fn find_program(
    program: &str,
    override_variable: &str,
    package: &str,
) -> Result<PathBuf, Error> {
    if let Some(value) = env::var_os(override_variable).filter(|value| !value.is_empty()) {
        let path = PathBuf::from(value);
        if is_executable(&path) {
            return Ok(path);
        }
        return Err(Error::ToolMissing {
            program: program.to_owned(),
            looked_in: format!(
                "${override_variable} = {} is not an executable file",
                path.display()
            ),
            package: package.to_owned(),
        });
    }
    let search_path = env::var_os("PATH").unwrap_or_default();
    for dir in env::split_paths(&search_path) {
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::ToolMissing {
        program: program.to_owned(),
        looked_in: format!("not on PATH, and ${override_variable} is not set"),
        package: package.to_owned(),
    })
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Keeps a failed registry's temporary directory, so the log named in the error survives.
pub(super) fn keep_for_debugging(temp_dir: Option<TempDir>) {
    if let Some(temp_dir) = temp_dir {
        let _kept: PathBuf = temp_dir.keep();
    }
}

pub(super) fn stop(child: &mut Child) {
    // The process may already have exited; either way, reap it so no zombie is left.
    let _ = child.kill();
    let _ = child.wait();
}

pub(super) enum Startup {
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

pub(super) fn wait_until_ready(
    child: &mut Child,
    host: &str,
    log_path: &Path,
    timeout: Duration,
    tls: bool,
) -> Startup {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Startup::Exited(status);
        }
        // Answering is not enough: another process may have taken the port we picked. The
        // registry logs "listening on" only once its own bind succeeded.
        let listening = fs::read_to_string(log_path)
            .map(|log| log.contains("listening on"))
            .unwrap_or(false);
        // A TLS registry is not asked in plain HTTP: accepting a connection is enough.
        let answers = if tls {
            TcpStream::connect(host).is_ok()
        } else {
            http_get(host, "/v2/", &[]).is_ok()
        };
        if listening && answers {
            if let Ok(Some(status)) = child.try_wait() {
                return Startup::Exited(status);
            }
            return Startup::Ready;
        }
        if Instant::now() >= deadline {
            return Startup::TimedOut;
        }
        thread::sleep(Duration::from_millis(25));
    }
}

pub(super) fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| Error::FreePort { source })?;
    let address = listener
        .local_addr()
        .map_err(|source| Error::FreePort { source })?;
    Ok(address.port())
}
