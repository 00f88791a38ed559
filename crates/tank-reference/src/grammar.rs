//! The reference grammar of Go's `distribution/reference`, written as matchers instead of
//! regular expressions, and Go's un-normalised `Parse` and `WithName` on top of them.
//!
//! Each `is_*` function matches the whole input (Go's "anchored" form):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain-and-port "/"] remote-name
//! domain-and-port  := host [":" port-number]
//! host             := domain-name | "[" [a-fA-F0-9:]+ "]"
//! domain-name      := domain-component ("." domain-component)*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! port-number      := [0-9]+
//! remote-name      := path-component ("/" path-component)*
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [\w][\w.-]{0,127}
//! digest           := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm        := [A-Za-z][A-Za-z0-9]* ([-_+.][A-Za-z][A-Za-z0-9]*)*
//! identifier       := [a-f0-9]{64}
//! ```
//!
//! Public only so the test tables ported from Go can check each production; not part of
//! the supported API. [`Reference`](crate::Reference) is the type to use.

use std::fmt;

use crate::digest::parse_digest_in;
use crate::reference::NAME_TOTAL_LENGTH_MAX;
use crate::{Digest, Error};

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*`
pub fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        // One run of alphanumerics.
        let start = i;
        while i < bytes.len() && is_lower_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // One separator: ".", "_", "__" or a run of "-".
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `path-component ("/" path-component)*`
pub fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
pub fn is_domain_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `domain-name | "[" [a-fA-F0-9:]+ "]"`
pub fn is_host(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    s.split('.').all(is_domain_component)
}

/// `host [":" [0-9]+]` (Go's `DomainRegexp`, anchored).
pub fn is_domain_and_port(s: &str) -> bool {
    // The port follows the last ':' after the closing bracket of an IPv6 host, if any.
    let host_end = s.rfind(']').map_or(0, |bracket| bracket + 1);
    match s[host_end..].rfind(':').map(|at| at + host_end) {
        Some(colon) => {
            let port = &s[colon + 1..];
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && is_host(&s[..colon])
        }
        None => is_host(s),
    }
}

/// Splits a name into its domain (when the first component is one) and remote name, as
/// Go's `anchoredNameRegexp` captures them; `None` when `s` is not a name.
///
/// The domain is optional and greedy: `a/b` is domain `a`, path `b`.
pub fn split_name(s: &str) -> Option<(Option<&str>, &str)> {
    if let Some((first, rest)) = s.split_once('/') {
        if is_domain_and_port(first) && is_remote_name(rest) {
            return Some((Some(first), rest));
        }
    }
    is_remote_name(s).then_some((None, s))
}

/// `[domain-and-port "/"] remote-name`
pub fn is_name(s: &str) -> bool {
    split_name(s).is_some()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.-]{0,127}`
pub fn is_tag(s: &str) -> bool {
    match s.as_bytes().split_first() {
        Some((first, rest)) => {
            is_word(*first)
                && rest.len() <= 127
                && rest.iter().all(|b| is_word(*b) || *b == b'.' || *b == b'-')
        }
        None => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`
pub fn is_digest_algorithm(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        if i >= bytes.len() || !bytes[i].is_ascii_alphabetic() {
            return false;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == bytes.len() {
            return true;
        }
        if !matches!(bytes[i], b'-' | b'_' | b'+' | b'.') {
            return false;
        }
        i += 1;
    }
}

/// `algorithm ":" [0-9a-fA-F]{32,}` (Go's `DigestRegexp`, anchored). This is only the
/// grammar: [`Digest`] then accepts sha256 and sha512 alone.
pub fn is_digest(s: &str) -> bool {
    match s.split_once(':') {
        Some((algorithm, hex)) => {
            is_digest_algorithm(algorithm)
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// `[a-f0-9]{64}`: an image ID, which cannot be used as a name.
pub fn is_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The parts of a whole reference, name, tag and digest text, as Go's `ReferenceRegexp`
/// captures them; `None` when `s` does not match.
pub fn split_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    // Names and tags hold no '@', so the first '@' starts the digest.
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            if !is_digest(digest) {
                return None;
            }
            (rest, Some(digest))
        }
        None => (s, None),
    };
    // A ':' after the last '/' can only start the tag: names hold ':' only in the domain,
    // which is always followed by '/'.
    let (name, tag) = split_tag(rest);
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return None;
        }
    }
    is_name(name).then_some((name, tag, digest))
}

/// Splits `name[:tag]` at the first ':' after the last '/'.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let last_slash = s.rfind('/').map_or(0, |at| at + 1);
    match s[last_slash..].find(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&s[..colon], Some(&s[colon + 1..]))
        }
        None => (s, None),
    }
}

/// A reference as Go's `Parse` returns it: not normalised, so the domain may be absent
/// (`ubuntu`) or something Docker would not take for a registry (`a/b` has domain `a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The domain (`host[:port]`), when the name starts with one.
    pub domain: Option<&'a str>,
    /// The remote name (path) after the domain.
    pub path: &'a str,
    /// The tag, when one was written.
    pub tag: Option<&'a str>,
    /// The digest, when one was written.
    pub digest: Option<Digest>,
}

impl Parsed<'_> {
    /// Go's `Name()`: the domain and path joined by `/`, or the path alone.
    pub fn name(&self) -> String {
        match self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.to_owned(),
        }
    }
}

