//! What the `reference` fuzz target asserts about any input, shared with the corpus replay
//! test (fuzz_corpus.rs) through `#[path]`: parsing never panics, and whatever parses obeys
//! the grammar's limits and prints to text that parses back to the same reference.

use tank_reference::grammar;
use tank_reference::{AnyReference, DEFAULT_REGISTRY, Digest, NAME_TOTAL_LENGTH_MAX, Reference};

/// Checks every parser of the crate on `input`, panicking with the input and the broken
/// invariant. Returns whether `input` parsed as a [`Reference`].
pub(crate) fn check(input: &str) -> bool {
    if let Ok(digest) = input.parse::<Digest>() {
        check_digest(input, &digest);
    }
    let _ = grammar::parse(input);
    let parsed = input.parse::<Reference>();
    if let Ok(reference) = &parsed {
        check_reference(input, reference);
    }
    match Reference::parse_canonical(input) {
        Ok(canonical) => {
            assert_eq!(
                parsed.as_ref().ok(),
                Some(&canonical),
                "{input:?}: parse_canonical and parse disagree"
            );
            assert_eq!(
                canonical_text(&canonical),
                input,
                "{input:?}: parse_canonical accepted a non-canonical form"
            );
        }
        Err(_) => {
            if let Ok(reference) = &parsed {
                assert_ne!(
                    canonical_text(reference),
                    input,
                    "{input:?}: the canonical form is refused by parse_canonical"
                );
            }
        }
    }
    match input.parse::<AnyReference>() {
        Ok(AnyReference::Named(named)) => assert_eq!(
            parsed.as_ref().ok(),
            Some(&named),
            "{input:?}: AnyReference and Reference disagree"
        ),
        Ok(AnyReference::Digest(digest)) => check_digest(input, &digest),
        Err(_) => {}
    }
    parsed.is_ok()
}

/// The canonical text of `reference`: its name with the tag and digest written, no
/// `:latest` added (what [`Reference::parse_canonical`] accepts).
fn canonical_text(reference: &Reference) -> String {
    let mut text = reference.name();
    if let Some(tag) = reference.tag() {
        text.push(':');
        text.push_str(tag);
    }
    if let Some(digest) = reference.digest() {
        text.push('@');
        text.push_str(&digest.to_string());
    }
    text
}

fn check_digest(input: &str, digest: &Digest) {
    let hex = digest.hex();
    assert_eq!(
        hex.len(),
        digest.algorithm().hex_len(),
        "{input:?}: digest {digest} has the wrong length"
    );
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{input:?}: digest {digest} is not lower-case hex"
    );
    let text = digest.to_string();
    assert_eq!(
        text.parse::<Digest>().as_ref(),
        Ok(digest),
        "{input:?}: digest {text} does not parse back"
    );
}

fn reparse(input: &str, what: &str, text: &str) -> Reference {
    text.parse()
        .unwrap_or_else(|error| panic!("{input:?}: {what} {text:?} does not parse: {error}"))
}

fn check_reference(input: &str, reference: &Reference) {
    let registry = reference.registry();
    let repository = reference.repository();
    assert!(
        grammar::is_domain_and_port(registry),
        "{input:?}: registry {registry:?} is outside the grammar"
    );
    assert_ne!(
        registry, "index.docker.io",
        "{input:?}: the legacy Docker Hub name was not normalised"
    );
    assert!(
        grammar::is_remote_name(repository),
        "{input:?}: repository {repository:?} is outside the grammar"
    );
    if registry == DEFAULT_REGISTRY {
        assert!(
            repository.contains('/'),
            "{input:?}: Docker Hub repository {repository:?} lacks its namespace"
        );
    }
    let name = reference.name();
    assert!(
        name.len() <= NAME_TOTAL_LENGTH_MAX,
        "{input:?}: name {name:?} is longer than {NAME_TOTAL_LENGTH_MAX}"
    );
    assert!(
        !grammar::is_identifier(input),
        "{input:?}: a 64-hex identifier parsed as a name"
    );
    if let Some(tag) = reference.tag() {
        assert!(
            grammar::is_tag(tag),
            "{input:?}: tag {tag:?} is outside the grammar"
        );
    }
    if let Some(digest) = reference.digest() {
        check_digest(input, digest);
    }
    let selector = reference.manifest_selector();
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => assert_eq!(selector, digest.to_string(), "{input:?}"),
        (None, Some(tag)) => assert_eq!(selector, tag, "{input:?}"),
        (None, None) => assert_eq!(selector, "latest", "{input:?}"),
    }

    // Printed forms parse back: to the same reference, except that one with neither tag nor
    // digest comes back tagged `latest` (the printed forms say what will be fetched).
    let expected = if reference.tag().is_none() && reference.digest().is_none() {
        reference
            .with_tag("latest")
            .unwrap_or_else(|error| panic!("{input:?}: with_tag(latest): {error}"))
    } else {
        reference.clone()
    };
    let display = reference.to_string();
    let from_display = reparse(input, "Display", &display);
    assert_eq!(
        from_display, expected,
        "{input:?}: Display {display:?} parses to another reference"
    );
    assert_eq!(
        from_display.to_string(),
        display,
        "{input:?}: Display is not stable"
    );
    let familiar = reference.familiar();
    let from_familiar = reparse(input, "familiar()", &familiar);
    assert_eq!(
        from_familiar, expected,
        "{input:?}: familiar {familiar:?} parses to another reference"
    );
    assert_eq!(
        from_familiar.familiar(),
        familiar,
        "{input:?}: familiar() is not stable"
    );
    let familiar_name = reference.familiar_name();
    assert_eq!(
        reparse(input, "familiar_name()", &familiar_name),
        reference.without_tag_or_digest(),
        "{input:?}: familiar name {familiar_name:?} parses to another name"
    );
    let canonical = canonical_text(reference);
    let from_canonical = Reference::parse_canonical(&canonical).unwrap_or_else(|error| {
        panic!("{input:?}: canonical form {canonical:?} is refused: {error}")
    });
    assert_eq!(
        &from_canonical, reference,
        "{input:?}: canonical form {canonical:?} parses to another reference"
    );
    assert_eq!(
        reference.docker_ref().docker_ref(),
        reference.docker_ref(),
        "{input:?}: docker_ref is not idempotent"
    );
}
