//! What the `token_response` fuzz target asserts about any input, shared with the corpus
//! replay test (fuzz_corpus.rs) through `#[path]`.
//!
//! An input is the body of a token endpoint's `200` answer. Reading it
//! ([`tank_registry::token_response_for_fuzzing`]) never panics, received at any time
//! (the epoch, today, the far future near the end of `SystemTime`); the token is `token`,
//! else `access_token` (non-empty); and the token is used for at most 24 hours from when it
//! was received, and for at least 55 seconds (60 less the margin) when the answer does not
//! say it was issued earlier (and a day later is still a `SystemTime`).

use std::time::{Duration, SystemTime};

use tank_registry::token_response_for_fuzzing;

/// 24 hours less the 5-second margin: the longest a token is used.
const LONGEST: Duration = Duration::from_secs(24 * 60 * 60 - 5);
/// 60 seconds less the margin: the shortest a token received now is used.
const SHORTEST: Duration = Duration::from_secs(55);

/// The times an answer is read at.
fn moments() -> Vec<SystemTime> {
    let mut moments = vec![
        SystemTime::UNIX_EPOCH,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096),
    ];
    // Close to the largest SystemTime: adding a lifetime overflows there.
    for seconds in [i64::MAX as u64 - 100, 1 << 62, 253_402_300_799] {
        if let Some(late) = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds)) {
            moments.push(late);
        }
    }
    moments
}

/// Checks the invariants on `input`, panicking with the broken one. Returns the token, when
/// the answer parsed and held one.
pub(crate) fn check(input: &[u8]) -> Option<String> {
    // The oracle: serde_json's generic `Value`, read lossily. The client's typed parse skips
    // the fields it does not read without checking them (invalid UTF-8, a number beyond
    // f64: both found by the fuzzer); where the oracle cannot read an answer the client
    // could, only the bounds that need no oracle are checked.
    let json: Option<serde_json::Value> =
        serde_json::from_str(&String::from_utf8_lossy(input)).ok();
    let mut token = None;
    for now in moments() {
        let Ok((found, until)) = token_response_for_fuzzing(input, now) else {
            return None;
        };
        if let Some(latest) = now.checked_add(LONGEST) {
            assert!(until <= latest, "used past 24 hours: {until:?} for {now:?}");
        }
        token = found.clone();
        let Some(json) = json.as_ref() else {
            continue;
        };
        let stated_issue = json
            .get("issued_at")
            .is_some_and(serde_json::Value::is_string);
        // Where a day past `now` is beyond `SystemTime`, the token is used once only.
        let day_fits = now.checked_add(Duration::from_secs(24 * 60 * 60)).is_some();
        if !stated_issue && day_fits {
            if let Some(earliest) = now.checked_add(SHORTEST) {
                assert!(until >= earliest, "used under 55 s: {until:?} for {now:?}");
            }
        }
        let field = |name: &str| {
            json.get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        assert_eq!(found, field("token").or_else(|| field("access_token")));
    }
    token
}