impl fmt::Display for Parsed<'_> {
    /// Go's `String()`: `name[:tag][@digest]`, exactly what was parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Go's `Parse`: the grammar, the name length limit, then the digest.
///
/// # Errors
///
/// [`Error::NameEmpty`], [`Error::NameContainsUppercase`] (when the input would match if
/// lower-cased), [`Error::InvalidFormat`], [`Error::InvalidTag`],
/// [`Error::InvalidDigestFormat`], [`Error::NameTooLong`], or a digest error.
pub fn parse(input: &str) -> Result<Parsed<'_>, Error> {
    parse_as(input, input)
}

/// [`parse`] of `text`, with errors naming `input` (the text before normalisation).
pub(crate) fn parse_as<'a>(text: &'a str, input: &str) -> Result<Parsed<'a>, Error> {
    if text.is_empty() {
        return Err(Error::NameEmpty);
    }
    let Some((name, tag, digest)) = split_reference(text) else {
        let lower = text.to_lowercase();
        if lower != text {
            if let Some((lower_name, _, _)) = split_reference(&lower) {
                // Lower-casing keeps an ASCII text's byte offsets.
                let repository = if text.is_ascii() {
                    &text[..lower_name.len()]
                } else {
                    text
                };
                return Err(Error::NameContainsUppercase {
                    input: input.to_owned(),
                    repository: repository.to_owned(),
                });
            }
        }
        return Err(explain(text, input));
    };
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(Error::NameTooLong {
            input: input.to_owned(),
            length: name.len(),
            max: NAME_TOTAL_LENGTH_MAX,
        });
    }
    let (domain, path) = split_name(name).ok_or_else(|| explain(text, input))?;
    let digest = digest
        .map(|digest| parse_digest_in(digest, input))
        .transpose()?;
    Ok(Parsed {
        domain,
        path,
        tag,
        digest,
    })
}

/// Go's `WithName`: a name alone (no tag, no digest), its length checked first as in
/// distribution/reference v0.5.
///
/// # Errors
///
/// [`Error::NameTooLong`] when longer than 255 characters, else [`Error::InvalidFormat`]
/// when it is not a name.
pub fn with_name(input: &str) -> Result<(Option<&str>, &str), Error> {
    if input.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(Error::NameTooLong {
            input: input.to_owned(),
            length: input.len(),
            max: NAME_TOTAL_LENGTH_MAX,
        });
    }
    split_name(input).ok_or_else(|| {
        let tag_or_digest = || Error::InvalidFormat {
            input: input.to_owned(),
            reason: "a name holds no tag or digest".to_owned(),
        };
        if split_reference(input).is_some() {
            return tag_or_digest();
        }
        match explain(input, input) {
            error @ Error::InvalidFormat { .. } => error,
            _ => tag_or_digest(),
        }
    })
}

/// Whether the first component of a name is meant as a registry: Docker's test
/// (`.`, `:`, `localhost`, upper case), plus IPv6 brackets.
fn looks_like_registry(component: &str) -> bool {
    component.contains(['.', ':', '[', ']'])
        || component == "localhost"
        || component.bytes().any(|b| b.is_ascii_uppercase())
}

