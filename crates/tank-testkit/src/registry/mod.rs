//! CNCF Distribution (`docker-registry serve`) on a free loopback port, with its own storage,
//! config and log in a temporary directory, stopped when dropped.

mod access_log;
mod config;
mod http;
mod process;
#[cfg(test)]
mod tests;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use crate::Error;
use crate::fixtures::{FIXTURE_NAMES, fixtures_dir};
use crate::oci::read_layout_tags;
use crate::skopeo::{CopyOptions, LayoutSource, skopeo_copy};
use crate::tls::{TEST_TLS_HOST, TestCertificates};

pub use access_log::{ACCESS_LOG_MARKER, LoggedRequest, parse_access_log};
pub use config::{docker_config_json, write_docker_config};
pub use http::{HttpResponse, basic_auth_header};

use access_log::log_tail;
use config::{Proxy, proxy_config, registry_config, write_json};
use http::http_get;
pub(crate) use process::find_program;
use process::{Startup, free_port, is_executable, keep_for_debugging, stop, wait_until_ready};

/// How many ports to try when another process takes the one picked before the registry binds.
const PORT_ATTEMPTS: u32 = 5;
/// bcrypt cost for htpasswd files: the minimum Go accepts is 4; tests want speed, not strength.
const BCRYPT_COST: u32 = 5;

/// Options for [`Registry`]; start with [`Registry::builder`].
#[derive(Clone, Debug)]
pub struct RegistryBuilder {
    htpasswd: Option<(String, String)>,
    proxy: Option<Proxy>,
    port: Option<u16>,
    delete_enabled: bool,
    root_dir: Option<PathBuf>,
    ready_timeout: Duration,
    program: Option<PathBuf>,
    tls: bool,
}

impl Default for RegistryBuilder {
    fn default() -> RegistryBuilder {
        RegistryBuilder {
            htpasswd: None,
            proxy: None,
            port: None,
            delete_enabled: true,
            root_dir: None,
            ready_timeout: Duration::from_secs(20),
            program: None,
            tls: false,
        }
    }
}

impl RegistryBuilder {
    /// Requires HTTP Basic auth for this one user (an htpasswd file with a bcrypt hash).
    pub fn htpasswd(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> RegistryBuilder {
        self.htpasswd = Some((user.into(), password.into()));
        self
    }

    /// Runs as a pull-through cache of the registry at `remote_url` (`http://127.0.0.1:…`):
    /// Distribution's proxy mode (`proxy.remoteurl`), read-only, fetching from the remote
    /// what it does not hold and keeping it in its own storage. `credentials` are what it
    /// sends to the remote; Distribution 2.8's proxy uses them only for a remote that asks
    /// for Bearer tokens: against an htpasswd (Basic) remote it answers blobs with 500 and
    /// tags with 404.
    pub fn proxy(
        mut self,
        remote_url: impl Into<String>,
        credentials: Option<(String, String)>,
    ) -> RegistryBuilder {
        self.proxy = Some(Proxy {
            remote_url: remote_url.into(),
            credentials,
        });
        self
    }

    /// Listens on this port instead of a free one (no retry if it is taken).
    pub fn port(mut self, port: u16) -> RegistryBuilder {
        self.port = Some(port);
        self
    }

    /// Allows `DELETE` of manifests and blobs (on by default).
    pub fn delete_enabled(mut self, enabled: bool) -> RegistryBuilder {
        self.delete_enabled = enabled;
        self
    }

    /// Keeps config, storage and log in `dir`, which is kept after the registry stops,
    /// instead of a temporary directory.
    pub fn root_dir(mut self, dir: impl Into<PathBuf>) -> RegistryBuilder {
        self.root_dir = Some(dir.into());
        self
    }

    /// How long to wait for `GET /v2/` to answer (20 s by default).
    pub fn ready_timeout(mut self, timeout: Duration) -> RegistryBuilder {
        self.ready_timeout = timeout;
        self
    }

    /// Serves HTTPS instead of plain HTTP (`http.tls` of its config), with a server
    /// certificate for `127.0.0.1`, `localhost` and [`TEST_TLS_HOST`] issued by a CA made
    /// for this registry ([`TestCertificates`], needs the `openssl` command):
    /// [`Registry::certificates`] gives the CA a client must trust. The plain-HTTP helpers
    /// ([`Registry::get`], [`Registry::push_layout`], …) do not work with it.
    pub fn tls(mut self, enabled: bool) -> RegistryBuilder {
        self.tls = enabled;
        self
    }

    /// Runs this binary instead of looking for `docker-registry`.
    pub fn program(mut self, program: impl Into<PathBuf>) -> RegistryBuilder {
        self.program = Some(program.into());
        self
    }

    /// Starts the registry and waits until it answers.
    pub fn start(self) -> Result<Registry, Error> {
        let program = match &self.program {
            Some(program) if is_executable(program) => program.clone(),
            Some(program) => {
                return Err(Error::ToolMissing {
                    program: program.display().to_string(),
                    looked_in: "the path given is not an executable file".to_owned(),
                    package: "docker-registry".to_owned(),
                });
            }
            None => find_program("docker-registry", "TANK_DOCKER_REGISTRY", "docker-registry")?,
        };
        let (temp_dir, root) = match &self.root_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp_dir = tempfile::Builder::new()
                    .prefix("tank-registry-")
                    .tempdir()
                    .map_err(|source| Error::io(env::temp_dir(), source))?;
                let root = temp_dir.path().to_path_buf();
                (Some(temp_dir), root)
            }
        };
        let storage = root.join("storage");
        fs::create_dir_all(&storage).map_err(|source| Error::io(&storage, source))?;
        let htpasswd_path = root.join("htpasswd");
        if let Some((user, password)) = &self.htpasswd {
            let hash = bcrypt::hash(password, BCRYPT_COST).map_err(|source| Error::Password {
                user: user.clone(),
                source,
            })?;
            fs::write(&htpasswd_path, format!("{user}:{hash}\n"))
                .map_err(|source| Error::io(&htpasswd_path, source))?;
        }
        let config_path = root.join("config.yml");
        let log_path = root.join("registry.log");
        let certificates = if self.tls {
            Some(TestCertificates::generate(&root.join("tls"))?)
        } else {
            None
        };

