//! Image references, parsed and normalised as Go's `distribution/reference`
//! `ParseNormalizedNamed` does.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, Error, grammar};

/// The registry a name without one belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The old name of Docker Hub, accepted as an alias of [`DEFAULT_REGISTRY`].
pub const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`alpine` is `library/alpine`).
pub const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
/// The tag fetched when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest full name (registry and repository) accepted.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalised image reference: registry, repository, and an optional tag and digest.
///
/// Parsing ([`FromStr`]) follows `ParseNormalizedNamed`: a name without a registry is on
/// `docker.io`, a one-component Docker Hub name is in `library/`, `index.docker.io` means
/// `docker.io`.
///
/// "No tag" is kept apart from `latest`: [`Reference::tag`] is `None` when none was
/// written. [`Display`](fmt::Display) prints the full normalised form of what will be
/// fetched, so a reference with neither tag nor digest prints `:latest`
/// (`alpine` → `docker.io/library/alpine:latest`), and one with only a digest prints no tag.
/// [`Reference::familiar`] prints Docker's short form exactly as Go's `FamiliarString`.
///
/// ```
/// use tank_reference::Reference;
///
/// let alpine: Reference = "alpine".parse()?;
/// assert_eq!(alpine.to_string(), "docker.io/library/alpine:latest");
/// assert_eq!(alpine.tag(), None);
/// assert_eq!(alpine.familiar(), "alpine");
///
/// let local: Reference = "[::1]:5000/team/app:1.2".parse()?;
/// assert_eq!((local.registry(), local.repository(), local.tag()), ("[::1]:5000", "team/app", Some("1.2")));
/// # Ok::<(), tank_reference::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry host, with its port when given: `docker.io`, `127.0.0.1:5000`,
    /// `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry: `library/alpine`, `org/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The full name, registry and repository: `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag, when one was written (`None` is not `latest`: see
    /// [`Reference::manifest_selector`]).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when one was written.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for after `/manifests/`: the digest if there is one (it
    /// pins the content; a tag beside it is informational), else the tag, else `latest`.
    pub fn manifest_selector(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The short name Docker shows (Go's `FamiliarName`): `alpine`, `org/app`,
    /// `ghcr.io/org/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_REPOSITORY_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The short form Docker shows (Go's `FamiliarString`): the familiar name with the tag
    /// and digest that were written: `alpine`, `alpine:3.20`, `ghcr.io/org/app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.push_tag_and_digest(&mut out);
        out
    }

    /// The same name and digest with another tag.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTag`] when `tag` does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        if !grammar::is_tag(tag) {
            return Err(Error::InvalidTag {
                tag: tag.to_owned(),
                reason: if tag.len() > 128 {
                    "longer than 128 characters"
                } else {
                    "may hold only letters, digits, '_', '.' and '-', and not start with '.' or '-'"
                },
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same name and tag, pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same name without tag or digest.
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    fn push_tag_and_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_tag_and_digest(&mut out);
        if self.tag.is_none() && self.digest.is_none() {
            out.push(':');
            out.push_str(DEFAULT_TAG);
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reference")
            .field("registry", &self.registry)
            .field("repository", &self.repository)
            .field("tag", &self.tag)
            .field("digest", &self.digest)
            .finish()
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Reference, Error> {
        parse_normalized_named(input)
    }
}

/// Go's `splitDockerDomain`: the registry and the rest, with Docker Hub's defaults applied.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    };
    let domain = if domain == LEGACY_DEFAULT_REGISTRY {
        DEFAULT_REGISTRY
    } else {
        domain
    };
    let remainder = if domain == DEFAULT_REGISTRY && !remainder.contains('/') {
        format!("{OFFICIAL_REPOSITORY_PREFIX}{remainder}")
    } else {
        remainder.to_owned()
    };
    (domain, remainder)
}

/// Go's `ParseNormalizedNamed`, with errors that name the input given.
fn parse_normalized_named(input: &str) -> Result<Reference, Error> {
    if grammar::is_identifier(input) {
        return Err(Error::NameIsIdentifier {
            input: input.to_owned(),
        });
    }
    let (domain, remainder) = split_docker_domain(input);
    let remote_name = match remainder.find(':') {
        Some(colon) => &remainder[..colon],
        None => &remainder,
    };
    if remote_name.to_lowercase() != remote_name {
        return Err(Error::NameContainsUppercase {
            input: input.to_owned(),
            repository: remote_name.to_owned(),
        });
    }
    parse(input, &format!("{domain}/{remainder}"))
}

/// Go's `Parse` of the normalised text `full`; errors name `input`.
fn parse(input: &str, full: &str) -> Result<Reference, Error> {
    let Some((name, tag, digest)) = grammar::split_reference(full) else {
        if input.is_empty() {
            return Err(Error::NameEmpty);
        }
        if grammar::split_reference(&full.to_lowercase()).is_some() {
            return Err(Error::NameContainsUppercase {
                input: input.to_owned(),
                repository: full.to_owned(),
            });
        }
        return Err(Error::InvalidFormat {
            input: input.to_owned(),
            reason: grammar::diagnose(full),
        });
    };
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(Error::NameTooLong {
            input: input.to_owned(),
            length: name.len(),
            max: NAME_TOTAL_LENGTH_MAX,
        });
    }
    let (registry, repository) = match grammar::split_name(name) {
        Some((Some(registry), repository)) => (registry, repository),
        // The normalised text always starts with a registry; keep the error honest anyway.
        _ => {
            return Err(Error::InvalidFormat {
                input: input.to_owned(),
                reason: "no registry could be told from the name".to_owned(),
            });
        }
    };
    let digest = digest.map(str::parse::<Digest>).transpose()?;
    Ok(Reference {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_defaults() {
        let r: Reference = "alpine".parse().unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/alpine");
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.manifest_selector(), "latest");
        let r: Reference = "index.docker.io/foo/bar:1".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/foo/bar:1");
        assert_eq!(r.familiar(), "foo/bar:1");
    }
}
