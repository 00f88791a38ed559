//! Registry credentials from the files Docker, podman, skopeo and buildah write, and from
//! `docker-credential-<name>` helpers.
//!
//! # Sources and precedence
//!
//! A [`CredentialStore`] holds a list of files, consulted in this order; the first file that
//! yields a credential for the registry wins, and a file with nothing for it passes to the next:
//!
//! 1. the containers auth files (podman, skopeo, buildah): `REGISTRY_AUTH_FILE` when set;
//!    otherwise `$XDG_RUNTIME_DIR/containers/auth.json`, then
//!    `$XDG_CONFIG_HOME/containers/auth.json` (default `~/.config/containers/auth.json`);
//! 2. the Docker config: `$DOCKER_CONFIG/config.json`, otherwise `~/.docker/config.json`.
//!
//! Auth files come first, as podman and skopeo order them. Unlike podman, the Docker config is
//! still consulted when `REGISTRY_AUTH_FILE` is set, so a `docker login` keeps working.
//! Missing files are simply skipped; a file that exists but cannot be read or is not JSON is
//! an [`Error::CredentialsFile`] naming it.
//!
//! # Inside one file
//!
//! Both formats are the same JSON: `auths` (key → entry), `credsStore` and `credHelpers`.
//!
//! - A helper is chosen first: the `credHelpers` entry for the registry's host, otherwise
//!   `credsStore`. When a helper applies, its answer is this file's answer and the file's
//!   `auths` entries for that registry are not used (Docker keeps only empty markers there).
//!   The helper runs as `docker-credential-<name> get` (looked up in the directory given to
//!   [`CredentialStore::with_helper_dir`] first, then in `PATH`) with the server URL on stdin:
//!   the registry host, or `https://index.docker.io/v1/` for Docker Hub. It answers
//!   `{"ServerURL","Username","Secret"}`; the user name `<token>` marks the secret as an
//!   identity token. A helper that reports "credentials not found in native keychain" means no
//!   credential; any other failure, a helper that is not installed, or one that runs longer
//!   than the timeout (30 s by default; it is killed) is an error.
//! - Otherwise the `auths` entry whose key matches the registry: `identitytoken` gives
//!   [`Credential::IdentityToken`], else `auth` (base64 of `user:password`; the password may
//!   hold `:`), else `username` and `password`. Entries without any of these (the markers
//!   `docker login` leaves when a helper holds the secret) are passed over.
//!
//! # Matching keys
//!
//! Keys are compared after normalising: a key with a scheme (`https://host/v1/`) keeps only its
//! host; a key without one (`host`, `host:port`, `host/namespace/repo`) is taken whole, minus
//! a trailing `/`. Host names compare case-insensitively; ports must match exactly.
//! `docker.io`, `index.docker.io` and `registry-1.docker.io` are all Docker Hub, whose Docker
//! key is `https://index.docker.io/v1/`. [`CredentialStore::get`] looks up a registry's host
//! only; [`CredentialStore::get_for`] first tries the longest `host/namespace/repo` keys, as
//! podman does, then the host. When several keys normalise to the same name, the key written
//! exactly like that name wins, then `https://index.docker.io/v1/`, then the others in sorted
//! order.
//!
//! # Caching
//!
//! None: every lookup reads the files again (and runs the helper again), so a `docker login`
//! made while tank runs is seen. The client calls this only when it needs a new token, so the
//! cost is a small file read per token. Environment variables are read once, by
//! [`CredentialStore::from_env`].
//!
//! # Limitations
//!
//! The legacy `~/.dockercfg`, `DOCKER_AUTH_CONFIG`, podman's `registries.conf`
//! `credential-helpers` setting and the `/run/user/<uid>` fallback used when `XDG_RUNTIME_DIR`
//! is unset are not read.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

use crate::Error;

/// The key Docker stores Docker Hub credentials under, and the server URL its helpers are
/// asked for.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The canonical name tank uses for Docker Hub when matching keys.
const DOCKER_HUB: &str = "docker.io";

/// What a credential helper says when it holds nothing for the server URL.
const HELPER_NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";

/// How long a credential helper may run by default before it is killed.
const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most helper output kept (per stream); the rest is read and dropped, and output over
/// it is an error.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;

/// What stands for an output stream that passed [`HELPER_OUTPUT_LIMIT`].
const OVER_LIMIT_MARK: &str = "(output larger than the 1048576-byte limit, not kept)";

/// Standard base64 that accepts `auth` values with or without padding, as Docker's tools differ.
const AUTH_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A credential for one registry.
///
/// `Debug` shows the user name but never the password or token.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password, sent as HTTP Basic or to a token endpoint.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in a Docker config, or a helper's secret under
    /// the user name `<token>`), exchanged at the token endpoint with `grant_type=refresh_token`.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => formatter
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => formatter
                .debug_tuple("IdentityToken")
                .field(&"<redacted>")
                .finish(),
        }
    }
}

/// Where credentials are looked up: containers auth files, a Docker config, credential helpers.
///
/// The store holds only paths and settings, never a secret, so its `Debug` shows nothing
/// sensitive. Files are read at each lookup (see the module documentation for the order and
/// the matching rules). `Default` is [`CredentialStore::from_env`].
#[derive(Clone, Debug)]
pub struct CredentialStore {
    docker_config: Option<PathBuf>,
    auth_files: Vec<PathBuf>,
    helper_dir: Option<PathBuf>,
    helper_timeout: Duration,
}

