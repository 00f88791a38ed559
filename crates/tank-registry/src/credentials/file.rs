//! The Docker `config.json` / containers `auth.json` format: the parts that concern
//! credentials (`auths`, `credsStore`, `credHelpers`), and the key normalisation that matches
//! an entry to a registry.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

use super::{Credential, DOCKER_HUB, DOCKER_HUB_KEY};
use crate::Error;

/// Standard base64 that accepts `auth` values with or without padding, as Docker's tools differ.
const AUTH_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The parts of a Docker `config.json` or containers `auth.json` that concern credentials.
#[derive(Default, Deserialize)]
pub(super) struct ConfigFile {
    #[serde(default)]
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: Option<BTreeMap<String, String>>,
}

/// One `auths` entry.
#[derive(Default, Deserialize)]
pub(super) struct AuthEntry {
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
pub(super) fn read_config(path: &Path) -> Result<Option<ConfigFile>, Error> {
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
    pub(super) fn helper_for(&self, host: &str) -> Option<&str> {
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
    pub(super) fn entry_for(&self, name: &str) -> Option<(&str, &AuthEntry)> {
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
    pub(super) fn credential(&self, path: &Path, key: &str) -> Result<Credential, Error> {
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
pub(super) fn normalize_key(key: &str) -> String {
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
pub(super) fn candidates(host: &str, repository: &str) -> Vec<String> {
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
