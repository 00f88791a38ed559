//! Property tests: references generated from the grammar parse to the parts they were
//! made of, and their printed forms (`Display`, `familiar()`) parse back to them.

use std::net::Ipv6Addr;

use proptest::prelude::*;
use tank_reference::{Algorithm, Digest, Error, Reference, grammar};

/// `[domain-and-port]`: names (upper case allowed), IPv4, IPv6 in brackets, `localhost`,
/// Docker Hub's names, each with or without a port.
fn registry() -> impl Strategy<Value = String> {
    let domain_name = prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", 1..4)
        .prop_map(|components| components.join("."));
    let ipv4 = any::<[u8; 4]>().prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"));
    // Groups are often zero, so that `::` compression shows up.
    let group = prop_oneof![Just(0u16), any::<u16>()];
    let ipv6 = prop::array::uniform8(group)
        .prop_map(|groups| Ipv6Addr::from(groups).to_string())
        .prop_filter("IPv4-mapped addresses are not in the grammar", |address| {
            !address.contains('.')
        })
        .prop_map(|address| format!("[{address}]"));
    let host = prop_oneof![
        4 => domain_name,
        2 => ipv4,
        2 => ipv6,
        1 => Just("localhost".to_owned()),
        1 => Just("docker.io".to_owned()),
        1 => Just("index.docker.io".to_owned()),
    ];
    (host, prop::option::of(0u32..70_000)).prop_map(|(host, port)| match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// `path-component ("/" path-component)*`
fn path() -> impl Strategy<Value = String> {
    let component = "[a-z0-9]{1,5}(([._]|__|-{1,3})[a-z0-9]{1,5}){0,2}";
    prop::collection::vec(component, 1..5).prop_map(|components| components.join("/"))
}

/// `[\w][\w.-]{0,127}`
fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
}

fn digest() -> impl Strategy<Value = Digest> {
    let algorithm = prop_oneof![Just(Algorithm::Sha256), Just(Algorithm::Sha512)];
    (algorithm, prop::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(algorithm, bytes)| Digest::of(algorithm, &bytes))
}

/// Docker's normalisation, restated: the registry and repository `name` means.
fn normalise(name: &str) -> (String, String) {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let path = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    (registry.to_owned(), path)
}

/// What parsing a printed form of `reference` must give: the same reference, tagged
/// `latest` when it had neither tag nor digest (the printed forms add `:latest`).
fn printed_back(reference: &Reference) -> Reference {
    if reference.tag().is_none() && reference.digest().is_none() {
        reference.with_tag("latest").expect("latest is a tag")
    } else {
        reference.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn valid_references_parse_and_print_back(
        registry in prop::option::of(registry()),
        path in path(),
        tag in prop::option::of(tag()),
        digest in prop::option::of(digest()),
    ) {
        let name = match &registry {
            Some(registry) => format!("{registry}/{path}"),
            None => path.clone(),
        };
        let mut input = name.clone();
        if let Some(tag) = &tag {
            input = format!("{input}:{tag}");
        }
        if let Some(digest) = &digest {
            input = format!("{input}@{digest}");
        }
        let (expected_registry, expected_repository) = normalise(&name);
        // Inputs the grammar generator can make but that are not references.
        if expected_registry.len() + 1 + expected_repository.len() > 255 {
            let error = input.parse::<Reference>().expect_err("over 255 characters");
            prop_assert!(matches!(error, Error::NameTooLong { .. }), "{}", error);
            return Ok(());
        }
        if !grammar::is_domain_and_port(&expected_registry) {
            // A path's first component with a '.' but no valid host (`a_b.c/d`): Go reads a
            // registry-less path, tank refuses it.
            let error = input.parse::<Reference>().expect_err("no valid registry");
            prop_assert!(matches!(error, Error::InvalidFormat { .. }), "{}", error);
            return Ok(());
        }

        let reference: Reference = input.parse().map_err(|e: Error| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(reference.registry(), expected_registry.as_str());
        prop_assert_eq!(reference.repository(), expected_repository.as_str());
        prop_assert_eq!(reference.tag(), tag.as_deref());
        prop_assert_eq!(reference.digest(), digest.as_ref());

        let expected_back = printed_back(&reference);
        let displayed = reference.to_string();
        // Display is the full name, then `:tag` and/or `@digest` (or `:latest`), nothing else.
        let name = format!("{}/{}", reference.registry(), reference.repository());
        prop_assert!(displayed.starts_with(&name), "{:?} starts with {:?}", displayed, name);
        prop_assert!(
            matches!(displayed.as_bytes().get(name.len()), Some(b':' | b'@')),
            "{:?}: the name is followed by ':' or '@'", displayed
        );
        let back: Reference = displayed.parse().map_err(|e: Error| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &expected_back, "Display {:?}", displayed);
        prop_assert_eq!(back.to_string(), displayed);

        let familiar = reference.familiar();
        let back: Reference = familiar.parse().map_err(|e: Error| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &expected_back, "familiar {:?}", familiar);
        prop_assert_eq!(back.familiar(), familiar);

        // Go's `ParseNamed` accepts exactly the canonical form.
        let mut canonical = reference.name();
        if let Some(tag) = reference.tag() {
            canonical = format!("{canonical}:{tag}");
        }
        if let Some(digest) = reference.digest() {
            canonical = format!("{canonical}@{digest}");
        }
        prop_assert_eq!(Reference::parse_canonical(&canonical), Ok(reference.clone()));
    }

    #[test]
    fn any_text_over_the_grammar_alphabet_parses_or_fails_cleanly(
        input in "[a-zA-Z0-9:/@._\\[\\]%~-]{0,60}",
    ) {
        match input.parse::<Reference>() {
            Ok(reference) => {
                let back: Reference = reference
                    .to_string()
                    .parse()
                    .map_err(|e: Error| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, printed_back(&reference));
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.contains(&format!("{input:?}")), "{}", message);
            }
        }
    }

    #[test]
    fn digests_print_and_parse_back(digest in digest()) {
        prop_assert_eq!(digest.to_string().parse::<Digest>(), Ok(digest.clone()));
        prop_assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
    }
}
