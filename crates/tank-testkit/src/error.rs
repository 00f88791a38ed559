//! The one error type of tank-testkit.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building layouts, running a registry or driving skopeo.
///
/// `Debug` prints the message and its causes, so a test's `expect` shows what to do (for
/// example the `apt-get install` line) rather than struct fields.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program the testkit drives is not installed.
    #[error("`{program}` was not found ({looked_in}); install it with `apt-get install {package}`")]
    ToolMissing {
        /// The program's name, e.g. `docker-registry`.
        program: String,
        /// Where it was looked for.
        looked_in: String,
        /// The Debian package that provides it.
        package: String,
    },

    /// A program could not be started.
    #[error("could not start `{program}`")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// The registry process exited before it answered `GET /v2/`.
    #[error(
        "docker-registry exited before answering on {addr} ({status}) after {attempts} attempt(s); \
         its log {log}:\n{log_tail}"
    )]
    RegistryExited {
        /// The address it was asked to listen on.
        addr: String,
        /// The exit status.
        status: String,
        /// How many times a start was tried.
        attempts: u32,
        /// The log file.
        log: PathBuf,
        /// The last lines of the log file.
        log_tail: String,
    },

    /// The registry process kept running but did not answer `GET /v2/` in time.
    #[error(
        "docker-registry did not answer GET {url}/v2/ within {waited:?}; its log {log}:\n{log_tail}"
    )]
    RegistryNotReady {
        /// The registry's base URL.
        url: String,
        /// How long it was waited for.
        waited: Duration,
        /// The log file.
        log: PathBuf,
        /// The last lines of the log file.
        log_tail: String,
    },

    /// The registry never wrote the access-log line of a marker request.
    #[error("docker-registry never logged {marker} within {waited:?}; its log {log}:\n{log_tail}")]
    AccessLogStalled {
        /// The marker request's path.
        marker: String,
        /// How long it was waited for.
        waited: Duration,
        /// The log file.
        log: PathBuf,
        /// The last lines of the log file.
        log_tail: String,
    },

    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, for copying into a shell.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// A file or directory could not be read or written.
    #[error("i/o error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// No free loopback port could be found.
    #[error("could not pick a free port on 127.0.0.1")]
    FreePort {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An HTTP request to a test registry failed below HTTP.
    #[error("request GET {url} failed")]
    Http {
        /// The URL asked for.
        url: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An HTTP response could not be understood.
    #[error("malformed http response from {url}: {head:?}")]
    MalformedResponse {
        /// The URL asked for.
        url: String,
        /// The start of the response.
        head: String,
    },

    /// The htpasswd password could not be hashed.
    #[error("could not hash the htpasswd password for user {user:?}")]
    Password {
        /// The user whose password it was.
        user: String,
        /// The underlying error.
        #[source]
        source: bcrypt::BcryptError,
    },

    /// A JSON document could not be parsed.
    #[error("invalid json in {path}")]
    Json {
        /// Where the document came from.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// A JSON document parsed but lacks what an OCI layout needs.
    #[error("{path} is not a valid oci layout index: {problem}")]
    InvalidLayout {
        /// The `index.json` file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// A platform string is not `OS/ARCH[/VARIANT]`.
    #[error("invalid platform {input:?}: expected OS/ARCH or OS/ARCH/VARIANT")]
    InvalidPlatform {
        /// The string given.
        input: String,
    },

    /// An unknown fixture name was asked for.
    #[error("no fixture named {name:?} (known: {known})")]
    UnknownFixture {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },

    /// Checked-in fixtures differ from what the generator writes.
    #[error("fixtures in {dir} are stale ({}); run `{command}`", stale.join(", "))]
    StaleFixtures {
        /// The fixtures directory checked.
        dir: PathBuf,
        /// The relative paths that are missing, extra or different.
        stale: Vec<String>,
        /// The command that regenerates them.
        command: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(formatter, "\ncaused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_message_and_its_causes() {
        let error = Error::io(
            "/some/file",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(format!("{error}"), "i/o error on /some/file");
        assert_eq!(
            format!("{error:?}"),
            "i/o error on /some/file\ncaused by: gone"
        );
        let missing = Error::ToolMissing {
            program: "docker-registry".into(),
            looked_in: "not on PATH".into(),
            package: "docker-registry".into(),
        };
        assert!(format!("{missing:?}").ends_with("apt-get install docker-registry`"));
    }
}
