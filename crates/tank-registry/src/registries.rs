//! [`Registries`]: where a reference is pulled from. Mirrors, location rewrites and blocked
//! names, read from the containers `registries.conf` (version 2, as podman, skopeo, buildah
//! and CRI-O read it) or added one by one (`tank pull --mirror HOST`).
//!
//! A reference keeps its name (the cache key, the ref sidecar, what the user typed); only the
//! requests go elsewhere. For each request the client tries, in order, the eligible mirrors
//! and then the primary location, and falls back to the next on any failure.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tank_reference::{Reference, grammar};

use crate::Error;

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

/// The file as serde reads it: v2 `[[registry]]` tables, or the deprecated v1
/// `[registries.*]` lists. Other keys (`unqualified-search-registries`, `[aliases]`,
/// `short-name-mode`, `credential-helpers`) are accepted and not used.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    registry: Vec<RawRule>,
    registries: Option<RawV1>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRule {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize)]
struct RawV1 {
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// Where the system's `registries.conf` and `registries.conf.d` are.
const SYSTEM_DIR: &str = "/etc/containers";

impl Registries {
    /// No rules: every request goes to the registry the reference names.
    pub fn none() -> Registries {
        Registries::default()
    }

    /// Reads the configuration the containers tools read: `$CONTAINERS_REGISTRIES_CONF`
    /// alone when set; otherwise `$HOME/.config/containers/registries.conf` when it exists,
    /// else `/etc/containers/registries.conf` (a missing file is no rules), then the drop-ins
    /// (`*.conf` in `$HOME/.config/containers/registries.conf.d` when that exists, else in
    /// `/etc/containers/registries.conf.d`, in name order; a table with a prefix seen before
    /// replaces it).
    ///
    /// # Errors
    ///
    /// [`Error::RegistriesConf`] naming the file that cannot be read or is not valid.
    pub fn from_system() -> Result<Registries, Error> {
        if let Some(path) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
            return Registries::from_file(Path::new(&path));
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Registries::from_dirs(home.as_deref(), Path::new(SYSTEM_DIR))
    }

