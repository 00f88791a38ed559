//! What the `www_authenticate` fuzz target asserts about any input, shared with the corpus
//! replay test (fuzz_corpus.rs) through `#[path]`: parsing never panics; an error names the
//! header; a Bearer challenge has a non-blank realm; values hold no control character but
//! tab; and the challenges, written back into a header with every value quoted and escaped
//! ([`render`]), parse to the same challenges.

use tank_registry::{Challenge, Error, parse_www_authenticate};

/// Writes `challenges` as one `WWW-Authenticate` value, every parameter a quoted-string.
pub(crate) fn render(challenges: &[Challenge]) -> String {
    let mut out = Vec::new();
    for challenge in challenges {
        let (scheme, params) = match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => (
                "Bearer",
                vec![
                    ("realm", Some(realm)),
                    ("service", service.as_ref()),
                    ("scope", scope.as_ref()),
                ],
            ),
            Challenge::Basic { realm } => ("Basic", vec![("realm", realm.as_ref())]),
            other => panic!("a challenge this renderer does not know: {other:?}"),
        };
        let params: Vec<String> = params
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| format!("{name}={}", quote(value))))
            .collect();
        if params.is_empty() {
            out.push(scheme.to_owned());
        } else {
            out.push(format!("{scheme} {}", params.join(",")));
        }
    }
    out.join(", ")
}

/// `value` as an RFC 9110 quoted-string.
fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn check_value(header: &str, name: &str, value: &str) {
    assert!(
        !value.chars().any(|c| c.is_ascii_control() && c != '\t'),
        "{header:?}: {name} {value:?} holds a control character"
    );
}

/// Checks the invariants on `header`, panicking with the broken one. Returns the number of
/// challenges parsed, or `None` when the header was refused.
pub(crate) fn check(header: &str) -> Option<usize> {
    let challenges = match parse_www_authenticate(header) {
        Ok(challenges) => challenges,
        Err(Error::Challenge {
            header: named,
            reason,
        }) => {
            assert_eq!(named, header, "the error names another header");
            assert!(!reason.is_empty(), "{header:?}: refused without a reason");
            return None;
        }
        Err(other) => panic!("{header:?}: unexpected error {other:?}"),
    };
    for challenge in &challenges {
        match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                assert!(!realm.trim().is_empty(), "{header:?}: blank realm");
                check_value(header, "realm", realm);
                if let Some(service) = service {
                    check_value(header, "service", service);
                }
                if let Some(scope) = scope {
                    check_value(header, "scope", scope);
                    let scopes = challenge.scopes();
                    assert!(
                        scopes
                            .iter()
                            .all(|part| !part.is_empty() && !part.contains([' ', '\t'])),
                        "{header:?}: scopes {scopes:?}"
                    );
                    assert_eq!(
                        scopes,
                        scope.split_ascii_whitespace().collect::<Vec<_>>(),
                        "{header:?}"
                    );
                }
            }
            Challenge::Basic { realm } => {
                if let Some(realm) = realm {
                    check_value(header, "realm", realm);
                }
                assert!(
                    challenge.scopes().is_empty(),
                    "{header:?}: Basic has scopes"
                );
            }
            other => panic!("{header:?}: unknown challenge {other:?}"),
        }
    }
    if !challenges.is_empty() {
        let rendered = render(&challenges);
        match parse_www_authenticate(&rendered) {
            Ok(again) => assert_eq!(
                again, challenges,
                "{header:?}: written back as {rendered:?}, parses to other challenges"
            ),
            Err(error) => {
                panic!("{header:?}: written back as {rendered:?}, is refused: {error}")
            }
        }
    }
    Some(challenges.len())
}
