//! Image references, parsed and normalised as Go's `distribution/reference`
//! `ParseNormalizedNamed` does.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, Error, grammar, pattern};

/// The registry a name without one belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The old name of Docker Hub, accepted as an alias of [`DEFAULT_REGISTRY`].
pub const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`alpine` is `library/alpine`).
pub const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
/// The tag fetched when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest full name accepted, counted on the normalised name with its registry
/// (`docker.io/library/alpine` is 24 characters).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalised image reference: registry, repository, and an optional tag and digest.
///
/// Parsing ([`FromStr`]) is Go's `ParseNormalizedNamed`: a name without a registry is on
/// `docker.io`, a one-component Docker Hub name is in `library/`, and `index.docker.io`
/// means `docker.io`. A first component is a registry when it holds a `.` or a `:`, is
/// `localhost`, or holds an upper-case letter; otherwise it is part of a Docker Hub path.
///
/// "No tag" is kept apart from `latest`: [`Reference::tag`] is `None` when none was
/// written. The printed forms say what will be fetched:
///
/// - [`Display`](fmt::Display) prints the full normalised form: the name, `:tag` when a
///   tag was given, `@digest` when a digest was given, and `:latest` when neither was
///   (`alpine` → `docker.io/library/alpine:latest`). A reference with only a digest prints
///   no tag.
/// - [`Reference::familiar`] prints Docker's short form (Go's `FamiliarString`, which drops
///   `docker.io/` and `library/`) with the same rule for `:latest`.
///
/// So parsing a printed reference gives back an equal one, except that one with neither
/// tag nor digest comes back tagged `latest`; printing that again gives the same text.
///
/// ```
/// use tank_reference::Reference;
///
/// let alpine: Reference = "alpine".parse()?;
/// assert_eq!(alpine.to_string(), "docker.io/library/alpine:latest");
/// assert_eq!(alpine.tag(), None);
/// assert_eq!(alpine.familiar(), "alpine:latest");
/// assert_eq!(alpine.manifest_selector(), "latest");
///
/// let local: Reference = "[::1]:5000/team/app:1.2".parse()?;
/// assert_eq!(local.registry(), "[::1]:5000");
/// assert_eq!(local.repository(), "team/app");
/// assert_eq!(local.tag(), Some("1.2"));
/// assert_eq!(local.familiar(), "[::1]:5000/team/app:1.2");
///
/// let error = "Team/App".parse::<Reference>().unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     r#"invalid reference "Team/App": repository name "App" must be lowercase"#
/// );
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
    /// `[::1]:5000`, `localhost`.
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

    /// The tag, when one was written. `None` is not `latest`: see
    /// [`Reference::manifest_selector`].
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
    /// `ghcr.io/org/app`. `docker.io/` is dropped, and `library/` too when one component
    /// follows it. Unlike Go, `docker.io/` is kept when the name would otherwise start with
    /// what Docker takes for a registry (`docker.io/example.com/app`, `docker.io/localhost/app`),
    /// and `library/` is kept before a 64-character hex name (which alone is an image ID), so
    /// the short name always parses back to the same reference.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        match self.repository.strip_prefix(OFFICIAL_REPOSITORY_PREFIX) {
            // A 64-character hex name alone would read as an image ID, so it keeps `library/`.
            Some(rest) if !rest.contains('/') && !grammar::is_identifier(rest) => rest.to_owned(),
            // Go drops `docker.io/` here even when the first component would then be read
            // as a registry (`docker.io/example.com/app`); keep it so the short form
            // means the same reference.
            _ if takes_for_registry(&self.repository) => self.name(),
            _ => self.repository.clone(),
        }
    }

    /// The short form Docker shows: the [familiar name](Reference::familiar_name) with the
    /// tag and digest that were written, or `:latest` when neither was (`alpine:latest`,
    /// `org/app:1.2`, `ghcr.io/org/app@sha256:…`). Go's `FamiliarString` prints no
    /// `:latest`; this crate adds it as [`Display`](fmt::Display) does.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.push_tag_and_digest(&mut out, true);
        out
    }

    /// Whether the reference matches a shell pattern the way Docker filters images (Go's
    /// `FamiliarMatch`): `pattern` is matched against the familiar form as Go prints it
    /// (`alpine`, `alpine:3.20`, with no `:latest` added), then against the familiar name.
    /// Patterns are Go's `path.Match`: `*` and `?` never match `/`, `[a-z]` and `[^a-z]`
    /// are classes, `\` escapes.
    ///
    /// ```
    /// use tank_reference::Reference;
    ///
    /// let reference: Reference = "example.com/team/app:1.2".parse()?;
    /// assert!(reference.familiar_match("example.com/*/app")?);
    /// assert!(!reference.familiar_match("*/app")?);
    /// # Ok::<(), tank_reference::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPattern`] when `pattern` is malformed, whatever it is matched
    /// against.
    pub fn familiar_match(&self, pattern: &str) -> Result<bool, Error> {
        let pattern = pattern::Pattern::new(pattern)?;
        let mut familiar = self.familiar_name();
        self.push_tag_and_digest(&mut familiar, false);
        Ok(pattern.matches(&familiar) || pattern.matches(&self.familiar_name()))
    }

    /// The same name and digest with another tag (Go's `WithTag`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTag`] when `tag` does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        if let Some(reason) = grammar::tag_problem(tag) {
            return Err(Error::InvalidTag {
                input: format!("{}:{tag}", self.name()),
                tag: tag.to_owned(),
                reason,
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same name and tag, pinned to `digest` (Go's `WithDigest`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same name without tag or digest (Go's `TrimNamed`).
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The form Docker records an image under (Go's `ParseDockerRef`): a reference with a
    /// digest loses its tag, one with neither tag nor digest is tagged `latest`, any other
    /// is unchanged.
    pub fn docker_ref(&self) -> Reference {
        match (&self.tag, &self.digest) {
            (Some(_), Some(_)) => Reference {
                tag: None,
                ..self.clone()
            },
            (None, None) => Reference {
                tag: Some(DEFAULT_TAG.to_owned()),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }

    /// Parses a reference that must already be in its canonical, full normalised form, as
    /// Go's `ParseNamed` does: `docker.io/library/alpine` and `ghcr.io/org/app:1` are
    /// canonical; `alpine`, `library/alpine` and `docker.io/alpine` are not. (A reference
    /// without tag or digest is canonical without `:latest`.)
    ///
    /// # Errors
    ///
    /// Any error of [`FromStr`], then [`Error::NameNotCanonical`] with the canonical form.
    pub fn parse_canonical(input: &str) -> Result<Reference, Error> {
        let reference: Reference = input.parse()?;
        let mut canonical = reference.name();
        reference.push_tag_and_digest(&mut canonical, false);
        if canonical != input {
            return Err(Error::NameNotCanonical {
                input: input.to_owned(),
                canonical,
            });
        }
        Ok(reference)
    }

    /// Appends `:tag` and `@digest` as held, and `:latest` when neither is held and
    /// `default_tag` is set.
    fn push_tag_and_digest(&self, out: &mut String, default_tag: bool) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        if default_tag && self.tag.is_none() && self.digest.is_none() {
            out.push(':');
            out.push_str(DEFAULT_TAG);
        }
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/alpine:latest`,
    /// `ghcr.io/org/app:1.2@sha256:…`, `[::1]:5000/app@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_tag_and_digest(&mut out, true);
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

    /// Go's `ParseNormalizedNamed`.
    ///
    /// # Errors
    ///
    /// [`Error::NameIsIdentifier`] for a bare 64-character hex string,
    /// [`Error::NameContainsUppercase`], [`Error::NameEmpty`], [`Error::InvalidFormat`]
    /// (naming the registry or path component at fault), [`Error::InvalidTag`],
    /// [`Error::NameTooLong`], or a digest error ([`Error::InvalidDigestFormat`],
    /// [`Error::UnsupportedDigestAlgorithm`], [`Error::InvalidDigestLength`]).
    fn from_str(input: &str) -> Result<Reference, Error> {
        parse_normalized_named(input)
    }
}

/// Either a named reference or a bare digest, as Go's `ParseAnyReference` tells them
/// apart: a 64-character hex string is a sha256 image ID, a valid digest is a digest,
/// anything else is parsed as a [`Reference`].
///
/// ```
/// use tank_reference::AnyReference;
///
/// let id: AnyReference = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c".parse()?;
/// assert!(matches!(id, AnyReference::Digest(_)));
/// let named: AnyReference = "redis".parse()?;
/// assert_eq!(named.to_string(), "docker.io/library/redis:latest");
/// # Ok::<(), tank_reference::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A reference with a name.
    Named(Reference),
    /// A digest alone (an image ID or content address).
    Digest(Digest),
}

impl FromStr for AnyReference {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::UnsupportedDigestAlgorithm`] for a digest of an algorithm go-digest knows
    /// but tank does not (sha384), where Go would return a digest; otherwise any error of
    /// [`Reference::from_str`].
    fn from_str(input: &str) -> Result<AnyReference, Error> {
        if grammar::is_identifier(input) {
            let digest = format!("sha256:{input}").parse()?;
            return Ok(AnyReference::Digest(digest));
        }
        match input.parse::<Digest>() {
            Ok(digest) => return Ok(AnyReference::Digest(digest)),
            // go-digest knows sha384 and would return a digest here.
            Err(error @ Error::UnsupportedDigestAlgorithm { .. }) if is_go_sha384(input) => {
                return Err(error);
            }
            Err(_) => {}
        }
        input.parse().map(AnyReference::Named)
    }
}

impl fmt::Display for AnyReference {
    /// The reference's or the digest's own form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyReference::Named(reference) => reference.fmt(f),
            AnyReference::Digest(digest) => digest.fmt(f),
        }
    }
}

/// Whether go-digest would parse `input` as a sha384 digest.
fn is_go_sha384(input: &str) -> bool {
    input.strip_prefix("sha384:").is_some_and(|hex| {
        hex.len() == 96
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether Docker takes the first component of `name` for a registry: it is followed by
/// `/` and holds a `.` or `:`, is `localhost`, or holds an upper-case letter.
fn takes_for_registry(name: &str) -> bool {
    name.split_once('/').is_some_and(|(first, _)| {
        first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
    })
}

/// Go's `splitDockerDomain`: the registry and the rest, with Docker Hub's defaults applied.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest)) if takes_for_registry(name) => (first, rest),
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
    // Go normalises "" to "docker.io/library/" and calls that an invalid format; saying
    // that the name is empty is clearer.
    if input.is_empty() {
        return Err(Error::NameEmpty);
    }
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
    let full = format!("{domain}/{remainder}");
    let parsed = grammar::parse_as(&full, input)?;
    // Go accepts a first component that fails the host grammar as part of a domain-less
    // path (`foo_bar.com/app`); tank needs a registry, so it refuses that.
    let Some(registry) = parsed.domain else {
        return Err(Error::InvalidFormat {
            input: input.to_owned(),
            reason: format!(
                "registry {domain:?} is not a valid host name, [IPv6 address] or either with :PORT"
            ),
        });
    };
    Ok(Reference {
        registry: registry.to_owned(),
        repository: parsed.path.to_owned(),
        tag: parsed.tag.map(str::to_owned),
        digest: parsed.digest,
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

    #[test]
    fn a_hex_official_name_keeps_library_in_its_familiar_form() {
        // Found by the `reference` fuzz target: `docker.io/<64 hex>` parses (as in Go), but
        // its familiar name without `library/` is an image ID, which no reference parses from.
        let hex = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        let r: Reference = format!("docker.io/{hex}").parse().unwrap();
        assert_eq!(r.repository(), format!("library/{hex}"));
        assert_eq!(r.familiar_name(), format!("library/{hex}"));
        assert_eq!(r.familiar(), format!("library/{hex}:latest"));
        assert_eq!(r.familiar_name().parse::<Reference>().unwrap(), r);
        // A shorter hex name is no image ID and loses `library/` as usual.
        let r: Reference = "docker.io/1a3f5e7d".parse().unwrap();
        assert_eq!(r.familiar_name(), "1a3f5e7d");
    }

    #[test]
    fn a_first_component_that_is_no_host_is_refused() {
        // Go parses this as the domain-less path "foo_bar.com/app".
        let error = "foo_bar.com/app".parse::<Reference>().unwrap_err();
        assert!(
            matches!(&error, Error::InvalidFormat { reason, .. } if reason.contains("registry \"foo_bar.com\"")),
            "{error}"
        );
        assert!("foo-bar.com/app".parse::<Reference>().is_ok());
    }
}