    /// [`Registries::from_system`] with the home directory and the system directory
    /// (`/etc/containers`) given.
    fn from_dirs(home: Option<&Path>, system: &Path) -> Result<Registries, Error> {
        let user = home.map(|home| home.join(".config/containers"));
        let main = match &user {
            Some(user) if user.join("registries.conf").exists() => user.join("registries.conf"),
            _ => system.join("registries.conf"),
        };
        let drop_ins = match &user {
            Some(user) if user.join("registries.conf.d").is_dir() => user.join("registries.conf.d"),
            _ => system.join("registries.conf.d"),
        };
        let mut registries = Registries::default();
        if main.exists() {
            registries.merge(Registries::from_file(&main)?);
        }
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&drop_ins) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(Error::RegistriesConf {
                    path: drop_ins.display().to_string(),
                    message: error.to_string(),
                });
            }
        };
        files.sort();
        for file in files {
            registries.merge(Registries::from_file(&file)?);
        }
        Ok(registries)
    }

    /// Reads one `registries.conf` file.
    ///
    /// # Errors
    ///
    /// [`Error::RegistriesConf`] naming the file when it cannot be read or is not valid.
    pub fn from_file(path: &Path) -> Result<Registries, Error> {
        let text =
            crate::files::read_text(path, crate::files::CONFIG_FILE_LIMIT).map_err(|error| {
                Error::RegistriesConf {
                    path: path.display().to_string(),
                    message: error.to_string(),
                }
            })?;
        Registries::parse(&text, path)
    }

    /// Parses `text`, a `registries.conf` file (version 2; the deprecated version 1 lists
    /// `[registries.insecure]` and `[registries.block]` are understood too); `origin` names it
    /// in errors.
    ///
    /// # Errors
    ///
    /// [`Error::RegistriesConf`] naming `origin` and what is wrong: TOML syntax, a table with
    /// neither prefix nor location, a malformed prefix or location, a location on a wildcard
    /// prefix, an unknown `pull-from-mirror`, a prefix defined twice, both formats mixed.
    pub fn parse(text: &str, origin: &Path) -> Result<Registries, Error> {
        let invalid = |message: String| Error::RegistriesConf {
            path: origin.display().to_string(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let mut rules: Vec<RegistryRule> = Vec::new();
        if let Some(v1) = raw.registries {
            if !raw.registry.is_empty() {
                return Err(invalid(
                    "mixes the version 1 [registries.*] lists with version 2 [[registry]] tables"
                        .to_owned(),
                ));
            }
            let insecure = v1.insecure.map(|list| list.registries).unwrap_or_default();
            let block = v1.block.map(|list| list.registries).unwrap_or_default();
            for host in insecure.iter().chain(&block) {
                if rules.iter().any(|rule| &rule.prefix == host) {
                    continue;
                }
                check_prefix(host)
                    .map_err(|message| invalid(format!("[registries]: {message}")))?;
                rules.push(RegistryRule {
                    prefix: host.clone(),
                    location: host.clone(),
                    insecure: insecure.contains(host),
                    blocked: block.contains(host),
                    mirror_by_digest_only: false,
                    mirrors: Vec::new(),
                });
            }
        }
        for (number, rule) in raw.registry.into_iter().enumerate() {
            let at = |message: String| invalid(format!("[[registry]] #{}: {message}", number + 1));
            let location = rule.location.unwrap_or_default();
            let prefix = match rule.prefix {
                Some(prefix) if !prefix.is_empty() => prefix,
                _ if !location.is_empty() => location.clone(),
                _ => return Err(at("has neither prefix nor location".to_owned())),
            };
            if !prefix.starts_with("*.") && !location.is_empty() {
                check_location(&location, "location").map_err(|error| at(inner(error)))?;
            }
            check_prefix(&prefix).map_err(&at)?;
            let location = if prefix.starts_with("*.") {
                if !location.is_empty() {
                    return Err(at(format!(
                        "wildcard prefix {prefix:?} cannot have a location ({location:?})"
                    )));
                }
                String::new()
            } else if location.is_empty() {
                strip_tag_and_digest(&prefix).to_owned()
            } else {
                location
            };
            let mut mirrors = Vec::new();
            for mirror in rule.mirror {
                check_location(&mirror.location, "mirror location")
                    .map_err(|error| at(inner(error)))?;
                let pull_from = match mirror.pull_from_mirror.as_deref() {
                    None | Some("") | Some("all") => PullFromMirror::All,
                    Some("digest-only") => PullFromMirror::DigestOnly,
                    Some("tag-only") => PullFromMirror::TagOnly,
                    Some(other) => {
                        return Err(at(format!(
                            "pull-from-mirror {other:?} is not \"all\", \"digest-only\" or \"tag-only\""
                        )));
                    }
                };
                mirrors.push(Mirror {
                    location: mirror.location,
                    insecure: mirror.insecure,
                    pull_from,
                });
            }
            if rules.iter().any(|seen| seen.prefix == prefix) {
                return Err(at(format!("prefix {prefix:?} is defined more than once")));
            }
            rules.push(RegistryRule {
                prefix,
                location,
                insecure: rule.insecure,
                blocked: rule.blocked,
                mirror_by_digest_only: rule.mirror_by_digest_only,
                mirrors,
            });
        }
        Ok(Registries {
            rules,
            added: Vec::new(),
            files: vec![origin.to_owned()],
        })
    }

    /// Adds `later`'s rules: one with a prefix already known replaces it (as a drop-in file
    /// does), others are added.
    pub fn merge(&mut self, later: Registries) {
        for rule in later.rules {
            match self
                .rules
                .iter_mut()
                .find(|seen| seen.prefix == rule.prefix)
            {
                Some(seen) => *seen = rule,
                None => self.rules.push(rule),
            }
        }
        self.added.extend(later.added);
        self.files.extend(later.files);
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

    /// The rule for `reference`: the one whose prefix matches the longest part of its name.
    pub fn rule_for(&self, reference: &Reference) -> Option<&RegistryRule> {
        let name = Name::of(reference);
        self.rules
            .iter()
            .filter(|rule| name.matches(&rule.prefix))
            .max_by_key(|rule| rule.prefix.len())
    }

    /// The sources of one request for `reference`, in the order to try them: the eligible
    /// mirrors, then the primary location (last, always). `by_digest` tells whether the
    /// request names its object by digest (a manifest by digest, a blob) or by tag.
    ///
    /// # Errors
    ///
    /// [`Error::Blocked`] when the matching rule blocks the name; [`Error::RegistriesConf`]
    /// when a rewrite leaves no repository.
    pub fn sources(&self, reference: &Reference, by_digest: bool) -> Result<Vec<Source>, Error> {
        let name = Name::of(reference);
        let rule = self.rule_for(reference);
        if let Some(rule) = rule {
            if rule.blocked {
                return Err(Error::Blocked {
                    name: reference.to_string(),
                    prefix: rule.prefix.clone(),
                });
            }
        }
        let reference_by_digest = reference.digest().is_some();
        let eligible = |pull_from: PullFromMirror| match pull_from {
            PullFromMirror::All => true,
            PullFromMirror::DigestOnly => by_digest,
            PullFromMirror::TagOnly => !reference_by_digest,
        };
        let mut sources = Vec::new();
        let whole_repository = format!("/{}", reference.repository());
        for (prefix, mirror) in &self.added {
            let rest = match prefix {
                None => whole_repository.as_str(),
                Some(prefix) if name.matches(prefix) => name.rest_after(prefix),
                Some(_) => continue,
            };
            if eligible(mirror.pull_from) {
                sources.push(rewrite(&mirror.location, rest, mirror.insecure, true)?);
            }
        }
        let primary = match rule {
            Some(rule) => {
                let rest = name.rest_after(&rule.prefix);
                for mirror in &rule.mirrors {
                    let pull_from = if rule.mirror_by_digest_only {
                        PullFromMirror::DigestOnly
                    } else {
                        mirror.pull_from
                    };
                    if eligible(pull_from) {
                        sources.push(rewrite(&mirror.location, rest, mirror.insecure, true)?);
                    }
                }
                if rule.location.is_empty() {
                    Source {
                        registry: reference.registry().to_owned(),
                        repository: reference.repository().to_owned(),
                        insecure: rule.insecure,
                        mirror: false,
                    }
                } else {
                    rewrite(&rule.location, rest, rule.insecure, false)?
                }
            }
            None => Source {
                registry: reference.registry().to_owned(),
                repository: reference.repository().to_owned(),
                insecure: false,
                mirror: false,
            },
        };
        let mut seen = HashSet::new();
        sources.retain(|source| {
            seen.insert((source.registry.clone(), source.repository.clone()))
                && !(source.registry == primary.registry && source.repository == primary.repository)
        });
        sources.push(primary);
        Ok(sources)
    }
}

/// A reference's name as prefixes match it: `registry/repository` and the same followed by
/// `:tag` and `@digest` when it has them.
struct Name {
    registry: String,
    path: String,
    full: String,
}

impl Name {
    fn of(reference: &Reference) -> Name {
        let path = format!("{}/{}", reference.registry(), reference.repository());
        let mut full = path.clone();
        if let Some(tag) = reference.tag() {
            full.push(':');
            full.push_str(tag);
        }
        if let Some(digest) = reference.digest() {
            full.push('@');
            full.push_str(&digest.to_string());
        }
        Name {
            registry: reference.registry().to_owned(),
            path,
            full,
        }
    }

    /// Whether `prefix` covers this name: a leading part ending at a `/` (or, once the whole
    /// repository is matched, at `:` or `@`), or `*.domain` matching the registry's host.
    fn matches(&self, prefix: &str) -> bool {
        if let Some(domain) = prefix.strip_prefix("*.") {
            let host = self
                .registry
                .rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(self.registry.as_str(), |(host, _)| host);
            return host.len() > domain.len()
                && host.ends_with(domain)
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.';
        }
        if !self.full.starts_with(prefix) {
            return false;
        }
        match self.full.as_bytes().get(prefix.len()) {
            None | Some(b'/') => true,
            Some(b':' | b'@') => prefix.len() >= self.path.len(),
            Some(_) => false,
        }
    }

    /// What follows the matched `prefix` in the repository path: `""` or `/…`.
    fn rest_after(&self, prefix: &str) -> &str {
        if prefix.starts_with("*.") {
            return &self.path[self.registry.len()..];
        }
        self.path.get(prefix.len()..).unwrap_or("")
    }
}

/// `location` followed by `rest`, split into registry and repository.
fn rewrite(location: &str, rest: &str, insecure: bool, mirror: bool) -> Result<Source, Error> {
    let joined = format!("{location}{rest}");
    match joined.split_once('/') {
        Some((registry, repository)) if !repository.is_empty() => Ok(Source {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            insecure,
            mirror,
        }),
        _ => Err(Error::RegistriesConf {
            path: "registries".to_owned(),
            message: format!("location {location:?} leaves no repository to pull from"),
        }),
    }
}

/// `prefix` without a trailing `:tag` or `@digest`.
fn strip_tag_and_digest(prefix: &str) -> &str {
    let name = prefix.split_once('@').map_or(prefix, |(name, _)| name);
    let last_slash = name.rfind('/').unwrap_or(0);
    match name[last_slash..].rfind(':') {
        Some(colon) if last_slash > 0 => &name[..last_slash + colon],
        _ => name,
    }
}

/// Checks a prefix: `*.domain`, or `host[:port][/path][:tag|@digest]`.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        return if grammar::is_host(domain) {
            Ok(())
        } else {
            Err(format!(
                "wildcard prefix {prefix:?} is not \"*.\" followed by a domain"
            ))
        };
    }
    let name = strip_tag_and_digest(prefix);
    let (host, path) = match name.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (name, None),
    };
    if !grammar::is_domain_and_port(host) || path.is_some_and(|path| !grammar::is_remote_name(path))
    {
        return Err(format!(
            "prefix {prefix:?} is not host[:port][/namespace…][/repo][:tag|@digest]"
        ));
    }
    Ok(())
}

