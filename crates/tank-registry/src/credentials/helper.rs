//! The credential-helper process runner: starts `docker-credential-<name> get`, feeds it the
//! server URL, reads its output on reader threads with a size cap, kills it after the timeout,
//! and turns its answer into a [`Credential`].

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Credential, CredentialStore};
use crate::Error;

/// What a credential helper says when it holds nothing for the server URL.
const HELPER_NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";

/// How long a credential helper may run by default before it is killed.
pub(super) const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most helper output kept (per stream); the rest is read and dropped, and output over
/// it is an error.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;

/// What stands for an output stream that passed [`HELPER_OUTPUT_LIMIT`].
const OVER_LIMIT_MARK: &str = "(output larger than the 1048576-byte limit, not kept)";

impl CredentialStore {
    /// Runs `docker-credential-<helper> get` for `server_url`.
    pub(super) fn run_helper(
        &self,
        helper: &str,
        registry: &str,
        server_url: &str,
        config: &Path,
    ) -> Result<Option<Credential>, Error> {
        let failed = |reason: String| Error::CredentialHelper {
            helper: helper.to_owned(),
            registry: registry.to_owned(),
            path: config.to_owned(),
            reason,
        };
        let valid_name = helper
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))
            && !helper.starts_with('.');
        if !valid_name {
            return Err(failed(
                "the helper name may hold only letters, digits, '-', '_' and '.'".to_owned(),
            ));
        }
        let program = format!("docker-credential-{helper}");
        let executable = self
            .helper_dir
            .as_ref()
            .map(|dir| dir.join(&program))
            .filter(|candidate| candidate.is_file())
            .unwrap_or_else(|| PathBuf::from(&program));

        tracing::debug!(helper = %program, registry, "running credential helper");
        let mut child = match spawn_helper(&executable) {
            Ok(child) => child,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(Error::CredentialHelperNotFound {
                    helper: helper.to_owned(),
                    registry: registry.to_owned(),
                    path: config.to_owned(),
                });
            }
            Err(error) => {
                return Err(failed(format!(
                    "cannot start {}: {error}",
                    executable.display()
                )));
            }
        };
        let output = match wait_with_timeout(&mut child, server_url, self.helper_timeout) {
            Ok(output) => output,
            Err(reason) => return Err(failed(reason)),
        };

        if output.stdout == OVER_LIMIT_MARK.as_bytes() {
            return Err(failed(format!(
                "its output is larger than the {HELPER_OUTPUT_LIMIT}-byte limit"
            )));
        }
        if !output.status.success() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stdout.contains(HELPER_NOT_FOUND_MESSAGE)
                || stderr.contains(HELPER_NOT_FOUND_MESSAGE)
            {
                return Ok(None);
            }
            let message = [stdout.trim(), stderr.trim()]
                .into_iter()
                .find(|text| !text.is_empty())
                .map(|text| format!(": {}", shorten(text)))
                .unwrap_or_default();
            return Err(failed(format!("{}{message}", output.status)));
        }

        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|error| {
            // The serde message may quote parts of the output, which may hold the secret.
            failed(format!(
                "its output is not credential JSON ({:?} error at line {} column {})",
                error.classify(),
                error.line(),
                error.column()
            ))
        })?;
        Ok(answer.into_credential())
    }
}

/// Starts a helper with its three standard streams piped, retrying briefly when the file is
/// busy (another thread's fork can hold a just-written executable open for a moment).
fn spawn_helper(executable: &Path) -> io::Result<Child> {
    let mut attempts = 0;
    loop {
        let spawned = Command::new(executable)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Err(error) if error.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 5 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(10 * attempts));
            }
            other => return other,
        }
    }
}

/// What a finished helper printed.
struct HelperOutput {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Writes `input` to the child's stdin, collects its output and waits for it to exit, killing
/// it after `timeout`. The error is the reason for [`Error::CredentialHelper`].
fn wait_with_timeout(
    child: &mut Child,
    input: &str,
    timeout: Duration,
) -> Result<HelperOutput, String> {
    let deadline = Instant::now() + timeout;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its exit status instead.
        if let Err(error) = stdin.write_all(input.as_bytes()) {
            if error.kind() != io::ErrorKind::BrokenPipe {
                kill(child);
                return Err(format!("cannot write the server url to its input: {error}"));
            }
        }
    }
    let (sender, receiver) = mpsc::channel();
    let mut readers = 0;
    if let Some(stdout) = child.stdout.take() {
        spawn_reader(stdout, true, sender.clone());
        readers += 1;
    }
    if let Some(stderr) = child.stderr.take() {
        spawn_reader(stderr, false, sender);
        readers += 1;
    }

    let mut poll = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(error) => {
                kill(child);
                return Err(format!("cannot wait for it: {error}"));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            kill(child);
            return Err(format!(
                "it did not finish within {timeout:?} and was killed"
            ));
        }
        thread::sleep(poll.min(deadline - now));
        poll = (poll * 2).min(Duration::from_millis(50));
    };

    // Its output pipes close when it exits, unless it left a process behind holding them.
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    for _ in 0..readers {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        match receiver.recv_timeout(wait) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => return Err("it exited but left its output open".to_owned()),
        }
    }
    Ok(HelperOutput {
        status,
        stdout,
        stderr,
    })
}

/// Reads one of a helper's output streams on its own thread (so neither pipe fills up and
/// blocks the helper), keeping at most [`HELPER_OUTPUT_LIMIT`] bytes.
fn spawn_reader(
    mut stream: impl Read + Send + 'static,
    is_stdout: bool,
    sender: mpsc::Sender<(bool, Vec<u8>)>,
) {
    thread::spawn(move || {
        let mut kept = Vec::new();
        // A read error ends the output early; the exit status and JSON parsing judge the rest.
        let _ = (&mut stream)
            .take(HELPER_OUTPUT_LIMIT + 1)
            .read_to_end(&mut kept);
        let over = kept.len() as u64 > HELPER_OUTPUT_LIMIT;
        if over {
            kept.clear();
            kept.extend_from_slice(OVER_LIMIT_MARK.as_bytes());
        }
        let _ = io::copy(&mut stream, &mut io::sink());
        let _ = sender.send((is_stdout, kept));
    });
}

/// Kills a helper and reaps it; it may already have exited, which is fine.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// At most 200 characters of a helper's message, on one line.
fn shorten(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    match one_line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// A helper's answer to `get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl HelperAnswer {
    fn into_credential(self) -> Option<Credential> {
        if self.username == "<token>" {
            return (!self.secret.is_empty()).then_some(Credential::IdentityToken(self.secret));
        }
        if self.username.is_empty() && self.secret.is_empty() {
            return None;
        }
        Some(Credential::Basic {
            username: self.username,
            password: self.secret,
        })
    }
}
