//! CNCF Distribution (`docker-registry serve`) on a free loopback port, with its own storage,
//! config and log in a temporary directory, stopped when dropped.

use std::env;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::Error;
use crate::fixtures::{FIXTURE_NAMES, fixtures_dir};
use crate::json::canonical_json;
use crate::oci::read_layout_tags;
use crate::skopeo::{CopyOptions, LayoutSource, skopeo_copy};
use crate::tls::{TEST_TLS_HOST, TestCertificates};

/// How many ports to try when another process takes the one picked before the registry binds.
const PORT_ATTEMPTS: u32 = 5;
/// bcrypt cost for htpasswd files: the minimum Go accepts is 4; tests want speed, not strength.
const BCRYPT_COST: u32 = 5;
const LOG_TAIL_LINES: usize = 40;

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

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

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
                    .filter(|request| !request.path.starts_with(ACCESS_LOG_MARKER))
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

/// Keeps a failed registry's temporary directory, so the log named in the error survives.
fn keep_for_debugging(temp_dir: Option<TempDir>) {
    if let Some(temp_dir) = temp_dir {
        let _kept: PathBuf = temp_dir.keep();
    }
}

fn stop(child: &mut Child) {
    // The process may already have exited; either way, reap it so no zombie is left.
    let _ = child.kill();
    let _ = child.wait();
}

enum Startup {
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

fn wait_until_ready(
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

/// The remote of a pull-through cache.
#[derive(Clone, Debug)]
struct Proxy {
    remote_url: String,
    credentials: Option<(String, String)>,
}

fn proxy_config(proxy: &Proxy) -> String {
    let quoted = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let mut config = format!("proxy:\n  remoteurl: {}\n", quoted(&proxy.remote_url));
    if let Some((user, password)) = &proxy.credentials {
        config.push_str(&format!(
            "  username: {}\n  password: {}\n",
            quoted(user),
            quoted(password)
        ));
    }
    config
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| Error::FreePort { source })?;
    let address = listener
        .local_addr()
        .map_err(|source| Error::FreePort { source })?;
    Ok(address.port())
}

fn yaml_string(value: &Path) -> String {
    let text = value.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn registry_config(
    port: u16,
    storage: &Path,
    htpasswd: Option<&Path>,
    delete_enabled: bool,
    certificates: Option<&TestCertificates>,
) -> String {
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  \
         delete:\n    enabled: {delete_enabled}\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: tank-testkit-not-a-secret\n",
        storage = yaml_string(storage),
    );
    if let Some(certificates) = certificates {
        config.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            yaml_string(certificates.cert_path()),
            yaml_string(certificates.key_path())
        ));
    }
    if let Some(htpasswd) = htpasswd {
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: tank-testkit\n    path: {}\n",
            yaml_string(htpasswd)
        ));
    }
    config
}

fn log_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(error) => format!("(log {} unreadable: {error})", path.display()),
    }
}

/// `Basic <base64(user:password)>`, the value of an `Authorization` header.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// A Docker `config.json` document with `auths.<host>.auth = base64(user:password)`.
pub fn docker_config_json(host: &str, user: &str, password: &str) -> Value {
    json!({"auths": {host: {"auth": BASE64.encode(format!("{user}:{password}"))}}})
}

/// Writes [`docker_config_json`] to `dir/config.json`; returns the file's path.
pub fn write_docker_config(
    dir: &Path,
    host: &str,
    user: &str,
    password: &str,
) -> Result<PathBuf, Error> {
    write_json(
        &dir.join("config.json"),
        &docker_config_json(host, user, password),
    )
}

fn write_json(path: &Path, document: &Value) -> Result<PathBuf, Error> {
    fs::write(path, canonical_json(document)).map_err(|source| Error::io(path, source))?;
    Ok(path.to_path_buf())
}

/// A repository asked for only so that its access-log line marks "everything before it has
/// been logged" ([`Registry::requests`]).
const ACCESS_LOG_MARKER: &str = "/v2/tank-testkit-sync/";

/// One request in the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The path with its query, e.g. `/v2/app/blobs/sha256:…`.
    pub path: String,
}

