//! [`Registries`]: where a reference is pulled from. Mirrors, location rewrites and blocked
//! names, read from the containers `registries.conf` (version 2, as podman, skopeo, buildah
//! and CRI-O read it) or added one by one (`tank pull --mirror HOST`).
//!
//! A reference keeps its name (the cache key, the ref sidecar, what the user typed); only the
//! requests go elsewhere. For each request the client tries, in order, the eligible mirrors
//! and then the primary location, and falls back to the next on any failure.

mod conf;
mod resolve;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

use crate::Error;

use conf::{check_location, check_prefix};

/// Which requests a mirror serves (`pull-from-mirror`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullFromMirror {
    /// Every request (the default).
    #[default]
    All,
    /// Requests by digest only: manifests by digest and blobs. A tag is always resolved by
    /// the next source that is not digest-only, so a stale mirror cannot move a tag.
    DigestOnly,
    /// Only pulls of references without a digest.
    TagOnly,
}

/// One mirror of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/namespace…]`: replaces the matched prefix of the reference.
    pub location: String,
    /// Speak plain HTTP to it (see [`crate::ClientConfig::insecure_registries`]).
    pub insecure: bool,
    /// Which requests it serves.
    pub pull_from: PullFromMirror,
}

impl Mirror {
    /// A mirror of `location` serving every request, over HTTPS unless `location` is
    /// loopback.
    ///
    /// # Errors
    ///
    /// [`Error::RegistriesConf`] when `location` is not `host[:port][/namespace…]`.
    pub fn new(location: &str) -> Result<Mirror, Error> {
        check_location(location, "--mirror")?;
        Ok(Mirror {
            location: location.to_owned(),
            insecure: false,
            pull_from: PullFromMirror::All,
        })
    }
}

/// One `[[registry]]` table: the namespace it covers and where that namespace is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRule {
    /// The names it covers: `host[:port][/namespace…][/repo][:tag|@digest]`, or `*.domain`
    /// for every host under `domain`.
    pub prefix: String,
    /// The primary location replacing `prefix` (the prefix itself when not rewritten; empty
    /// for a wildcard prefix).
    pub location: String,
    /// Speak plain HTTP to the primary location.
    pub insecure: bool,
    /// Refuse to pull these names.
    pub blocked: bool,
    /// Use the mirrors only for requests by digest (manifests by digest and blobs).
    pub mirror_by_digest_only: bool,
    /// Tried in order before the primary location.
    pub mirrors: Vec<Mirror>,
}

/// Mirror and location rules for every registry. `Default` has none: every request goes to
/// the registry the reference names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registries {
    rules: Vec<RegistryRule>,
    /// Mirrors added one by one (`--mirror [PREFIX=]HOST`), for the names under a prefix or
    /// (`None`) for every registry; tried before a rule's own.
    added: Vec<(Option<String>, Mirror)>,
    /// The files read, in order.
    files: Vec<PathBuf>,
}

/// One place a request may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// `host[:port]` (`docker.io` is served by `registry-1.docker.io`).
    pub registry: String,
    /// The repository there.
    pub repository: String,
    /// Plain HTTP although not loopback.
    pub insecure: bool,
    /// A mirror (falls back to the next source), not the primary location.
    pub mirror: bool,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

impl Registries {
    /// No rules: every request goes to the registry the reference names.
    pub fn none() -> Registries {
        Registries::default()
    }
    /// Adds a mirror tried before every other source: for the registries matching `prefix`
    /// (`host[:port][/namespace…]`), or for every registry when `prefix` is `None` (its
    /// location then replaces the reference's registry: `mirror.lan/cache` serves
    /// `docker.io/library/alpine` as `mirror.lan/cache/library/alpine`). Mirrors added later
    /// are tried after those added before.
    ///
    /// # Errors
    ///
    /// [`Error::RegistriesConf`] when `prefix` is malformed.
    pub fn add_mirror(&mut self, prefix: Option<&str>, mirror: Mirror) -> Result<(), Error> {
        if let Some(prefix) = prefix {
            check_prefix(prefix).map_err(|message| Error::RegistriesConf {
                path: "--mirror".to_owned(),
                message,
            })?;
        }
        self.added.push((prefix.map(str::to_owned), mirror));
        Ok(())
    }

    /// The rules, in the order they were read.
    pub fn rules(&self) -> &[RegistryRule] {
        &self.rules
    }

    /// The files the rules came from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether any mirror or rewrite is configured (with none, every request goes where the
    /// reference says).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.added.is_empty()
    }

    /// Whether any mirror is configured.
    pub fn has_mirrors(&self) -> bool {
        !self.added.is_empty() || self.rules.iter().any(|rule| !rule.mirrors.is_empty())
    }
}