impl Default for CredentialStore {
    fn default() -> CredentialStore {
        CredentialStore::from_env()
    }
}

impl CredentialStore {
    /// The standard locations, from the environment as it is now: `REGISTRY_AUTH_FILE`, or
    /// `$XDG_RUNTIME_DIR/containers/auth.json` and `$XDG_CONFIG_HOME/containers/auth.json`
    /// (default `~/.config/containers/auth.json`); then `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`. Unset or empty variables are skipped; without `HOME` the
    /// locations under it are left out. Nothing is read until [`CredentialStore::get`].
    pub fn from_env() -> CredentialStore {
        CredentialStore::from_variables(|name| std::env::var_os(name))
    }

    /// [`CredentialStore::from_env`] with the environment given as a lookup function.
    fn from_variables(variable: impl Fn(&str) -> Option<OsString>) -> CredentialStore {
        let set = |name: &str| {
            variable(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        let home = set("HOME");

        let mut auth_files = Vec::new();
        if let Some(file) = set("REGISTRY_AUTH_FILE") {
            auth_files.push(file);
        } else {
            if let Some(runtime_dir) = set("XDG_RUNTIME_DIR") {
                auth_files.push(runtime_dir.join("containers").join("auth.json"));
            }
            let config_home =
                set("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|home| home.join(".config")));
            if let Some(config_home) = config_home {
                auth_files.push(config_home.join("containers").join("auth.json"));
            }
        }
        let docker_config = match set("DOCKER_CONFIG") {
            Some(dir) => Some(dir.join("config.json")),
            None => home.map(|home| home.join(".docker").join("config.json")),
        };
        CredentialStore::from_files(docker_config, auth_files)
    }

    /// A store that never has a credential: every request goes out anonymously.
    pub fn anonymous() -> CredentialStore {
        CredentialStore::from_files(None, Vec::new())
    }

    /// A store reading exactly these files: the containers auth files in order, then the Docker
    /// config (the path of the `config.json` file itself, not its directory). Nothing is read
    /// until [`CredentialStore::get`]; files that do not exist then are skipped.
    pub fn from_files(docker_config: Option<PathBuf>, auth_files: Vec<PathBuf>) -> CredentialStore {
        CredentialStore {
            docker_config,
            auth_files,
            helper_dir: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }

    /// Looks up `docker-credential-<name>` helpers in `dir` before `PATH`.
    pub fn with_helper_dir(self, dir: PathBuf) -> CredentialStore {
        CredentialStore {
            helper_dir: Some(dir),
            ..self
        }
    }

    /// Kills a credential helper that runs longer than `timeout` (default 30 s) and reports
    /// [`Error::CredentialHelper`].
    pub fn with_helper_timeout(self, timeout: Duration) -> CredentialStore {
        CredentialStore {
            helper_timeout: timeout,
            ..self
        }
    }

    /// The Docker config file this store reads, if any.
    pub fn docker_config(&self) -> Option<&Path> {
        self.docker_config.as_deref()
    }

    /// The containers auth files this store reads, in order.
    pub fn auth_files(&self) -> &[PathBuf] {
        &self.auth_files
    }

    /// The credential for `registry` (`host`, `host:port`; Docker Hub under any of its
    /// names), from keys naming the registry host only. Blocking: it reads files and may run
    /// a credential helper. `Ok(None)` means no source has a credential for this registry.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, Error> {
        self.get_for(registry, "")
    }

    /// The credential for `repository` (e.g. `library/alpine`) in `registry`: like
    /// [`CredentialStore::get`], but keys naming `registry/namespace/repo` or
    /// `registry/namespace` count too, the most specific first, before the host's key.
    pub fn get_for(&self, registry: &str, repository: &str) -> Result<Option<Credential>, Error> {
        let host = normalize_key(registry);
        if host.is_empty() {
            return Ok(None);
        }
        let candidates = candidates(&host, repository);
        let files = self.auth_files.iter().chain(self.docker_config.iter());
        for path in files {
            let Some(file) = read_config(path)? else {
                continue;
            };
            if let Some(credential) = self.lookup_in_file(path, &file, &host, &candidates)? {
                tracing::debug!(registry, source = %path.display(), "using stored credentials");
                return Ok(Some(credential));
            }
        }
        tracing::debug!(registry, "no stored credentials");
        Ok(None)
    }

    /// One file's answer: through its helper when one applies, else from its `auths`.
    fn lookup_in_file(
        &self,
        path: &Path,
        file: &ConfigFile,
        host: &str,
        candidates: &[String],
    ) -> Result<Option<Credential>, Error> {
        if let Some(helper) = file.helper_for(host) {
            let server_url = if host == DOCKER_HUB {
                DOCKER_HUB_KEY
            } else {
                host
            };
            return self.run_helper(helper, host, server_url, path);
        }
        for candidate in candidates {
            if let Some((key, entry)) = file.entry_for(candidate) {
                return entry.credential(path, key).map(Some);
            }
        }
        Ok(None)
    }

    /// Runs `docker-credential-<helper> get` for `server_url`.
    fn run_helper(
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

/// The parts of a Docker `config.json` or containers `auth.json` that concern credentials.
#[derive(Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: Option<BTreeMap<String, String>>,
}

/// One `auths` entry.
#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Reads and parses a credentials file; `None` when it does not exist.
fn read_config(path: &Path) -> Result<Option<ConfigFile>, Error> {
    let file_error = |source: io::Error| Error::CredentialsFile {
        path: path.to_owned(),
        source,
    };
    let text = match crate::files::read_text(path, crate::files::CONFIG_FILE_LIMIT) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(file_error(error)),
    };
    // Docker treats an empty config file as an empty config.
    if text.trim().is_empty() {
        return Ok(Some(ConfigFile::default()));
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| file_error(io::Error::from(error)))
}

impl ConfigFile {
    /// The helper responsible for `host` in this file: its `credHelpers` entry, else
    /// `credsStore`. Empty names count as unset.
    fn helper_for(&self, host: &str) -> Option<&str> {
        let helpers = self.cred_helpers.as_ref();
        let per_registry = helpers
            .and_then(|helpers| pick(helpers, host, |helper| !helper.is_empty()))
            .map(|(_, helper)| helper.as_str());
        per_registry.or(self
            .creds_store
            .as_deref()
            .filter(|helper| !helper.is_empty()))
    }

    /// The `auths` entry (and its key as written) for one normalised name, skipping entries
    /// that hold no credential.
    fn entry_for(&self, name: &str) -> Option<(&str, &AuthEntry)> {
        let auths = self.auths.as_ref()?;
        pick(auths, name, AuthEntry::has_credential)
    }
}

/// Among the map's entries whose key normalises to `name` and that pass `usable`: the key
/// written exactly as `name`, else Docker Hub's own key, else the first in key order.
fn pick<'a, T>(
    map: &'a BTreeMap<String, T>,
    name: &str,
    usable: impl Fn(&T) -> bool,
) -> Option<(&'a str, &'a T)> {
    map.iter()
        .filter(|(key, value)| normalize_key(key) == name && usable(value))
        .min_by_key(|(key, _)| {
            if key.as_str() == name {
                0
            } else if key.as_str() == DOCKER_HUB_KEY {
                1
            } else {
                2
            }
        })
        .map(|(key, value)| (key.as_str(), value))
}

impl AuthEntry {
    fn has_credential(&self) -> bool {
        let set = |field: &Option<String>| field.as_deref().is_some_and(|value| !value.is_empty());
        set(&self.identitytoken) || set(&self.auth) || set(&self.username) || set(&self.password)
    }

    /// The entry's credential; `key` is the entry's key as written, for errors.
    fn credential(&self, path: &Path, key: &str) -> Result<Credential, Error> {
        let invalid = |reason: &str| Error::CredentialsEntry {
            path: path.to_owned(),
            registry: key.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(token) = self
            .identitytoken
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            return Ok(Credential::IdentityToken(token.to_owned()));
        }
        if let Some(auth) = self.auth.as_deref().filter(|auth| !auth.is_empty()) {
            // The decode error would describe the secret's bytes, so only the reason is kept.
            let decoded = AUTH_BASE64
                .decode(auth.trim())
                .map_err(|_| invalid("auth is not valid base64"))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| invalid("decoded auth is not UTF-8"))?;
            let Some((username, password)) = decoded.split_once(':') else {
                return Err(invalid(
                    "decoded auth has no ':' between user name and password",
                ));
            };
            return Ok(Credential::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        Ok(Credential::Basic {
            username: self.username.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
        })
    }
}

/// The name a key or registry is matched by: without scheme (and then without path), without a
/// trailing `/`, host lower-cased, Docker Hub's aliases as `docker.io`.
fn normalize_key(key: &str) -> String {
    let key = key.trim();
    let without_scheme = ["https://", "http://"].iter().find_map(|scheme| {
        key.get(..scheme.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
            .map(|_| &key[scheme.len()..])
    });
    let name = match without_scheme {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key.trim_end_matches('/'),
    };
    let (host, path) = match name.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (name, None),
    };
    let mut host = host.to_ascii_lowercase();
    if matches!(
        host.as_str(),
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        host = DOCKER_HUB.to_owned();
    }
    match path {
        Some(path) => format!("{host}/{path}"),
        None => host,
    }
}

/// The names to try for a repository, most specific first: `host/a/b/c`, `host/a/b`,
/// `host/a`, `host`.
fn candidates(host: &str, repository: &str) -> Vec<String> {
    let repository = repository.trim_matches('/');
    let mut names = Vec::new();
    if !repository.is_empty() {
        let mut path = repository;
        loop {
            names.push(format!("{host}/{path}"));
            match path.rfind('/') {
                Some(cut) => path = &path[..cut],
                None => break,
            }
        }
    }
    names.push(host.to_owned());
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;
    use std::fs;

    use serde_json::json;
    use tempfile::TempDir;

    fn basic(username: &str, password: &str) -> Credential {
        Credential::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    fn encode(user_and_password: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(user_and_password)
    }

    /// A temporary directory holding credential files and fake helpers.
    struct Setup {
        dir: TempDir,
    }

    impl Setup {
        fn new() -> Setup {
            Setup {
                dir: tempfile::tempdir().expect("temporary directory"),
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// Writes `document` as JSON to `name` and returns its path.
        fn file(&self, name: &str, document: serde_json::Value) -> PathBuf {
            let path = self.path(name);
            fs::create_dir_all(path.parent().expect("a parent")).expect("parent directory");
            fs::write(&path, serde_json::to_vec(&document).expect("json")).expect("write file");
            path
        }

        /// A Docker config holding `auths`.
        fn docker_config(&self, auths: serde_json::Value) -> PathBuf {
            self.file("docker/config.json", json!({ "auths": auths }))
        }

        /// A store with only a Docker config, and this setup's helper directory.
        fn docker_store(&self, auths: serde_json::Value) -> CredentialStore {
            CredentialStore::from_files(Some(self.docker_config(auths)), vec![])
                .with_helper_dir(self.path("bin"))
        }

        /// Installs `docker-credential-fake`, which logs its arguments and input to
        /// `fake.log` and answers by server URL.
        fn install_fake_helper(&self) {
            let log = self.path("fake.log");
            let script = format!(
                r#"#!/bin/sh
url=$(cat)
printf '%s %s\n' "$*" "$url" >> '{log}'
case "$url" in
  ghcr.io) printf '{{"ServerURL":"%s","Username":"octo","Secret":"s3cret:with:colons"}}' "$url" ;;
  https://index.docker.io/v1/) printf '{{"ServerURL":"%s","Username":"<token>","Secret":"refresh-abc"}}' "$url" ;;
  empty.example) printf '{{"ServerURL":"%s","Username":"","Secret":""}}' "$url" ;;
  broken.example) echo "garbage: the keychain exploded"; exit 3 ;;
  notjson.example) echo 'Username=me Secret=hunter2' ;;
  slow.example) exec sleep 30 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#,
                log = log.display()
            );
            self.install_helper("fake", &script);
        }

        fn install_helper(&self, name: &str, script: &str) {
            use std::os::unix::fs::PermissionsExt as _;
            let bin = self.path("bin");
            fs::create_dir_all(&bin).expect("helper directory");
            let path = bin.join(format!("docker-credential-{name}"));
            fs::write(&path, script).expect("write helper");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .expect("make helper executable");
        }

        /// What the fake helper was asked, one `args url` line per run.
        fn helper_log(&self) -> Vec<String> {
            match fs::read_to_string(self.path("fake.log")) {
                Ok(text) => text.lines().map(str::to_owned).collect(),
                Err(_) => Vec::new(),
            }
        }
    }

    fn expect_entry_error(
        result: Result<Option<Credential>, Error>,
        path: &Path,
        key: &str,
        reason: &str,
    ) {
        match result {
            Err(Error::CredentialsEntry {
                path: named,
                registry,
                reason: actual,
            }) => {
                assert_eq!(named, path);
                assert_eq!(registry, key);
                assert!(actual.contains(reason), "{actual:?} lacks {reason:?}");
            }
            other => panic!("expected a CredentialsEntry error, got {other:?}"),
        }
    }

    #[test]
    fn auth_is_served_for_its_host_only() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({ "ghcr.io": { "auth": encode("octo:pass") } }));
        assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("octo", "pass")));
        assert_eq!(store.get("quay.io").unwrap(), None);
        assert_eq!(store.get("ghcr.io.evil.example").unwrap(), None);
        assert_eq!(store.get("docker.io").unwrap(), None);
    }

    #[test]
    fn auth_password_keeps_its_colons_and_unpadded_base64_is_accepted() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "a.example": { "auth": encode("user:pa:ss:") },
            "b.example": { "auth": encode("ab:c").trim_end_matches('=') },
            "c.example": { "auth": encode("user:") },
        }));
        assert_eq!(
            store.get("a.example").unwrap(),
            Some(basic("user", "pa:ss:"))
        );
        assert_eq!(store.get("b.example").unwrap(), Some(basic("ab", "c")));
        assert_eq!(store.get("c.example").unwrap(), Some(basic("user", "")));
    }

    #[test]
    fn invalid_auth_is_an_error_naming_file_and_key() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "good.example": { "auth": encode("u:p") },
            "https://bad64.example/v1/": { "auth": "not base64!" },
            "nocolon.example": { "auth": encode("just-a-user") },
            "notutf8.example": { "auth": base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'p']) },
        }));
        let path = store.docker_config().expect("a docker config").to_owned();
        assert_eq!(store.get("good.example").unwrap(), Some(basic("u", "p")));
        expect_entry_error(
            store.get("bad64.example"),
            &path,
            "https://bad64.example/v1/",
            "base64",
        );
        expect_entry_error(
            store.get("nocolon.example"),
            &path,
            "nocolon.example",
            "no ':'",
        );
        expect_entry_error(
            store.get("notutf8.example"),
            &path,
            "notutf8.example",
            "UTF-8",
        );
        // The message names the file and the key but not the secret.
        let message = store.get("nocolon.example").unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("nocolon.example"), "{message}");
        assert!(!message.contains("just-a-user"), "{message}");
    }

    #[test]
    fn username_and_password_fields_are_used_when_auth_is_absent() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "fields.example": { "username": "me", "password": "pw:1" },
            "both.example": { "auth": encode("from:auth"), "username": "ignored", "password": "ignored" },
        }));
        assert_eq!(
            store.get("fields.example").unwrap(),
            Some(basic("me", "pw:1"))
        );
        assert_eq!(
            store.get("both.example").unwrap(),
            Some(basic("from", "auth"))
        );
    }

    #[test]
    fn identitytoken_is_an_identity_token() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "token.example": { "auth": encode("user:"), "identitytoken": "refresh-xyz" },
            "plain.example": { "auth": encode("user:pw"), "identitytoken": "" },
        }));
        assert_eq!(
            store.get("token.example").unwrap(),
            Some(Credential::IdentityToken("refresh-xyz".to_owned()))
        );
        assert_eq!(
            store.get("plain.example").unwrap(),
            Some(basic("user", "pw"))
        );
    }

    #[test]
    fn docker_hub_key_serves_every_docker_hub_name_and_nothing_else() {
        let setup = Setup::new();
        let store = setup
            .docker_store(json!({ "https://index.docker.io/v1/": { "auth": encode("hub:pw") } }));
        for name in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Docker.IO",
        ] {
            assert_eq!(store.get(name).unwrap(), Some(basic("hub", "pw")), "{name}");
        }
        for name in ["ghcr.io", "docker.io.example", "io", "hub.docker.com"] {
            assert_eq!(store.get(name).unwrap(), None, "{name}");
        }
    }

    #[test]
    fn docker_hub_key_is_preferred_over_other_docker_hub_aliases() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "index.docker.io": { "auth": encode("alias:pw") },
            "https://index.docker.io/v1/": { "auth": encode("hub:pw") },
        }));
        assert_eq!(store.get("docker.io").unwrap(), Some(basic("hub", "pw")));
        // `index.docker.io` is matched as `docker.io`, so the Docker Hub key still wins.
        assert_eq!(
            store.get("index.docker.io").unwrap(),
            Some(basic("hub", "pw"))
        );
        let store = setup.docker_store(json!({
            "docker.io": { "auth": encode("exact:pw") },
            "https://index.docker.io/v1/": { "auth": encode("hub:pw") },
        }));
        assert_eq!(store.get("docker.io").unwrap(), Some(basic("exact", "pw")));
    }

    #[test]
    fn url_keys_match_their_host() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "https://ghcr.io": { "auth": encode("a:1") },
            "http://registry.example/v1/": { "auth": encode("b:2") },
            "quay.io/": { "auth": encode("c:3") },
            "HTTPS://Mixed.Example:5000/v2/": { "auth": encode("d:4") },
        }));
        assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("a", "1")));
        assert_eq!(
            store.get("registry.example").unwrap(),
            Some(basic("b", "2"))
        );
        assert_eq!(store.get("quay.io").unwrap(), Some(basic("c", "3")));
        assert_eq!(
            store.get("mixed.example:5000").unwrap(),
            Some(basic("d", "4"))
        );
        assert_eq!(
            store.get("https://ghcr.io/").unwrap(),
            Some(basic("a", "1"))
        );
        assert_eq!(store.get("registry.example:443").unwrap(), None);
        assert_eq!(store.get("mixed.example").unwrap(), None);
    }

    #[test]
    fn port_is_part_of_the_registry() {
        let setup = Setup::new();
        let store = setup.docker_store(json!({
            "localhost:5000": { "auth": encode("five:k") },
            "127.0.0.1:5000": { "auth": encode("loop:k") },
            "[::1]:5000": { "auth": encode("six:k") },
        }));
        assert_eq!(
            store.get("localhost:5000").unwrap(),
            Some(basic("five", "k"))
        );
        assert_eq!(
            store.get("127.0.0.1:5000").unwrap(),
            Some(basic("loop", "k"))
        );
        assert_eq!(store.get("[::1]:5000").unwrap(), Some(basic("six", "k")));
        assert_eq!(store.get("localhost").unwrap(), None);
        assert_eq!(store.get("localhost:5001").unwrap(), None);
        assert_eq!(store.get("127.0.0.1:1").unwrap(), None);
        assert_eq!(store.get("[::1]").unwrap(), None);
    }

    #[test]
    fn empty_marker_entries_are_passed_over() {
        let setup = Setup::new();
        let marker_only = setup.file("auth.json", json!({ "auths": { "ghcr.io": {} } }));
        let docker = setup.docker_config(json!({ "ghcr.io": { "auth": encode("from:docker") } }));
        let store = CredentialStore::from_files(Some(docker), vec![marker_only]);
        assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("from", "docker")));
        let store = setup
            .docker_store(json!({ "ghcr.io": {}, "https://ghcr.io": { "auth": encode("u:p") } }));
        assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("u", "p")));
    }

    #[test]
    fn missing_and_empty_files_mean_no_credential_invalid_files_are_errors() {
        let setup = Setup::new();
        let missing = CredentialStore::from_files(
            Some(setup.path("nowhere/config.json")),
            vec![setup.path("nowhere/auth.json")],
        );
        assert_eq!(missing.get("ghcr.io").unwrap(), None);

        let empty = setup.path("empty.json");
        fs::write(&empty, "\n").unwrap();
        assert_eq!(
            CredentialStore::from_files(Some(empty), vec![])
                .get("ghcr.io")
                .unwrap(),
            None
        );

        let invalid = setup.path("invalid.json");
        fs::write(&invalid, "{ \"auths\": ").unwrap();
        let wrong_shape = setup.file("shape.json", json!({ "auths": ["ghcr.io"] }));
        let directory = setup.path("a-directory");
        fs::create_dir(&directory).unwrap();
        for path in [invalid, wrong_shape, directory] {
            let store = CredentialStore::from_files(None, vec![path.clone()]);
            match store.get("ghcr.io") {
                Err(Error::CredentialsFile { path: named, .. }) => assert_eq!(named, path),
                other => panic!(
                    "{}: expected a CredentialsFile error, got {other:?}",
                    path.display()
                ),
            }
            let message = store.get("ghcr.io").unwrap_err().to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
    }

    #[test]
    fn an_invalid_file_after_the_one_that_answers_is_not_read() {
        let setup = Setup::new();
        let good = setup.file(
            "auth.json",
            json!({ "auths": { "ghcr.io": { "auth": encode("u:p") } } }),
        );
        let invalid = setup.path("config.json");
        fs::write(&invalid, "not json").unwrap();
        let store = CredentialStore::from_files(Some(invalid), vec![good]);
        assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("u", "p")));
        assert!(matches!(
            store.get("quay.io"),
            Err(Error::CredentialsFile { .. })
        ));
    }

    #[test]
    fn auth_files_come_before_the_docker_config_in_order() {
        let setup = Setup::new();
        let first = setup.file(
            "run/containers/auth.json",
            json!({ "auths": { "ghcr.io": { "auth": encode("first:1") } } }),
        );
        let second = setup.file(
            "config/containers/auth.json",
            json!({ "auths": {
                "ghcr.io": { "auth": encode("second:2") },
                "quay.io": { "auth": encode("second:2") },
            } }),
        );
        let docker = setup.docker_config(json!({
            "ghcr.io": { "auth": encode("docker:3") },
            "quay.io": { "auth": encode("docker:3") },
            "registry.example": { "auth": encode("docker:3") },
        }));
        let store =
            CredentialStore::from_files(Some(docker.clone()), vec![first.clone(), second.clone()]);
        assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("first", "1")));
        assert_eq!(store.get("quay.io").unwrap(), Some(basic("second", "2")));
        assert_eq!(
            store.get("registry.example").unwrap(),
            Some(basic("docker", "3"))
        );
        assert_eq!(store.get("other.example").unwrap(), None);

        let reversed = CredentialStore::from_files(Some(docker), vec![second, first]);
        assert_eq!(reversed.get("ghcr.io").unwrap(), Some(basic("second", "2")));
    }

    #[test]
    fn repository_keys_need_get_for_and_the_most_specific_wins() {
        let setup = Setup::new();
        let auth_file = setup.file(
            "auth.json",
            json!({ "auths": {
                "quay.io": { "auth": encode("host:0") },
                "quay.io/team": { "auth": encode("namespace:1") },
                "quay.io/team/app": { "auth": encode("repo:2") },
                "docker.io/library": { "auth": encode("library:3") },
                "ghcr.io/only/this": { "auth": encode("scoped:4") },
            } }),
        );
        let store = CredentialStore::from_files(None, vec![auth_file]);
        assert_eq!(
            store.get_for("quay.io", "team/app").unwrap(),
            Some(basic("repo", "2"))
        );
        assert_eq!(
            store.get_for("quay.io", "team/other").unwrap(),
            Some(basic("namespace", "1"))
        );
        assert_eq!(
            store.get_for("quay.io", "team/app/sub").unwrap(),
            Some(basic("repo", "2"))
        );
        assert_eq!(
            store.get_for("quay.io", "elsewhere/app").unwrap(),
            Some(basic("host", "0"))
        );
        assert_eq!(store.get("quay.io").unwrap(), Some(basic("host", "0")));
        assert_eq!(
            store.get_for("index.docker.io", "library/alpine").unwrap(),
            Some(basic("library", "3"))
        );
        assert_eq!(store.get_for("docker.io", "someone/alpine").unwrap(), None);
        assert_eq!(
            store.get_for("ghcr.io", "only/this").unwrap(),
            Some(basic("scoped", "4"))
        );
        assert_eq!(store.get_for("ghcr.io", "only/that").unwrap(), None);
        assert_eq!(store.get("ghcr.io").unwrap(), None);
        // A path only counts at a component boundary.
        assert_eq!(
            store.get_for("quay.io", "teams/app").unwrap(),
            Some(basic("host", "0"))
        );
    }

    #[test]
    fn cred_helper_answers_for_its_registry_with_the_host_on_stdin() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file(
            "docker/config.json",
            json!({
                "auths": { "ghcr.io": {}, "quay.io": { "auth": encode("inline:q") } },
                "credHelpers": { "ghcr.io": "fake" },
            }),
        );
        let store =
            CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
        assert_eq!(
            store.get("ghcr.io").unwrap(),
            Some(basic("octo", "s3cret:with:colons"))
        );
        assert_eq!(setup.helper_log(), ["get ghcr.io"]);
        // Another registry does not run the helper.
        assert_eq!(store.get("quay.io").unwrap(), Some(basic("inline", "q")));
        assert_eq!(setup.helper_log().len(), 1);
    }

    #[test]
    fn docker_hub_helper_gets_the_index_url_and_token_user_means_identity_token() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file(
            "docker/config.json",
            json!({ "credHelpers": { "https://index.docker.io/v1/": "fake" } }),
        );
        let store =
            CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
        assert_eq!(
            store.get("registry-1.docker.io").unwrap(),
            Some(Credential::IdentityToken("refresh-abc".to_owned()))
        );
        assert_eq!(setup.helper_log(), ["get https://index.docker.io/v1/"]);
        assert_eq!(store.get("ghcr.io").unwrap(), None);
        assert_eq!(setup.helper_log().len(), 1);
    }

    #[test]
    fn creds_store_serves_every_registry_and_cred_helpers_take_precedence() {
        let setup = Setup::new();
        setup.install_fake_helper();
        setup.install_helper(
            "other",
            "#!/bin/sh\ncat >/dev/null\nprintf '{\"Username\":\"other\",\"Secret\":\"o\"}'\n",
        );
        let config = setup.file(
            "docker/config.json",
            json!({
                "auths": { "ghcr.io": { "auth": encode("inline:ignored") } },
                "credsStore": "fake",
                "credHelpers": { "quay.io": "other", "ignored.example": "" },
            }),
        );
        let store =
            CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
        // The store's helper answers instead of the inline entry.
        assert_eq!(
            store.get("ghcr.io").unwrap(),
            Some(basic("octo", "s3cret:with:colons"))
        );
        assert_eq!(store.get("quay.io").unwrap(), Some(basic("other", "o")));
        assert_eq!(
            store.get("docker.io").unwrap(),
            Some(Credential::IdentityToken("refresh-abc".to_owned()))
        );
        // An empty credHelpers entry falls back to credsStore.
        assert_eq!(store.get("ignored.example").unwrap(), None);
        assert_eq!(
            setup.helper_log(),
            [
                "get ghcr.io",
                "get https://index.docker.io/v1/",
                "get ignored.example"
            ]
        );
    }

    #[test]
    fn helper_without_credentials_means_none_and_the_next_file_is_asked() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let auth_file = setup.file("auth.json", json!({ "credsStore": "fake" }));
        let docker =
            setup.docker_config(json!({ "unknown.example": { "auth": encode("docker:d") } }));
        let store = CredentialStore::from_files(Some(docker), vec![auth_file.clone()])
            .with_helper_dir(setup.path("bin"));
        assert_eq!(
            store.get("unknown.example").unwrap(),
            Some(basic("docker", "d"))
        );
        assert_eq!(
            store.get("ghcr.io").unwrap(),
            Some(basic("octo", "s3cret:with:colons"))
        );
        let alone =
            CredentialStore::from_files(None, vec![auth_file]).with_helper_dir(setup.path("bin"));
        assert_eq!(alone.get("unknown.example").unwrap(), None);
        assert_eq!(alone.get("empty.example").unwrap(), None);
    }

    #[test]
    fn failing_helper_is_an_error_naming_helper_and_registry() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file("docker/config.json", json!({ "credsStore": "fake" }));
        let store = CredentialStore::from_files(Some(config.clone()), vec![])
            .with_helper_dir(setup.path("bin"));
        assert!(store.get("ghcr.io").unwrap().is_some());
        match store.get("broken.example") {
            Err(Error::CredentialHelper {
                helper,
                registry,
                path,
                reason,
            }) => {
                assert_eq!(helper, "fake");
                assert_eq!(registry, "broken.example");
                assert_eq!(path, config);
                assert!(reason.contains("exit status: 3"), "{reason}");
                assert!(
                    reason.contains("garbage: the keychain exploded"),
                    "{reason}"
                );
            }
            other => panic!("expected a CredentialHelper error, got {other:?}"),
        }
        let message = store.get("broken.example").unwrap_err().to_string();
        assert!(message.contains("docker-credential-fake"), "{message}");
        assert!(message.contains("broken.example"), "{message}");
    }

    #[test]
    fn helper_output_that_is_not_json_is_an_error_that_does_not_echo_it() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file("docker/config.json", json!({ "credsStore": "fake" }));
        let store =
            CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
        match store.get("notjson.example") {
            Err(Error::CredentialHelper { reason, .. }) => {
                assert!(reason.contains("not credential JSON"), "{reason}");
                assert!(!reason.contains("hunter2"), "{reason}");
            }
            other => panic!("expected a CredentialHelper error, got {other:?}"),
        }
    }

    #[test]
    fn missing_helper_is_its_own_error() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file(
            "docker/config.json",
            json!({ "credHelpers": { "ghcr.io": "fake", "quay.io": "tank-test-not-installed" } }),
        );
        let store = CredentialStore::from_files(Some(config.clone()), vec![])
            .with_helper_dir(setup.path("bin"));
        assert!(store.get("ghcr.io").unwrap().is_some());
        match store.get("quay.io") {
            Err(Error::CredentialHelperNotFound {
                helper,
                registry,
                path,
            }) => {
                assert_eq!(helper, "tank-test-not-installed");
                assert_eq!(registry, "quay.io");
                assert_eq!(path, config);
            }
            other => panic!("expected CredentialHelperNotFound, got {other:?}"),
        }
        // Without the helper directory, the fake is not found either (it is not on PATH).
        let without_dir = CredentialStore::from_files(Some(config), vec![]);
        assert!(matches!(
            without_dir.get("ghcr.io"),
            Err(Error::CredentialHelperNotFound { .. })
        ));
    }

    #[test]
    fn helper_names_cannot_leave_the_helper_naming_scheme() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file(
            "docker/config.json",
            json!({ "credHelpers": { "ghcr.io": "fake", "quay.io": "../bin/docker-credential-fake" } }),
        );
        let store =
            CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
        assert!(store.get("ghcr.io").unwrap().is_some());
        assert!(matches!(
            store.get("quay.io"),
            Err(Error::CredentialHelper { .. })
        ));
        assert_eq!(setup.helper_log().len(), 1);
    }

    #[test]
    fn slow_helper_is_killed_after_the_timeout() {
        let setup = Setup::new();
        setup.install_fake_helper();
        let config = setup.file("docker/config.json", json!({ "credsStore": "fake" }));
        let store =
            CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
        assert!(store.get("ghcr.io").unwrap().is_some());
        let impatient = store.with_helper_timeout(Duration::from_millis(300));
        match impatient.get("slow.example") {
            Err(Error::CredentialHelper { reason, .. }) => {
                assert!(reason.contains("killed"), "{reason}")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let credential = basic("octo", "hunter2");
        let shown = format!("{credential:?}");
        assert!(shown.contains("octo"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let token = Credential::IdentityToken("refresh-secret".to_owned());
        let shown = format!("{token:?} {token:#?}");
        assert!(!shown.contains("refresh-secret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");

        let setup = Setup::new();
        let store = setup.docker_store(json!({ "ghcr.io": { "auth": encode("octo:hunter2") } }));
        assert_eq!(
            store.get("ghcr.io").unwrap(),
            Some(basic("octo", "hunter2"))
        );
        let shown = format!("{store:?}");
        assert!(shown.contains("config.json"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(&encode("octo:hunter2")),
            "{shown}"
        );
    }

    #[test]
    fn anonymous_store_has_nothing() {
        let store = CredentialStore::anonymous();
        assert_eq!(store.get("ghcr.io").unwrap(), None);
        assert_eq!(store.docker_config(), None);
        assert!(store.auth_files().is_empty());
    }

    #[test]
    fn environment_selects_the_files() {
        let from = |variables: &[(&str, &str)]| {
            let variables: HashMap<String, OsString> = variables
                .iter()
                .map(|(name, value)| (name.to_string(), OsString::from(value)))
                .collect();
            CredentialStore::from_variables(|name| variables.get(name).cloned())
        };
        let paths = |store: &CredentialStore| {
            (
                store.docker_config().map(Path::to_owned),
                store.auth_files().to_vec(),
            )
        };
        let p = PathBuf::from;

        assert_eq!(
            paths(&from(&[("HOME", "/home/u")])),
            (
                Some(p("/home/u/.docker/config.json")),
                vec![p("/home/u/.config/containers/auth.json")]
            )
        );
        assert_eq!(
            paths(&from(&[
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", "/run/user/1000"),
                ("XDG_CONFIG_HOME", "/cfg"),
                ("DOCKER_CONFIG", "/dc"),
            ])),
            (
                Some(p("/dc/config.json")),
                vec![
                    p("/run/user/1000/containers/auth.json"),
                    p("/cfg/containers/auth.json")
                ]
            )
        );
        assert_eq!(
            paths(&from(&[
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", "/run/user/1000"),
                ("REGISTRY_AUTH_FILE", "/tmp/auth.json"),
            ])),
            (
                Some(p("/home/u/.docker/config.json")),
                vec![p("/tmp/auth.json")]
            )
        );
        // Empty variables count as unset; without HOME nothing under it is used.
        assert_eq!(
            paths(&from(&[
                ("HOME", ""),
                ("DOCKER_CONFIG", ""),
                ("REGISTRY_AUTH_FILE", "")
            ])),
            (None, vec![])
        );
        assert_eq!(paths(&from(&[])), (None, vec![]));
    }

    #[test]
    fn key_normalisation() {
        let table = [
            ("ghcr.io", "ghcr.io"),
            ("GHCR.IO", "ghcr.io"),
            ("ghcr.io/", "ghcr.io"),
            ("https://ghcr.io", "ghcr.io"),
            ("https://ghcr.io/v2/", "ghcr.io"),
            ("http://localhost:5000/v1/", "localhost:5000"),
            ("Https://Host.Example/x", "host.example"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("docker.io/library", "docker.io/library"),
            ("Quay.io/Team/App", "quay.io/Team/App"),
            ("[::1]:5000", "[::1]:5000"),
            (" ghcr.io ", "ghcr.io"),
        ];
        for (key, expected) in table {
            assert_eq!(normalize_key(key), expected, "{key}");
        }
    }

    #[test]
    fn candidate_names_go_from_repository_to_host() {
        assert_eq!(
            candidates("quay.io", "a/b/c"),
            ["quay.io/a/b/c", "quay.io/a/b", "quay.io/a", "quay.io"]
        );
        assert_eq!(candidates("quay.io", "/a/"), ["quay.io/a", "quay.io"]);
        assert_eq!(candidates("quay.io", ""), ["quay.io"]);
    }
}
