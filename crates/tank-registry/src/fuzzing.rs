//! Entry points for the fuzz targets (fuzz/fuzz_targets/) and their corpus replay tests:
//! what the client does with a token endpoint's answer and with a registry's error body,
//! without a network. Not part of the API: hidden from the docs, may change at any time.

use std::time::SystemTime;

use crate::auth::TokenResponse;
use crate::client::ErrorBody;
use crate::{Error, RegistryError};

/// What the client takes from a token endpoint's `200` answer received at `now`: the token
/// (`None` when the answer has none) and until when it is used.
#[doc(hidden)]
pub fn token_response_for_fuzzing(
    body: &[u8],
    now: SystemTime,
) -> Result<(Option<String>, SystemTime), serde_json::Error> {
    let answer: TokenResponse = serde_json::from_slice(body)?;
    Ok((answer.token().map(str::to_owned), answer.usable_until(now)))
}

/// A registry's error body as the client reads it: its entries, whether it names
/// `NAME_UNKNOWN`, and the errors built from it that a user sees (a status error of a pull,
/// a refused access, a refused push).
#[doc(hidden)]
pub fn error_body_for_fuzzing(body: &[u8]) -> (Box<[RegistryError]>, bool, Vec<Error>) {
    let parsed = ErrorBody::parse(body);
    let errors = vec![
        Error::Status {
            url: "https://fuzz.invalid/v2/fuzz/manifests/fuzz".to_owned(),
            status: 500,
            message: parsed.describe(""),
            attempts: 1,
        },
        Error::Unauthorized {
            registry: "fuzz.invalid".to_owned(),
            repository: "fuzz".to_owned(),
            message: parsed.describe("the registry refused"),
        },
        Error::PushRejected {
            registry: "fuzz.invalid".to_owned(),
            repository: "fuzz".to_owned(),
            what: "manifest fuzz".to_owned(),
            url: "https://fuzz.invalid/v2/fuzz/manifests/fuzz".to_owned(),
            status: 400,
            errors: parsed.entries(),
            attempts: 1,
        },
    ];
    (parsed.entries(), parsed.has_code("NAME_UNKNOWN"), errors)
}