/// Checks a location: `host[:port][/namespace…]`, no tag, no digest, no scheme.
fn check_location(location: &str, what: &str) -> Result<(), Error> {
    let (host, path) = match location.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (location, None),
    };
    let valid = grammar::is_domain_and_port(host)
        && path.is_none_or(|path| !path.is_empty() && grammar::is_remote_name(path));
    if valid {
        Ok(())
    } else {
        Err(Error::RegistriesConf {
            path: what.to_owned(),
            message: format!(
                "{what} {location:?} is not host[:port][/namespace…] (no scheme, tag or digest)"
            ),
        })
    }
}

/// The message of a [`Error::RegistriesConf`], to re-anchor it on another file.
fn inner(error: Error) -> String {
    match error {
        Error::RegistriesConf { message, .. } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Registries {
        Registries::parse(text, Path::new("test.conf")).unwrap_or_else(|error| panic!("{error}"))
    }

    fn error(text: &str) -> String {
        match Registries::parse(text, Path::new("test.conf")) {
            Ok(parsed) => panic!("accepted {text:?} as {parsed:?}"),
            Err(error) => error.to_string(),
        }
    }

    /// The sources as `registry/repository` strings, mirrors marked with `~` and insecure
    /// ones with `!`.
    fn sources(registries: &Registries, reference: &str, by_digest: bool) -> Vec<String> {
        let reference: Reference = reference.parse().unwrap();
        registries
            .sources(&reference, by_digest)
            .unwrap_or_else(|error| panic!("{reference}: {error}"))
            .iter()
            .map(|source| {
                format!(
                    "{}{}{source}",
                    if source.mirror { "~" } else { "" },
                    if source.insecure { "!" } else { "" }
                )
            })
            .collect()
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_manual_example_tries_both_mirrors_then_the_rewritten_location() {
        let registries = parse(
            r#"
            unqualified-search-registries = ["example.com"]

            [[registry]]
            prefix = "example.com/foo"
            insecure = false
            blocked = false
            location = "internal-registry-for-example.com/bar"

            [[registry.mirror]]
            location = "example-mirror-0.local/mirror-for-foo"

            [[registry.mirror]]
            location = "example-mirror-1.local/mirrors/foo"
            insecure = true
            "#,
        );
        assert_eq!(
            sources(&registries, "example.com/foo/image:latest", false),
            [
                "~example-mirror-0.local/mirror-for-foo/image",
                "~!example-mirror-1.local/mirrors/foo/image",
                "internal-registry-for-example.com/bar/image",
            ]
        );
        assert_eq!(
            sources(&registries, "example.com/foobar/image:latest", false),
            ["example.com/foobar/image"],
            "a prefix ends at a path separator"
        );
        assert_eq!(
            sources(&registries, "example.com/foo:1", false),
            [
                "~example-mirror-0.local/mirror-for-foo",
                "~!example-mirror-1.local/mirrors/foo",
                "internal-registry-for-example.com/bar"
            ],
            "the prefix naming the whole repository matches it"
        );
    }

    #[test]
    fn the_longest_matching_prefix_wins() {
        let registries = parse(
            r#"
            [[registry]]
            location = "registry.lan"
            [[registry.mirror]]
            location = "short.mirror"

            [[registry]]
            prefix = "registry.lan/team"
            location = "registry.lan/team"
            [[registry.mirror]]
            location = "long.mirror/team"

            [[registry]]
            prefix = "registry.lan/team/app:stable"
            location = "other.lan/app-stable"
            "#,
        );
        assert_eq!(
            sources(&registries, "registry.lan/team/app:1", false),
            ["~long.mirror/team/app", "registry.lan/team/app"]
        );
        assert_eq!(
            sources(&registries, "registry.lan/other/app:1", false),
            ["~short.mirror/other/app", "registry.lan/other/app"]
        );
        assert_eq!(
            sources(&registries, "registry.lan/team/app:stable", false),
            ["other.lan/app-stable"],
            "a prefix with a tag matches that tag only"
        );
        assert_eq!(
            sources(&registries, "registry.lan:5000/team/app:1", false),
            ["registry.lan:5000/team/app"],
            "a host prefix does not match the same host on another port"
        );
    }

    #[test]
    fn docker_hub_names_are_matched_after_normalisation() {
        let registries = parse(
            r#"
            [[registry]]
            prefix = "docker.io"
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.lan:5000"
            [[registry.mirror]]
            location = "docker.io"
            "#,
        );
        assert_eq!(
            sources(&registries, "alpine", false),
            [
                "~mirror.lan:5000/library/alpine",
                "docker.io/library/alpine"
            ],
            "a mirror equal to the primary location is not tried twice"
        );
    }

    #[test]
    fn wildcard_prefixes_match_subdomains_only() {
        let registries = parse(
            r#"
            [[registry]]
            prefix = "*.example.com"
            [[registry.mirror]]
            location = "mirror.lan/example"
            "#,
        );
        assert_eq!(
            sources(&registries, "a.example.com/x/y:1", false),
            ["~mirror.lan/example/x/y", "a.example.com/x/y"]
        );
        assert_eq!(
            sources(&registries, "a.b.example.com:5000/x", false),
            ["~mirror.lan/example/x", "a.b.example.com:5000/x"]
        );
        for other in ["example.com/x", "badexample.com/x", "example.com.evil/x"] {
            assert_eq!(sources(&registries, other, false).len(), 1, "{other}");
        }
        assert!(
            error("[[registry]]\nprefix = \"*.example.com\"\nlocation = \"x.lan\"")
                .contains("wildcard prefix \"*.example.com\" cannot have a location")
        );
    }

    #[test]
    fn digest_only_and_tag_only_mirrors_serve_their_requests_only() {
        let registries = parse(
            r#"
            [[registry]]
            location = "up.lan"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "digests.lan"
            pull-from-mirror = "tag-only"

            [[registry]]
            location = "up2.lan"
            [[registry.mirror]]
            location = "digests2.lan"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "tags2.lan"
            pull-from-mirror = "tag-only"
            [[registry.mirror]]
            location = "all2.lan"
            "#,
        );
        // mirror-by-digest-only wins over the mirror's own setting.
        assert_eq!(sources(&registries, "up.lan/app:1", false), ["up.lan/app"]);
        assert_eq!(
            sources(&registries, "up.lan/app:1", true),
            ["~digests.lan/app", "up.lan/app"]
        );
        let by_digest = format!("up2.lan/app@{DIGEST}");
        assert_eq!(
            sources(&registries, "up2.lan/app:1", false),
            ["~tags2.lan/app", "~all2.lan/app", "up2.lan/app"],
            "a tag is not resolved by a digest-only mirror"
        );
        assert_eq!(
            sources(&registries, "up2.lan/app:1", true),
            [
                "~digests2.lan/app",
                "~tags2.lan/app",
                "~all2.lan/app",
                "up2.lan/app"
            ],
            "blobs of a tag pull come from every mirror"
        );
        assert_eq!(
            sources(&registries, &by_digest, true),
            ["~digests2.lan/app", "~all2.lan/app", "up2.lan/app"],
            "a digest pull skips tag-only mirrors"
        );
    }

    #[test]
    fn blocked_names_are_refused_with_the_rule() {
        let registries = parse(
            "[[registry]]\nlocation = \"bad.lan\"\nblocked = true\n\
             [[registry]]\nprefix = \"bad.lan/allowed\"\nlocation = \"bad.lan/allowed\"\n",
        );
        let reference: Reference = "bad.lan/app:1".parse().unwrap();
        match registries.sources(&reference, false) {
            Err(Error::Blocked { name, prefix }) => {
                assert_eq!(name, "bad.lan/app:1");
                assert_eq!(prefix, "bad.lan");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            sources(&registries, "bad.lan/allowed/app:1", false),
            ["bad.lan/allowed/app"]
        );
    }

    #[test]
    fn version_1_lists_and_other_keys_are_understood() {
        let registries = parse(
            r#"
            [registries.search]
            registries = ["docker.io"]
            [registries.insecure]
            registries = ["plain.lan:5000"]
            [registries.block]
            registries = ["bad.lan"]
            "#,
        );
        assert_eq!(
            sources(&registries, "plain.lan:5000/app", false),
            ["!plain.lan:5000/app"]
        );
        assert!(
            registries
                .sources(&"bad.lan/app".parse().unwrap(), true)
                .is_err()
        );
        // Debian's shipped drop-in: aliases only, no rules.
        let aliases = parse(
            "[aliases]\n  # docker\n  \"alpine\" = \"docker.io/library/alpine\"\n\
             short-name-mode = \"permissive\"\n",
        );
        assert!(aliases.is_empty());
        assert!(parse("# only comments\n").is_empty());
    }

    #[test]
    fn invalid_files_are_refused_naming_the_file_and_the_table() {
        let cases = [
            ("[[registry]]\nprefix = ", "test.conf"),
            (
                "[[registry]]\ninsecure = true\n",
                "[[registry]] #1: has neither prefix nor location",
            ),
            (
                "[[registry]]\nlocation = \"a.lan\"\n[[registry]]\nlocation = \"b.lan\"\n[[registry.mirror]]\nlocation = \"m.lan\"\npull-from-mirror = \"sometimes\"\n",
                "[[registry]] #2: pull-from-mirror \"sometimes\"",
            ),
            (
                "[[registry]]\nlocation = \"a.lan\"\n[[registry]]\nprefix = \"a.lan\"\n",
                "prefix \"a.lan\" is defined more than once",
            ),
            (
                "[registries.block]\nregistries = [\"a.lan\"]\n[[registry]]\nlocation = \"b.lan\"\n",
                "mixes the version 1",
            ),
            (
                "[[registry]]\nlocation = \"https://a.lan\"\n",
                "location \"https://a.lan\" is not host[:port]",
            ),
            (
                "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"m.lan/Upper\"\n",
                "mirror location \"m.lan/Upper\"",
            ),
            (
                "[[registry]]\nprefix = \"a lan\"\n",
                "prefix \"a lan\" is not",
            ),
            ("[[registry]]\nlocation = 5\n", "test.conf"),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.contains("test.conf"), "{message}");
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn added_mirrors_come_first_for_their_prefix_or_every_registry() {
        let mut registries = parse(
            "[[registry]]\nlocation = \"up.lan\"\n[[registry.mirror]]\nlocation = \"conf.mirror\"\n",
        );
        registries
            .add_mirror(None, Mirror::new("everywhere.lan:5000").unwrap())
            .unwrap();
        registries
            .add_mirror(
                Some("up.lan/team"),
                Mirror::new("team.mirror/cache").unwrap(),
            )
            .unwrap();
        assert_eq!(
            sources(&registries, "up.lan/team/app:1", false),
            [
                "~everywhere.lan:5000/team/app",
                "~team.mirror/cache/app",
                "~conf.mirror/team/app",
                "up.lan/team/app"
            ]
        );
        assert_eq!(
            sources(&registries, "other.lan/app:1", false),
            ["~everywhere.lan:5000/app", "other.lan/app"]
        );
        assert!(Mirror::new("http://x.lan").is_err());
        assert!(Mirror::new("x.lan/").is_err());
        assert!(
            registries
                .add_mirror(Some("bad prefix"), Mirror::new("x.lan").unwrap())
                .is_err()
        );
    }

    #[test]
    fn the_user_file_replaces_the_system_file_and_drop_ins_replace_by_prefix() {
        let root = tempfile::tempdir().unwrap();
        let system = root.path().join("etc");
        let home = root.path().join("home");
        std::fs::create_dir_all(system.join("registries.conf.d")).unwrap();
        std::fs::write(
            system.join("registries.conf"),
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"system.mirror\"\n\
             [[registry]]\nlocation = \"b.lan\"\nblocked = true\n",
        )
        .unwrap();
        std::fs::write(
            system.join("registries.conf.d/10-a.conf"),
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"dropin.mirror\"\n",
        )
        .unwrap();
        std::fs::write(
            system.join("registries.conf.d/20-b.conf"),
            "[[registry]]\nlocation = \"b.lan\"\n",
        )
        .unwrap();
        std::fs::write(system.join("registries.conf.d/ignored.txt"), "not toml [").unwrap();

        let loaded = Registries::from_dirs(Some(&home), &system).unwrap();
        assert_eq!(
            sources(&loaded, "a.lan/x", false),
            ["~dropin.mirror/x", "a.lan/x"]
        );
        assert_eq!(
            sources(&loaded, "b.lan/x", false),
            ["b.lan/x"],
            "the later table replaced the blocked one"
        );
        assert_eq!(loaded.files().len(), 3);

        std::fs::create_dir_all(home.join(".config/containers")).unwrap();
        std::fs::write(
            home.join(".config/containers/registries.conf"),
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"user.mirror\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(home.join(".config/containers/registries.conf.d")).unwrap();
        let loaded = Registries::from_dirs(Some(&home), &system).unwrap();
        assert_eq!(
            sources(&loaded, "a.lan/x", false),
            ["~user.mirror/x", "a.lan/x"]
        );
        assert_eq!(sources(&loaded, "b.lan/x", false), ["b.lan/x"]);

        std::fs::write(
            home.join(".config/containers/registries.conf.d/bad.conf"),
            "[[registry]]\n",
        )
        .unwrap();
        let message = Registries::from_dirs(Some(&home), &system)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("bad.conf") && message.contains("neither prefix nor location"),
            "{message}"
        );

        let nothing = Registries::from_dirs(None, &root.path().join("missing")).unwrap();
        assert!(nothing.is_empty());
    }
}
