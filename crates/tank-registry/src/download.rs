//! One blob download: streams response bodies into the caller's sink, hashing as bytes pass,
//! checking size limits early, and knowing where to resume after a body is cut short.

use reqwest::header::{CONTENT_RANGE, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use tank_reference::{Digest, Hasher};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::Error;
use crate::client::{Target, content_length};
use crate::progress::{Interrupted, Rules};

/// Why streaming a body stopped.
pub(crate) enum StreamError {
    /// The connection failed mid-body (reset, timeout) or stalled: resume.
    Interrupted(Interrupted),
    /// The content is wrong or the sink failed: give up.
    Fatal(Error),
}

/// The state of one blob download across its (resumed) responses.
pub(crate) struct Download<'a> {
    digest: &'a Digest,
    /// `blob <digest> from <registry>/<repository>`, for errors.
    what: String,
    expected_size: Option<u64>,
    limit: Option<u64>,
    hasher: Hasher,
    /// Bytes written to the sink so far.
    received: u64,
    /// Bytes at the start of the current body that the sink already has.
    skip: u64,
}

impl<'a> Download<'a> {
    /// A download not yet started; [`Download::set_source`] names where bytes come from.
    pub(crate) fn new(digest: &'a Digest, expected_size: Option<u64>, limit: Option<u64>) -> Self {
        Download {
            digest,
            what: format!("blob {digest}"),
            expected_size,
            limit,
            hasher: Hasher::new(digest.algorithm()),
            received: 0,
            skip: 0,
        }
    }

    /// Bytes now come from `target` (named in errors with the sources before it that wrote
    /// bytes).
    pub(crate) fn set_source(&mut self, target: &Target) {
        let from = format!("{}/{}", target.registry, target.repository);
        self.what = if self.received == 0 {
            format!("blob {} from {from}", self.digest)
        } else {
            format!("{} then {from}", self.what)
        };
    }

    /// The digest being downloaded.
    pub(crate) fn digest(&self) -> &'a Digest {
        self.digest
    }

    /// Bytes written to the sink so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// `bytes=<received>-` once something was received.
    pub(crate) fn range_header(&self) -> Option<HeaderValue> {
        if self.received == 0 {
            return None;
        }
        HeaderValue::from_str(&format!("bytes={}-", self.received)).ok()
    }

    /// Whether every expected byte has arrived (only knowable with an expected size).
    pub(crate) fn is_complete(&self) -> bool {
        self.received > 0 && self.expected_size == Some(self.received)
    }

    /// 200 always; 206 only as the answer to a range request.
    pub(crate) fn accepts(&self, status: StatusCode) -> bool {
        status == StatusCode::OK || (status == StatusCode::PARTIAL_CONTENT && self.received > 0)
    }

    /// Checks a new response's headers and decides how much of its body to skip.
    pub(crate) fn start_response(
        &mut self,
        url: &str,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<(), Error> {
        let announced_total = if status == StatusCode::PARTIAL_CONTENT {
            let header = headers
                .get(CONTENT_RANGE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            let range = header.as_deref().and_then(parse_content_range);
            match range {
                Some((start, _, total)) if start == self.received => {
                    self.skip = 0;
                    total
                }
                _ => {
                    return Err(Error::ResumeMismatch {
                        url: url.to_owned(),
                        offset: self.received,
                        content_range: header,
                    });
                }
            }
        } else {
            // A 200 carries the whole blob, also when a range was asked for and ignored.
            self.skip = self.received;
            content_length(headers)
        };
        if let Some(total) = announced_total {
            if let Some(limit) = self.limit {
                if total > limit {
                    return Err(Error::BlobTooLarge {
                        digest: self.digest.clone(),
                        limit,
                    });
                }
            }
            if let Some(expected) = self.expected_size {
                if total != expected {
                    return Err(Error::SizeMismatch {
                        what: format!("{} (announced length)", self.what),
                        expected,
                        actual: total,
                    });
                }
            }
        }
        Ok(())
    }

    /// Streams the body into `sink`, skipping what the sink already has and stopping as soon
    /// as the blob passes its expected size or the limit.
    pub(crate) async fn stream<W>(
        &mut self,
        response: &mut Response,
        sink: &mut W,
    ) -> Result<(), StreamError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        // A blob read into memory (a config) is a document: it gets the document deadline.
        let rules = Rules::of_response(response);
        let mut meter = if self.limit.is_some() {
            rules.document()
        } else {
            rules.transfer()
        };
        loop {
            let chunk = match meter.chunk(response).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(()),
                Err(interrupted) => return Err(StreamError::Interrupted(interrupted)),
            };
            let mut data = &chunk[..];
            if self.skip > 0 {
                let skipped = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                data = &data[skipped..];
                self.skip -= skipped as u64;
            }
            if data.is_empty() {
                continue;
            }
            let Some(after) = self.received.checked_add(data.len() as u64) else {
                return Err(StreamError::Fatal(Error::SizeMismatch {
                    what: self.what.clone(),
                    expected: self.expected_size.unwrap_or(u64::MAX),
                    actual: u64::MAX,
                }));
            };
            if let Some(limit) = self.limit {
                if after > limit {
                    return Err(StreamError::Fatal(Error::BlobTooLarge {
                        digest: self.digest.clone(),
                        limit,
                    }));
                }
            }
            if let Some(expected) = self.expected_size {
                if after > expected {
                    return Err(StreamError::Fatal(Error::SizeMismatch {
                        what: self.what.clone(),
                        expected,
                        actual: after,
                    }));
                }
            }
            self.hasher.update(data);
            sink.write_all(data).await.map_err(|source| {
                StreamError::Fatal(Error::Sink {
                    digest: self.digest.clone(),
                    source,
                })
            })?;
            self.received = after;
        }
    }

    /// Checks size and digest of everything the sink received, flushes the sink, and returns
    /// the byte count.
    pub(crate) async fn finish<W>(self, sink: &mut W) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        if let Some(expected) = self.expected_size {
            if self.received != expected {
                return Err(Error::SizeMismatch {
                    what: self.what,
                    expected,
                    actual: self.received,
                });
            }
        }
        let actual = self.hasher.finish();
        if &actual != self.digest {
            return Err(Error::DigestMismatch {
                what: self.what,
                expected: self.digest.clone(),
                actual,
            });
        }
        sink.flush().await.map_err(|source| Error::Sink {
            digest: self.digest.clone(),
            source,
        })?;
        Ok(self.received)
    }
}

/// `bytes <start>-<end>/<total or *>` → (start, end, total).
fn parse_content_range(header: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = header.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        number => {
            let total: u64 = number.parse().ok()?;
            if end >= total {
                return None;
            }
            Some(total)
        }
    };
    Some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
        assert_eq!(
            parse_content_range(" bytes  5-9/10 "),
            Some((5, 9, Some(10)))
        );
        for bad in [
            "",
            "bytes */200",
            "bytes 100-99/200",
            "bytes 100-200/200",
            "items 0-1/2",
            "bytes 1-2",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }
}
