//! The reference grammar of Go's `distribution/reference`, written as matchers instead of
//! regular expressions. Each function matches the whole input (the "anchored" form).
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain-and-port "/"] remote-name
//! domain-and-port := host [":" port-number]
//! host            := domain-name | "[" [a-fA-F0-9:]+ "]"
//! domain-name     := domain-component ("." domain-component)*
//! domain-component:= [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! remote-name     := path-component ("/" path-component)*
//! path-component  := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator       := "." | "_" | "__" | "-"+
//! tag             := [\w][\w.-]{0,127}
//! digest          := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm       := [A-Za-z][A-Za-z0-9]* ([-_+.][A-Za-z][A-Za-z0-9]*)*
//! identifier      := [a-f0-9]{64}
//! ```
//!
//! Public only so the test tables ported from Go can check each production; not part of
//! the supported API.

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

/// `host [":" [0-9]+]` (Go's `DomainRegexp`).
pub fn is_domain_and_port(s: &str) -> bool {
    // The port follows the last ':' outside brackets.
    let host_end = match s.rfind(']') {
        Some(bracket) => bracket + 1,
        None => 0,
    };
    match s[host_end..].rfind(':').map(|at| at + host_end) {
        Some(colon) => {
            let port = &s[colon + 1..];
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && is_host(&s[..colon])
        }
        None => is_host(s),
    }
}

/// Splits a name into its domain (when the first component is one) and remote name, as
/// Go's anchored name expression does; `None` when it is not a name.
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

/// `[\w][\w.-]{0,127}`
pub fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            word(*first)
                && rest.len() <= 127
                && rest.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
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

/// `algorithm ":" [0-9a-fA-F]{32,}`
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

/// The parts of a whole reference: name, tag and digest text, as Go's `ReferenceRegexp`
/// captures them; `None` when it does not match.
pub fn split_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
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
    let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            let tag = &rest[colon + 1..];
            if !is_tag(tag) {
                return None;
            }
            (&rest[..colon], Some(tag))
        }
        None => (rest, None),
    };
    is_name(name).then_some((name, tag, digest))
}

/// Names the first part of `s` that breaks the grammar, for error messages. Only called on
/// inputs that [`split_reference`] rejected.
pub(crate) fn diagnose(s: &str) -> String {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        if !is_digest(digest) {
            return format!(
                "digest {digest:?} is not ALGORITHM:HEX with 32 or more hex characters"
            );
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
    let name = match rest[last_slash..].find(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            let tag = &rest[colon + 1..];
            if !is_tag(tag) {
                return if tag.len() > 128 {
                    format!("tag is {} characters long, more than 128", tag.len())
                } else {
                    format!(
                        "tag {tag:?} may hold only letters, digits, '_', '.' and '-', and not start with '.' or '-'"
                    )
                };
            }
            &rest[..colon]
        }
        None => rest,
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if is_domain_and_port(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(domain) = domain {
        if !is_domain_and_port(domain) {
            return format!("registry {domain:?} is not a valid host[:port]");
        }
    }
    for component in path.split('/') {
        if component.is_empty() {
            return "repository path has an empty component".to_owned();
        }
        if !is_path_component(component) {
            return format!(
                "repository path component {component:?} may hold only lower-case letters, digits and single separators ('.', '_', '__', '-')"
            );
        }
    }
    "does not match NAME[:TAG][@DIGEST]".to_owned()
}
