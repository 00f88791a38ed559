//! What the `error_body` fuzz target asserts about any input, shared with the corpus
//! replay test (fuzz_corpus.rs) through `#[path]`.
//!
//! An input is the body of a registry's error answer. Reading it
//! ([`tank_registry::error_body_for_fuzzing`]) never panics; `NAME_UNKNOWN` is found in any
//! letter case; and the errors built from it (a pull's status error, a refused access, a
//! refused push) display every code and message, escaped, with no control character, DEL,
//! C1 control, bidirectional override or line separator reaching the terminal.

use tank_registry::error_body_for_fuzzing;
use tank_registry::printable::escape;

/// The characters of `text` a terminal would act on. Written here, not taken from the
/// crate, so that the target judges the crate.
pub(crate) fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| {
            matches!(c,
                '\u{0}'..='\u{1f}'
                | '\u{7f}'..='\u{9f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// Checks the invariants on `input`, panicking with the broken one. Returns how many
/// entries the body held.
pub(crate) fn check(input: &[u8]) -> usize {
    let (entries, name_unknown, errors) = error_body_for_fuzzing(input);
    assert_eq!(
        name_unknown,
        entries
            .iter()
            .any(|entry| entry.code.eq_ignore_ascii_case("NAME_UNKNOWN"))
    );
    for error in &errors {
        let shown = error.to_string();
        let found = unsafe_chars(&shown);
        assert!(
            found.is_empty(),
            "{found:?} reach the terminal in {shown:?}"
        );
        for entry in entries.iter() {
            if !entry.message.is_empty() {
                let message = escape(&entry.message);
                assert!(
                    shown.contains(&*message),
                    "{message:?} missing from {shown:?}"
                );
            }
        }
    }
    entries.len()
}