        let attempts = if self.port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match self.port {
                Some(port) => port,
                None => free_port()?,
            };
            let mut config = registry_config(
                port,
                &storage,
                self.htpasswd.as_ref().map(|_| htpasswd_path.as_path()),
                self.delete_enabled,
                certificates.as_ref(),
            );
            if let Some(proxy) = &self.proxy {
                config.push_str(&proxy_config(proxy));
            }
            fs::write(&config_path, config).map_err(|source| Error::io(&config_path, source))?;
            let log = fs::File::create(&log_path).map_err(|source| Error::io(&log_path, source))?;
            let log_for_stderr = log
                .try_clone()
                .map_err(|source| Error::io(&log_path, source))?;
            let mut child = Command::new(&program)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_for_stderr)
                .spawn()
                .map_err(|source| Error::Spawn {
                    program: program.display().to_string(),
                    source,
                })?;
            let host = format!("127.0.0.1:{port}");
            let tls = certificates.is_some();
            match wait_until_ready(&mut child, &host, &log_path, self.ready_timeout, tls) {
                Startup::Ready => {
                    return Ok(Registry {
                        child,
                        _temp_dir: temp_dir,
                        root,
                        port,
                        credentials: self.htpasswd,
                        log_path,
                        certificates,
                    });
                }
                Startup::Exited(status) => {
                    let log_tail = log_tail(&log_path);
                    let port_taken = log_tail.contains("address already in use");
                    if port_taken && attempt < attempts {
                        continue;
                    }
                    keep_for_debugging(temp_dir);
                    return Err(Error::RegistryExited {
                        addr: host,
                        status: status.to_string(),
                        attempts: attempt,
                        log: log_path,
                        log_tail,
                    });
                }
                Startup::TimedOut => {
                    stop(&mut child);
                    keep_for_debugging(temp_dir);
                    return Err(Error::RegistryNotReady {
                        url: format!("{}://{host}", if tls { "https" } else { "http" }),
                        waited: self.ready_timeout,
                        log_tail: log_tail(&log_path),
                        log: log_path,
                    });
                }
            }
        }
    }
}

/// A running `docker-registry`, stopped (killed and waited for) when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    _temp_dir: Option<TempDir>,
    root: PathBuf,
    port: u16,
    credentials: Option<(String, String)>,
    log_path: PathBuf,
    certificates: Option<TestCertificates>,
}

impl Registry {
    /// Starts an anonymous registry with delete enabled on a free loopback port.
    pub fn start() -> Result<Registry, Error> {
        RegistryBuilder::default().start()
    }

