//! [`ErrorBody`]: a registry's error document (`{"errors":[{"code","message"}]}`), read
//! under a cap; the errors built from it: [`status_error`] and the 404 mapping to
//! `NameUnknown`, `ManifestUnknown` and `BlobUnknown`.

use reqwest::Response;
use tank_reference::Digest;
use tracing::debug;
use url::Url;

use crate::Error;
use crate::body::{self, ERROR_BODY_LIMIT, ReadFailure};
use crate::client::Target;
use crate::endpoint::redacted;
use crate::progress::Interrupted;

/// One entry of a registry's error document (`{"errors":[{"code","message"}]}`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryError {
    /// The error code as sent, e.g. `MANIFEST_INVALID`, `BLOB_UPLOAD_INVALID`, `DENIED`.
    pub code: String,
    /// The message, possibly empty.
    pub message: String,
}

/// What a 404 answered: a manifest (by tag or digest) or a blob.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Missing<'a> {
    Manifest(&'a str),
    Blob(&'a Digest),
}

/// The error for a 404 to a request for `missing` in `target`'s repository:
/// [`Error::NameUnknown`] when the registry's error body says `NAME_UNKNOWN`, else
/// [`Error::ManifestUnknown`] or [`Error::BlobUnknown`].
pub(crate) async fn not_found(
    target: &Target,
    response: &mut Response,
    missing: Missing<'_>,
) -> Error {
    let body = ErrorBody::read(response).await;
    let (registry, repository) = (target.registry.clone(), target.repository.clone());
    if body.has_code("NAME_UNKNOWN") {
        return Error::NameUnknown {
            registry,
            repository,
        };
    }
    match missing {
        Missing::Manifest(reference) => Error::ManifestUnknown {
            registry,
            repository,
            reference: reference.to_owned(),
        },
        Missing::Blob(digest) => Error::BlobUnknown {
            registry,
            repository,
            digest: digest.clone(),
        },
    }
}

/// An error status as [`Error::Status`], with the registry's error message from the body
/// (`attempts` made).
pub(crate) async fn status_error(url: &Url, response: &mut Response, attempts: u32) -> Error {
    let status = response.status().as_u16();
    let body = ErrorBody::read(response).await;
    Error::Status {
        url: redacted(url),
        status,
        message: body.describe(""),
        attempts,
    }
}

/// The registry's error document (`{"errors":[{"code","message"}]}`), as far as readable.
#[derive(Default)]
pub(crate) struct ErrorBody {
    errors: Vec<(String, String)>,
    /// Why the body was not read whole, when it was not (too long, stalled, broken).
    note: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl ErrorBody {
    /// Reads the body (at most [`ERROR_BODY_LIMIT`] bytes, under the progress rule and the
    /// document deadline) and parses it; a body that is not a registry error document gives
    /// no entries, one that could not be read whole a note saying why.
    pub(crate) async fn read(response: &mut Response) -> ErrorBody {
        let note = match body::read_document(response, ERROR_BODY_LIMIT).await {
            Ok(bytes) => return ErrorBody::parse(&bytes),
            Err(ReadFailure::TooLarge { .. }) => format!(
                "the error body was not read: it is larger than the {ERROR_BODY_LIMIT}-byte limit"
            ),
            Err(ReadFailure::Interrupted(Interrupted::Stalled(stall))) => {
                format!("the error body was not read: {stall}")
            }
            Err(ReadFailure::Interrupted(Interrupted::Transport(error))) => {
                format!("the error body was not read: {error}")
            }
        };
        debug!("{note}");
        ErrorBody {
            errors: Vec::new(),
            note: Some(note),
        }
    }

    pub(crate) fn parse(bytes: &[u8]) -> ErrorBody {
        let Ok(document) = serde_json::from_slice::<ErrorDocument>(bytes) else {
            return ErrorBody::default();
        };
        ErrorBody {
            errors: document
                .errors
                .into_iter()
                .map(|entry| (entry.code, entry.message))
                .collect(),
            note: None,
        }
    }

    /// The entries, as sent (or the note of a body that could not be read whole).
    pub(crate) fn entries(&self) -> Box<[RegistryError]> {
        if let (true, Some(note)) = (self.errors.is_empty(), &self.note) {
            return Box::new([RegistryError {
                code: String::new(),
                message: note.clone(),
            }]);
        }
        self.errors
            .iter()
            .map(|(code, message)| RegistryError {
                code: code.clone(),
                message: message.clone(),
            })
            .collect()
    }

    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.errors
            .iter()
            .any(|(found, _)| found.eq_ignore_ascii_case(code))
    }

    /// `CODE: message; CODE: message`, or `fallback` when the body held no errors (with the
    /// note of a body that could not be read whole).
    pub(crate) fn describe(&self, fallback: &str) -> String {
        if self.errors.is_empty() {
            return match (&self.note, fallback.is_empty()) {
                (Some(note), true) => note.clone(),
                (Some(note), false) => format!("{fallback} ({note})"),
                (None, _) => fallback.to_owned(),
            };
        }
        let listed: Vec<String> = self
            .errors
            .iter()
            .map(
                |(code, message)| match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{}: {}", code.to_ascii_lowercase(), message),
                    (false, true) => code.to_ascii_lowercase(),
                    _ => message.clone(),
                },
            )
            .collect();
        listed.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarised() {
        let body = ErrorBody::parse(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]},{"code":"DENIED","message":""}]}"#,
        );
        assert!(body.has_code("unauthorized"));
        assert!(!body.has_code("NAME_UNKNOWN"));
        assert_eq!(
            body.describe("x"),
            "unauthorized: authentication required; denied"
        );
        assert_eq!(
            ErrorBody::parse(b"<html>oops</html>").describe("fallback"),
            "fallback"
        );
        assert_eq!(ErrorBody::parse(br#"{"errors":[]}"#).describe(""), "");
    }
}
