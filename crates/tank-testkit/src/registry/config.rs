//! Configuration files: the registry's own YAML config (storage, TLS, htpasswd, pull-through
//! proxy) and a client's Docker `config.json`.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::Error;
use crate::json::canonical_json;
use crate::tls::TestCertificates;

/// The remote of a pull-through cache.
#[derive(Clone, Debug)]
pub(super) struct Proxy {
    pub(super) remote_url: String,
    pub(super) credentials: Option<(String, String)>,
}

pub(super) fn proxy_config(proxy: &Proxy) -> String {
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

pub(super) fn yaml_string(value: &Path) -> String {
    let text = value.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn registry_config(
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

pub(super) fn write_json(path: &Path, document: &Value) -> Result<PathBuf, Error> {
    fs::write(path, canonical_json(document)).map_err(|source| Error::io(path, source))?;
    Ok(path.to_path_buf())
}
