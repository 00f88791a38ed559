//! Fuzz target `error_body`: the input is the body of a registry's error answer
//! (`{"errors":[{"code","message","detail"}]}` or anything else), read as tank-registry's
//! client reads it (`error_body_for_fuzzing`). It must not panic; `NAME_UNKNOWN` is found in
//! any case; and the errors a user sees display every message, escaped, with no control
//! character or bidirectional override. The checks are in
//! crates/tank-registry/tests/registry/error_body_invariants.rs, shared with the corpus
//! replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tank-registry/tests/registry/error_body_invariants.rs"]
mod error_body_invariants;

fuzz_target!(|data: &[u8]| {
    error_body_invariants::check(data);
});