    /// Options: htpasswd auth, a fixed port, a kept directory.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (`https://` when it serves TLS).
    pub fn url(&self) -> String {
        let scheme = if self.certificates.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host())
    }

    /// `registry.tank.test:PORT` ([`TEST_TLS_HOST`]): the registry part of references for a
    /// client that must speak HTTPS to it (a loopback address is spoken to in plain HTTP);
    /// the client maps the name to `127.0.0.1` itself.
    pub fn tls_host(&self) -> String {
        format!("{TEST_TLS_HOST}:{}", self.port)
    }

    /// The CA and server certificate, when it serves TLS ([`RegistryBuilder::tls`]).
    pub fn certificates(&self) -> Option<&TestCertificates> {
        self.certificates.as_ref()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the filesystem storage driver keeps repositories and blobs.
    pub fn storage_dir(&self) -> PathBuf {
        self.root.join("storage")
    }

    /// The directory holding config, storage and log.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The registry's log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }

    /// Every `/v2/` request the registry has logged, oldest first, except the marker
    /// requests this method makes itself.
    ///
    /// The registry writes an access-log line after answering, so a client may exit before
    /// the line of its last request is written. This asks for a marker path and waits until
    /// its line is in the log: the lines of earlier requests have been written by then.
    ///
    /// # Errors
    ///
    /// [`Error::Http`] when the marker request fails, [`Error::Io`] when the log cannot be
    /// read, [`Error::AccessLogStalled`] when the marker's line never appears (20 s).
    pub fn requests(&self) -> Result<Vec<LoggedRequest>, Error> {
        static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let marker = format!(
            "{ACCESS_LOG_MARKER}{}/manifests/latest",
            MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.get(&marker)?;
        let waited = Duration::from_secs(20);
        let deadline = Instant::now() + waited;
        loop {
            let log = fs::read_to_string(&self.log_path).map_err(|source| Error::Io {
                path: self.log_path.clone(),
                source,
            })?;
            let requests = parse_access_log(&log);
            if requests.iter().any(|request| request.path == marker) {
                return Ok(requests
                    .into_iter()
                    .filter(|request| !request.is_marker())
                    .collect());
            }
            if Instant::now() >= deadline {
                return Err(Error::AccessLogStalled {
                    marker,
                    waited,
                    log: self.log_path.clone(),
                    log_tail: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The htpasswd user and password, when auth is on.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// `GET path` without credentials (HTTP/1.0, so the body is never chunked).
    pub fn get(&self, path: &str) -> Result<HttpResponse, Error> {
        http_get(&self.host(), path, &[])
    }

    /// `GET path` with HTTP Basic credentials.
    pub fn get_with_basic(
        &self,
        path: &str,
        user: &str,
        password: &str,
    ) -> Result<HttpResponse, Error> {
        let authorization = basic_auth_header(user, password);
        http_get(&self.host(), path, &[("Authorization", &authorization)])
    }

    /// `GET path` with extra request headers, e.g. `Accept` for manifests: the registry
    /// answers 404 for an OCI manifest when the request does not accept OCI media types.
    pub fn get_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, Error> {
        http_get(&self.host(), path, headers)
    }

    /// Copies tag `tag` of the OCI layout in `layout` (with every image of an index) to
    /// `HOST/destination` using skopeo, preserving digests; returns the full reference.
    /// Docker media types go through a temporary `dir:` copy (see [`LayoutSource`]).
    pub fn push_layout(
        &self,
        layout: &Path,
        tag: &str,
        destination: &str,
    ) -> Result<String, Error> {
        let reference = format!("{}/{destination}", self.host());
        let options = CopyOptions {
            all: true,
            preserve_digests: true,
            dest_creds: self.credentials.clone(),
            ..CopyOptions::default()
        };
        let source = LayoutSource::new(layout, tag)?;
        skopeo_copy(
            source.reference(),
            &format!("docker://{reference}"),
            &options,
        )?;
        Ok(reference)
    }

    /// Pushes every tag of the checked-in fixture `name` as `HOST/fixtures/<name>:<tag>`;
    /// returns the references in `index.json` order.
    pub fn push_fixture(&self, name: &str) -> Result<Vec<String>, Error> {
        if !FIXTURE_NAMES.contains(&name) {
            return Err(Error::UnknownFixture {
                name: name.to_owned(),
                known: FIXTURE_NAMES.join(", "),
            });
        }
        let layout = fixtures_dir().join(name);
        let mut references = Vec::new();
        for tag in read_layout_tags(&layout)? {
            references.push(self.push_layout(
                &layout,
                &tag.tag,
                &format!("fixtures/{name}:{}", tag.tag),
            )?);
        }
        Ok(references)
    }

    /// Pushes every fixture; returns all references.
    pub fn push_all_fixtures(&self) -> Result<Vec<String>, Error> {
        let mut references = Vec::new();
        for name in FIXTURE_NAMES {
            references.extend(self.push_fixture(name)?);
        }
        Ok(references)
    }

    /// Writes `dir/config.json` holding this registry's htpasswd credentials, as `docker login`
    /// would; an empty `auths` when auth is off. Returns the file's path.
    pub fn write_docker_config(&self, dir: &Path) -> Result<PathBuf, Error> {
        let document = match self.credentials() {
            Some((user, password)) => docker_config_json(&self.host(), user, password),
            None => json!({"auths": {}}),
        };
        write_json(&dir.join("config.json"), &document)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
