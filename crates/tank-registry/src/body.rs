//! The one reader of response bodies that tank buffers in memory (manifests and indexes,
//! token answers, registry error bodies): capped while streaming, whatever `Content-Length`
//! says or does not say, and bound by the progress rule and the document deadline of
//! [`crate::progress`]. Blob bodies stream to a sink instead ([`crate::download`]), with their
//! own size checks and the same progress rule.

use std::fmt;

use reqwest::Response;

use crate::Error;
use crate::client::content_length;
use crate::progress::{Interrupted, Rules};

/// The most bytes of a token endpoint's answer that are read: 1 MiB (real answers hold a
/// token of a few KiB).
pub const TOKEN_LIMIT: u64 = 1024 * 1024;

/// The most bytes of a registry's error body that are read: 64 KiB (an error document holds a
/// few codes and messages). A longer body is not read; the error names the status with a note.
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// A kind of document read into memory, as errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Document {
    /// An image manifest or index (cap: 4 MiB).
    Manifest,
    /// A token endpoint's answer (cap: [`TOKEN_LIMIT`]).
    TokenResponse,
    /// A registry's error body (cap: [`ERROR_BODY_LIMIT`]).
    ErrorBody,
}

impl fmt::Display for Document {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Document::Manifest => "manifest",
            Document::TokenResponse => "token response",
            Document::ErrorBody => "error body",
        })
    }
}

/// Why a document could not be read whole.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// It passed the cap (announced in `Content-Length`, or while streaming).
    TooLarge { announced: Option<u64> },
    /// The connection failed or stalled.
    Interrupted(Interrupted),
}

impl ReadFailure {
    /// The error for a failed read of `document` from `url` of `registry`, capped at
    /// `limit`, after `attempts` attempts.
    pub(crate) fn into_error(
        self,
        document: Document,
        registry: &str,
        url: &str,
        limit: u64,
        attempts: u32,
    ) -> Error {
        match self {
            ReadFailure::TooLarge { announced } => Error::DocumentTooLarge {
                document,
                url: url.to_owned(),
                limit,
                announced,
            },
            ReadFailure::Interrupted(interrupted) => {
                interrupted_error(interrupted, registry, url, attempts)
            }
        }
    }
}

/// The error for an attempt that broke off or stalled.
pub(crate) fn interrupted_error(
    interrupted: Interrupted,
    registry: &str,
    url: &str,
    attempts: u32,
) -> Error {
    match interrupted {
        Interrupted::Transport(source) => Error::Unreachable {
            registry: registry.to_owned(),
            url: url.to_owned(),
            attempts,
            source: Box::new(source),
        },
        Interrupted::Stalled(stall) => Error::Stalled {
            registry: registry.to_owned(),
            url: url.to_owned(),
            attempts,
            stall,
        },
    }
}

/// Reads the whole body of `response`, refusing it as soon as it would pass `limit` bytes
/// (before reading anything when `Content-Length` announces more), under the progress rule
/// and the document deadline the response carries. Never holds more than `limit` bytes.
pub(crate) async fn read_document(
    response: &mut Response,
    limit: u64,
) -> Result<Vec<u8>, ReadFailure> {
    if let Some(length) = content_length(response.headers()) {
        if length > limit {
            return Err(ReadFailure::TooLarge {
                announced: Some(length),
            });
        }
    }
    let mut meter = Rules::of_response(response).document();
    let mut body = Vec::new();
    while let Some(chunk) = meter
        .chunk(response)
        .await
        .map_err(ReadFailure::Interrupted)?
    {
        let after = u64::try_from(body.len())
            .ok()
            .and_then(|held| held.checked_add(u64::try_from(chunk.len()).ok()?));
        if after.is_none_or(|after| after > limit) {
            return Err(ReadFailure::TooLarge { announced: None });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
