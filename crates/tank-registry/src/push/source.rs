//! What an upload sends: [`BlobSource`], content that can be opened (and opened again for a
//! retry) at any offset, and the request bodies streamed from it, hashed as they pass so that
//! a source that does not hold the promised blob is caught before the registry commits it.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::stream;
use tank_reference::{Digest, Hasher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use crate::Error;
use crate::progress::{UploadCounter, counted, counted_bytes};

/// A reader of blob content, as [`BlobSource::open`] hands it out.
pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// The future [`BlobSource::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BlobReader>> + Send + 'a>>;

/// Content to upload as a blob: something that can be read from any byte offset, as often as
/// needed (a retried upload or chunk opens it again where the registry wants to continue).
///
/// Implemented for files (`&Path`, [`PathBuf`]: read from disk as the upload proceeds, never
/// whole in memory) and for [`Bytes`] (a `Vec<u8>` converts without copying with
/// `Bytes::from(vec)`).
pub trait BlobSource: Send + Sync {
    /// Opens the content, positioned at byte `offset` (which is never past its end). The reader
    /// may go on past the blob's size; the upload reads only what it needs.
    fn open(&self, offset: u64) -> OpenFuture<'_>;
}

/// Opens the file at `path`, positioned at `offset`.
fn open_file(path: &Path, offset: u64) -> OpenFuture<'_> {
    Box::pin(async move {
        let mut file = tokio::fs::File::open(path).await?;
        if offset > 0 {
            file.seek(io::SeekFrom::Start(offset)).await?;
        }
        Ok(Box::new(file) as BlobReader)
    })
}

impl BlobSource for PathBuf {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        open_file(self, offset)
    }
}

impl BlobSource for &Path {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        open_file(self, offset)
    }
}

impl BlobSource for Bytes {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let rest = self.slice(start..);
        Box::pin(async move { Ok(Box::new(io::Cursor::new(rest)) as BlobReader) })
    }
}

/// How much of a source one read asks for.
const READ_SIZE: usize = 256 * 1024;

/// Why the content streamed from a source is not the blob it should be.
enum SourceFailure {
    Read(io::Error),
    Short { actual: u64 },
    Digest(Digest),
}

/// Checks, across every request body of one blob upload (retries and chunks included), that
/// the source holds exactly the blob: each byte position is hashed once, in order, the first
/// time it is streamed; when the last byte has been hashed the digest is compared before that
/// byte is handed to the HTTP stack, so a wrong source never completes a request body.
pub(crate) struct Tracker {
    digest: Digest,
    size: u64,
    state: Mutex<TrackState>,
}

struct TrackState {
    hasher: Option<Hasher>,
    /// Bytes `0..hashed` have been hashed.
    hashed: u64,
    /// What went wrong, until the request that saw it picks it up.
    failure: Option<SourceFailure>,
}