/// The `/v2/` requests of docker-registry access-log lines:
/// `127.0.0.1 - - [date] "GET /v2/… HTTP/1.1" 200 …`.
pub fn parse_access_log(log: &str) -> Vec<LoggedRequest> {
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("] \"")?;
            let mut words = rest.split(' ');
            let method = words.next()?;
            let path = words.next()?;
            path.starts_with("/v2/").then(|| LoggedRequest {
                method: method.to_owned(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A response from [`Registry::get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

fn http_get(host: &str, path: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, Error> {
    let url = format!("http://{host}{path}");
    let failed = |source: std::io::Error| Error::Http {
        url: url.clone(),
        source,
    };
    let address: SocketAddr = host.parse().map_err(|_| Error::MalformedResponse {
        url: url.clone(),
        head: format!("{host} is not an ip:port address"),
    })?;
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed)?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(failed)?;

    let malformed = || Error::MalformedResponse {
        url: url.clone(),
        head: String::from_utf8_lossy(&response[..response.len().min(200)]).into_owned(),
    };
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(malformed)?;
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(malformed)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(malformed)?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: response[head_end + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn registry_answers_v2_and_stops_on_drop() {
        let registry = Registry::start().expect("docker-registry must start");
        let response = registry.get("/v2/").unwrap();
        assert_eq!(response.status(), 200, "{}", registry.log_tail());
        assert_eq!(
            response.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
        assert_eq!(response.body(), b"{}");
        assert!(registry.host().starts_with("127.0.0.1:"));
        assert_eq!(registry.url(), format!("http://{}", registry.host()));
        assert!(registry.storage_dir().is_dir());
        let missing = registry.get("/v2/nothing/here/manifests/latest").unwrap();
        assert_eq!(missing.status(), 404);

        let pid = registry.pid();
        let port = registry.port();
        let root = registry.root_dir().to_path_buf();
        assert!(process_exists(pid));
        drop(registry);
        assert!(!process_exists(pid), "registry process {pid} still exists");
        assert!(
            !root.exists(),
            "temporary directory {} kept",
            root.display()
        );
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn htpasswd_registry_rejects_requests_without_the_right_credentials() {
        let registry = Registry::builder()
            .htpasswd("tester", "s3cret")
            .start()
            .expect("docker-registry must start");
        assert_eq!(registry.credentials(), Some(("tester", "s3cret")));

        let anonymous = registry.get("/v2/").unwrap();
        assert_eq!(anonymous.status(), 401);
        let challenge = anonymous.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");

        let wrong = registry.get_with_basic("/v2/", "tester", "wrong").unwrap();
        assert_eq!(wrong.status(), 401);
        let unknown = registry.get_with_basic("/v2/", "nobody", "s3cret").unwrap();
        assert_eq!(unknown.status(), 401);
        let right = registry.get_with_basic("/v2/", "tester", "s3cret").unwrap();
        assert_eq!(right.status(), 200, "{}", registry.log_tail());
    }

    #[test]
    fn pushed_fixtures_are_served_with_the_layout_digests() {
        let registry = Registry::start().expect("docker-registry must start");
        let references = registry.push_all_fixtures().expect("pushing fixtures");
        let mut expected_references = Vec::new();
        for name in FIXTURE_NAMES {
            for tag in read_layout_tags(&fixtures_dir().join(name)).unwrap() {
                let reference = format!("{}/fixtures/{name}:{}", registry.host(), tag.tag);
                let raw = crate::skopeo::skopeo_inspect_raw(&format!("docker://{reference}"), None)
                    .expect("skopeo inspect of a pushed fixture");
                assert_eq!(crate::sha256_digest(&raw), tag.digest, "{reference}");
                let path = format!("/v2/fixtures/{name}/manifests/{}", tag.digest);
                let response = registry
                    .get_with_headers(&path, &[("Accept", &tag.media_type)])
                    .unwrap();
                assert_eq!(response.status(), 200, "{reference}");
                assert_eq!(crate::sha256_digest(response.body()), tag.digest);
                assert_eq!(
                    response.header("docker-content-digest"),
                    Some(tag.digest.as_str())
                );
                expected_references.push(reference);
            }
        }
        assert_eq!(references, expected_references);
        assert!(matches!(
            registry.push_fixture("no-such-fixture"),
            Err(Error::UnknownFixture { .. })
        ));
    }

    #[test]
    fn pushing_to_an_htpasswd_registry_uses_its_credentials() {
        let registry = Registry::builder()
            .htpasswd("pusher", "pw")
            .start()
            .expect("docker-registry must start");
        let references = registry
            .push_fixture("single")
            .expect("push with credentials");
        let reference = format!("docker://{}", references[0]);
        let raw = crate::skopeo::skopeo_inspect_raw(&reference, Some(("pusher", "pw"))).unwrap();
        assert_eq!(
            crate::sha256_digest(&raw),
            read_layout_tags(&fixtures_dir().join("single")).unwrap()[0].digest
        );
        let anonymous = crate::skopeo::skopeo_inspect_raw(&reference, None).unwrap_err();
        assert!(
            matches!(anonymous, Error::CommandFailed { .. }),
            "{anonymous}"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = registry.write_docker_config(dir.path()).unwrap();
        let written: Value = serde_json::from_slice(&fs::read(config).unwrap()).unwrap();
        assert_eq!(
            written,
            docker_config_json(&registry.host(), "pusher", "pw")
        );
    }

    #[test]
    fn a_fixed_port_that_is_taken_fails_with_the_registry_log() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // A directory the test owns: a failed start keeps its directory for the log.
        let root = tempfile::tempdir().unwrap();
        let error = Registry::builder()
            .port(port)
            .root_dir(root.path())
            .start()
            .unwrap_err();
        match &error {
            Error::RegistryExited {
                log_tail, attempts, ..
            } => {
                assert!(log_tail.contains("address already in use"), "{log_tail}");
                assert_eq!(*attempts, 1);
            }
            other => panic!("expected RegistryExited, got {other:?}"),
        }
        assert!(root.path().join("registry.log").is_file());
        assert!(error.to_string().contains(&format!("127.0.0.1:{port}")));
    }

    #[test]
    fn a_fixed_free_port_is_used_and_a_kept_root_dir_survives() {
        let kept = tempfile::tempdir().unwrap();
        let port = free_port().unwrap();
        let registry = Registry::builder()
            .port(port)
            .root_dir(kept.path())
            .start()
            .expect("docker-registry must start");
        assert_eq!(registry.host(), format!("127.0.0.1:{port}"));
        assert_eq!(registry.storage_dir(), kept.path().join("storage"));
        drop(registry);
        assert!(kept.path().join("registry.log").is_file());
        assert!(kept.path().join("config.yml").is_file());
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_the_package() {
        let error =
            find_program("tank-no-such-program", "TANK_TESTKIT_UNSET_VARIABLE", "pkg").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("apt-get install pkg"), "{message}");
        assert!(message.contains("tank-no-such-program"), "{message}");
        assert!(find_program("sh", "TANK_TESTKIT_UNSET_VARIABLE", "dash").is_ok());
    }

    #[test]
    fn a_missing_or_failing_registry_binary_is_an_error() {
        let missing = Registry::builder()
            .program("/nonexistent/docker-registry")
            .start()
            .unwrap_err();
        assert!(matches!(missing, Error::ToolMissing { .. }), "{missing:?}");
        assert!(
            missing
                .to_string()
                .contains("apt-get install docker-registry"),
            "{missing}"
        );

        let root = tempfile::tempdir().unwrap();
        let failing = Registry::builder()
            .program("/bin/false")
            .root_dir(root.path())
            .start()
            .unwrap_err();
        assert!(
            matches!(failing, Error::RegistryExited { attempts: 1, .. }),
            "{failing:?}"
        );
    }

    #[test]
    fn tls_registry_serves_https_with_a_certificate_its_ca_issued() {
        let registry = Registry::builder().tls(true).start().unwrap();
        assert_eq!(
            registry.url(),
            format!("https://127.0.0.1:{}", registry.port())
        );
        assert_eq!(
            registry.tls_host(),
            format!("registry.tank.test:{}", registry.port())
        );
        let certificates = registry.certificates().unwrap();
        let config = fs::read_to_string(registry.root_dir().join("config.yml")).unwrap();
        assert!(config.contains("  tls:\n    certificate: "), "{config}");
        // A TLS handshake that verifies the server against the CA, for the test host name.
        let output = Command::new("openssl")
            .args(["s_client", "-brief", "-verify_return_error"])
            .arg("-connect")
            .arg(registry.host())
            .args(["-verify_hostname", TEST_TLS_HOST, "-CAfile"])
            .arg(certificates.ca_path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("Verification: OK"), "{stderr}");
        // A plain-HTTP registry has no certificates.
        assert!(Registry::start().unwrap().certificates().is_none());
    }

    #[test]
    fn config_quotes_paths_and_adds_auth_only_when_asked() {
        let plain = registry_config(5000, Path::new("/tmp/a \"b\""), None, true, None);
        assert!(
            plain.contains("rootdirectory: \"/tmp/a \\\"b\\\"\""),
            "{plain}"
        );
        assert!(plain.contains("addr: 127.0.0.1:5000"));
        assert!(plain.contains("enabled: true"));
        assert!(!plain.contains("htpasswd"));
        let with_auth = registry_config(5000, Path::new("/s"), Some(Path::new("/h")), false, None);
        assert!(with_auth.contains("path: \"/h\""), "{with_auth}");
        assert!(
            with_auth.contains("delete:\n    enabled: false"),
            "{with_auth}"
        );
    }

    #[test]
    fn docker_config_encodes_user_and_password() {
        assert_eq!(basic_auth_header("user", "pass"), "Basic dXNlcjpwYXNz");
        assert_eq!(
            docker_config_json("127.0.0.1:5000", "user", "pass"),
            json!({"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"}}})
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write_docker_config(dir.path(), "h:1", "u", "p").unwrap();
        let written: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        assert_eq!(written, docker_config_json("h:1", "u", "p"));
    }
}