/// Names the leftmost part of `text` that breaks the grammar. Only called on texts that
/// [`split_reference`] rejected; errors name `input`.
fn explain(text: &str, input: &str) -> Error {
    let invalid = |reason: String| Error::InvalidFormat {
        input: input.to_owned(),
        reason,
    };
    // The registry, when the first component is one or can only be meant as one.
    let rest = match text.split_once('/') {
        Some((first, rest)) if is_domain_and_port(first) => rest,
        Some((first, _)) if looks_like_registry(first) && !is_path_component(first) => {
            return invalid(format!("registry {first:?} {}", registry_problem(first)));
        }
        _ => text,
    };
    if rest.split('/').any(|component| component.starts_with('[')) {
        return invalid("an [IPv6] registry must be followed by '/' and a repository".to_owned());
    }
    let (before_digest, digest) = match rest.split_once('@') {
        Some((before, digest)) => (before, Some(digest)),
        None => (rest, None),
    };
    let (path, tag) = split_tag(before_digest);
    if path.is_empty() || (path.ends_with('/') && (tag.is_some() || digest.is_some())) {
        return invalid(
            match (tag, digest) {
                (Some(_), _) => "no repository name before the ':' of the tag",
                (None, Some(_)) => "no repository name before the '@' of the digest",
                (None, None) => "the repository name is empty",
            }
            .to_owned(),
        );
    }
    for component in path.split('/') {
        if let Some(problem) = path_component_problem(component) {
            return invalid(problem);
        }
    }
    if let Some(tag) = tag {
        if let Some(reason) = tag_problem(tag) {
            return Error::InvalidTag {
                input: input.to_owned(),
                tag: tag.to_owned(),
                reason,
            };
        }
    }
    if let Some(digest) = digest {
        if let Some(reason) = digest_problem(digest) {
            return Error::InvalidDigestFormat {
                input: input.to_owned(),
                digest: digest.to_owned(),
                reason,
            };
        }
    }
    invalid("does not match NAME[:TAG][@DIGEST]".to_owned())
}

/// Why `s` is not `host[:port]`.
fn registry_problem(s: &str) -> String {
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
    {
        return format!("contains {bad:?}, which no host name or port may hold");
    }
    "is not a valid host name, [IPv6 address] or either with :PORT".to_owned()
}

/// Why `component` is not a path component, or `None` when it is one.
fn path_component_problem(component: &str) -> Option<String> {
    if component.is_empty() {
        return Some(
            "the repository path has an empty component (a leading, trailing or doubled '/')"
                .to_owned(),
        );
    }
    if is_path_component(component) {
        return None;
    }
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    Some(match component.chars().find(|c| !allowed(*c)) {
        Some(bad) => format!(
            "repository path component {component:?} contains {bad:?}; only lower-case letters, digits, '.', '_' and '-' are allowed"
        ),
        None => format!(
            "repository path component {component:?} must start and end with a letter or digit, with one '.', one or two '_', or any '-'s between them"
        ),
    })
}

/// Why `tag` is not a tag, or `None` when it is one.
pub(crate) fn tag_problem(tag: &str) -> Option<String> {
    let allowed = |b: u8| is_word(b) || b == b'.' || b == b'-';
    if tag.is_empty() {
        return Some("the tag after ':' is empty".to_owned());
    }
    if let Some(bad) = tag.chars().find(|c| !c.is_ascii() || !allowed(*c as u8)) {
        return Some(format!(
            "contains {bad:?}; only letters, digits, '_', '.' and '-' are allowed"
        ));
    }
    if !tag.bytes().next().is_some_and(is_word) {
        return Some("must start with a letter, digit or '_'".to_owned());
    }
    if tag.len() > 128 {
        return Some(format!("is {} characters long, more than 128", tag.len()));
    }
    None
}

/// Why `digest` does not match the digest grammar, or `None` when it does.
pub(crate) fn digest_problem(digest: &str) -> Option<String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Some("expected ALGORITHM:HEX".to_owned());
    };
    if !is_digest_algorithm(algorithm) {
        return Some(format!(
            "algorithm {algorithm:?} must be letters and digits, starting with a letter, in parts joined by '+', '.', '_' or '-'"
        ));
    }
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Some(format!("the hex part contains {bad:?}"));
    }
    if hex.len() < 32 {
        return Some(format!(
            "the hex part has {} characters, fewer than 32",
            hex.len()
        ));
    }
    None
}
