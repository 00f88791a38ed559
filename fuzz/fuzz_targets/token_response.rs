//! Fuzz target `token_response`: the input is the body of a token endpoint's `200` answer,
//! read as tank-registry's client reads it (`token_response_for_fuzzing`) at several times
//! (the epoch, today, near the end of `SystemTime`). It must not panic (an `expires_in` of
//! `1e19` once did); the token is `token`, else `access_token`; a token is used for at most
//! 24 hours, and for at least 55 seconds unless the answer says it was issued earlier. The
//! checks are in crates/tank-registry/tests/registry/token_invariants.rs, shared with the
//! corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tank-registry/tests/registry/token_invariants.rs"]
mod token_invariants;

fuzz_target!(|data: &[u8]| {
    token_invariants::check(data);
});
