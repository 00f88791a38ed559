//! Fuzz target `reference`: the input, when UTF-8, goes through every parser of
//! tank-reference (`Reference` from text and canonical text, `AnyReference`, `Digest`, the
//! grammar). None may panic, and what parses must obey the grammar's limits and print to
//! forms (`Display`, `familiar()`, the canonical text) that parse back to the same
//! reference: the checks in crates/tank-reference/tests/reference/fuzz_invariants.rs,
//! shared with the corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tank-reference/tests/reference/fuzz_invariants.rs"]
mod fuzz_invariants;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        fuzz_invariants::check(input);
    }
});