impl Tracker {
    pub(crate) fn new(digest: &Digest, size: u64) -> Tracker {
        Tracker {
            digest: digest.clone(),
            size,
            state: Mutex::new(TrackState {
                hasher: Some(Hasher::new(digest.algorithm())),
                hashed: 0,
                failure: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TrackState> {
        // Every update below leaves the state consistent, also if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hashes the part of `data` (which starts at byte `position`) not hashed yet; after the
    /// last byte, checks the digest. An error aborts the request body.
    fn observe(&self, position: u64, data: &[u8]) -> io::Result<()> {
        let mut guard = self.state();
        let state = &mut *guard;
        let Some(hasher) = state.hasher.as_mut() else {
            return Ok(());
        };
        let end = position + data.len() as u64;
        if end <= state.hashed {
            return Ok(());
        }
        if position > state.hashed {
            // The registry asked to continue past bytes this client never streamed (it kept
            // them from elsewhere): the local check cannot cover them, the registry's does.
            state.hasher = None;
            return Ok(());
        }
        let skip = usize::try_from(state.hashed - position).unwrap_or(usize::MAX);
        hasher.update(&data[skip.min(data.len())..]);
        state.hashed = end;
        if end < self.size {
            return Ok(());
        }
        let actual = state
            .hasher
            .take()
            .map(Hasher::finish)
            .unwrap_or_else(|| self.digest.clone());
        if actual == self.digest {
            return Ok(());
        }
        state.failure = Some(SourceFailure::Digest(actual));
        Err(io::Error::other("the upload source does not hold the blob"))
    }

    fn fail(&self, failure: SourceFailure) -> io::Error {
        let message = match &failure {
            SourceFailure::Read(_) => "reading the upload source failed",
            _ => "the upload source ended early",
        };
        self.state().failure = Some(failure);
        io::Error::other(message)
    }

    /// The error that made a request body fail, if it was the source's fault.
    pub(crate) fn take_failure(&self) -> Option<Error> {
        let failure = self.state().failure.take()?;
        let what = format!("the upload source of blob {}", self.digest);
        Some(match failure {
            SourceFailure::Read(source) => Error::BlobSource {
                digest: self.digest.clone(),
                source,
            },
            SourceFailure::Short { actual } => Error::SizeMismatch {
                what,
                expected: self.size,
                actual,
            },
            SourceFailure::Digest(actual) => Error::DigestMismatch {
                what,
                expected: self.digest.clone(),
                actual,
            },
        })
    }
}

/// A byte range of a blob source, as one request body.
pub(crate) struct Part<'a> {
    pub(crate) source: &'a dyn BlobSource,
    pub(crate) offset: u64,
    pub(crate) length: u64,
    pub(crate) tracker: &'a Arc<Tracker>,
}

/// What a request sends.
pub(crate) enum Payload<'a> {
    /// No body at all (GET, HEAD).
    None,
    /// Bytes in memory (a manifest; empty for the requests that carry no content).
    Bytes(Bytes),
    /// A range of a blob, streamed from its source.
    Part(Part<'a>),
}

impl Payload<'_> {
    /// How many bytes the body holds.
    pub(crate) fn length(&self) -> u64 {
        match self {
            Payload::None => 0,
            Payload::Bytes(bytes) => u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            Payload::Part(part) => part.length,
        }
    }

    /// A fresh body (sources are opened again for every attempt) and its length; `counter`
    /// counts the bytes the HTTP stack takes from it (the progress of an upload).
    pub(crate) async fn body(
        &self,
        counter: &Arc<UploadCounter>,
    ) -> Result<(reqwest::Body, u64), Error> {
        match self {
            Payload::None => Ok((reqwest::Body::from(Bytes::new()), 0)),
            Payload::Bytes(bytes) => Ok((
                reqwest::Body::wrap_stream(counted_bytes(bytes.clone(), counter.clone())),
                self.length(),
            )),
            Payload::Part(part) => {
                let reader =
                    part.source
                        .open(part.offset)
                        .await
                        .map_err(|source| Error::BlobSource {
                            digest: part.tracker.digest.clone(),
                            source,
                        })?;
                let body = reqwest::Body::wrap_stream(counted(
                    part_stream(reader, part.offset, part.length, part.tracker.clone()),
                    counter.clone(),
                ));
                Ok((body, part.length))
            }
        }
    }

    /// When sending failed: the source's fault, if it was.
    pub(crate) fn source_failure(&self) -> Option<Error> {
        match self {
            Payload::Part(part) => part.tracker.take_failure(),
            _ => None,
        }
    }
}

/// `length` bytes of `reader` (positioned at `start`) as a stream of chunks, each observed by
/// the tracker before it is yielded.
fn part_stream(
    reader: BlobReader,
    start: u64,
    length: u64,
    tracker: Arc<Tracker>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    stream::try_unfold(
        (reader, start, length, tracker),
        |(mut reader, position, remaining, tracker)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(READ_SIZE);
            let mut buffer = vec![0u8; want];
            let read = match reader.read(&mut buffer).await {
                Ok(read) => read,
                Err(error) => return Err(tracker.fail(SourceFailure::Read(error))),
            };
            if read == 0 {
                return Err(tracker.fail(SourceFailure::Short { actual: position }));
            }
            buffer.truncate(read);
            tracker.observe(position, &buffer)?;
            let read = read as u64;
            Ok(Some((
                Bytes::from(buffer),
                (reader, position + read, remaining - read, tracker),
            )))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use futures_util::TryStreamExt as _;
    use tank_reference::Algorithm;

    async fn stream_all(
        source: &dyn BlobSource,
        offset: u64,
        length: u64,
        tracker: &Arc<Tracker>,
    ) -> io::Result<Vec<u8>> {
        let reader = source.open(offset).await?;
        let chunks: Vec<Bytes> = part_stream(reader, offset, length, tracker.clone())
            .try_collect()
            .await?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn parts_of_a_right_source_stream_and_verify() {
        let content: Vec<u8> = (0..700_000u32).map(|index| (index % 251) as u8).collect();
        let digest = Digest::of(Algorithm::Sha256, &content);
        let source = Bytes::from(content.clone());
        let tracker = Arc::new(Tracker::new(&digest, content.len() as u64));
        // A chunk, the same chunk again (a retry), then the rest.
        let first = stream_all(&source, 0, 300_000, &tracker).await.unwrap();
        let again = stream_all(&source, 100_000, 200_000, &tracker)
            .await
            .unwrap();
        let rest = stream_all(&source, 300_000, 400_000, &tracker)
            .await
            .unwrap();
        assert_eq!(first, content[..300_000]);
        assert_eq!(again, content[100_000..300_000]);
        assert_eq!(rest, content[300_000..]);
        assert!(tracker.take_failure().is_none());
    }

    #[tokio::test]
    async fn a_wrong_or_short_source_fails_before_its_last_byte() {
        let content = b"the blob the digest was computed from".to_vec();
        let digest = Digest::of(Algorithm::Sha256, &content);
        let mut other = content.clone();
        other[3] ^= 1;
        let tracker = Arc::new(Tracker::new(&digest, content.len() as u64));
        let error = stream_all(&Bytes::from(other), 0, content.len() as u64, &tracker)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::Other);
        let failure = tracker.take_failure();
        assert!(
            matches!(&failure, Some(Error::DigestMismatch { expected, .. }) if expected == &digest),
            "{failure:?}"
        );

        let tracker = Arc::new(Tracker::new(&digest, content.len() as u64));
        let short = Bytes::from(content[..10].to_vec());
        assert!(
            stream_all(&short, 0, content.len() as u64, &tracker)
                .await
                .is_err()
        );
        let failure = tracker.take_failure();
        assert!(
            matches!(failure, Some(Error::SizeMismatch { actual: 10, .. })),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn bytes_the_client_never_streamed_end_the_local_check() {
        let content = vec![7u8; 1000];
        let digest = Digest::of(Algorithm::Sha256, b"other content");
        let tracker = Arc::new(Tracker::new(&digest, 1000));
        stream_all(&Bytes::from(content.clone()), 0, 100, &tracker)
            .await
            .unwrap();
        // The registry said it holds 500 bytes: the client continues from there, and only the
        // registry can check the whole.
        let rest = stream_all(&Bytes::from(content), 500, 500, &tracker)
            .await
            .unwrap();
        assert_eq!(rest.len(), 500);
        assert!(tracker.take_failure().is_none());
    }

    #[tokio::test]
    async fn files_open_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut reader = path.open(4).await.unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "456789");
        let missing = dir.path().join("missing").open(0).await;
        assert!(missing.is_err());
    }
}
