//! Reading `registries.conf`: the file as serde sees it (version 2 tables, version 1 lists),
//! checking prefixes and locations, the user/system file and its drop-ins, and merging them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tank_reference::grammar;

use super::{Mirror, PullFromMirror, Registries, RegistryRule};
use crate::Error;

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
    pub(super) fn from_dirs(home: Option<&Path>, system: &Path) -> Result<Registries, Error> {
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
                check_location(&location, "location")
                    .map_err(|error| at(message_without_path(error)))?;
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
                    .map_err(|error| at(message_without_path(error)))?;
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
pub(super) fn check_prefix(prefix: &str) -> Result<(), String> {
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
pub(super) fn check_location(location: &str, what: &str) -> Result<(), Error> {
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
fn message_without_path(error: Error) -> String {
    match error {
        Error::RegistriesConf { message, .. } => message,
        other => other.to_string(),
    }
}
