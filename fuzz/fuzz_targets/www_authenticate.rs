//! Fuzz target `www_authenticate`: the input, when UTF-8, is one `WWW-Authenticate` header
//! value for tank-registry's `parse_www_authenticate`. It must not panic; an error names the
//! header; a Bearer challenge has a non-blank realm; values hold no control characters; and
//! the challenges, written back into a header with quoted, escaped values, parse to the same
//! challenges. The checks are in crates/tank-registry/tests/registry/challenge_invariants.rs,
//! shared with the corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tank-registry/tests/registry/challenge_invariants.rs"]
mod challenge_invariants;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        challenge_invariants::check(header);
    }
});
