//! Resolving a reference against the rules: the matching rule, and the sources of one request
//! (mirrors in order, then the primary location, with the matched prefix rewritten).

use std::collections::HashSet;

use tank_reference::Reference;

use super::{PullFromMirror, Registries, RegistryRule, Source};
use crate::Error;

impl Registries {
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
