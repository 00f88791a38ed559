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

mod file;
mod helper;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

use file::{ConfigFile, candidates, normalize_key, read_config};
use helper::DEFAULT_HELPER_TIMEOUT;

/// The key Docker stores Docker Hub credentials under, and the server URL its helpers are
/// asked for.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The canonical name tank uses for Docker Hub when matching keys.
const DOCKER_HUB: &str = "docker.io";
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
}
