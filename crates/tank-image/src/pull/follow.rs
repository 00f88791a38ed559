//! Following a layer blob while it downloads: the [`Feed`] a download task and an
//! extraction share, the [`FeedGuard`] that ends a feed as failed unless the download
//! verified, and the [`GrowingReader`] that reads the file as it grows and sees its end only
//! once the blob verified.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// How a download that a feed follows ended, if it has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Still running.
    #[default]
    Pending,
    /// The blob verified and was stored.
    Verified,
    /// The download failed (or its task was dropped).
    Failed,
}

/// How far a layer blob being downloaded has been written, shared between the download
/// task and the extraction that follows the file as it grows.
#[derive(Debug, Default)]
pub(super) struct Feed {
    state: Mutex<FeedState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct FeedState {
    /// A read handle on the temporary file, once the download has created it; taken by
    /// the extraction.
    pub(super) file: Option<File>,
    /// Bytes written and flushed to it.
    pub(super) readable: u64,
    /// How the download ended.
    outcome: Outcome,
}

impl Feed {
    /// Changes the state and wakes whoever waits for it.
    pub(super) fn update(&self, change: impl FnOnce(&mut FeedState)) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        self.changed.notify_all();
    }

    /// Blocks until `ready` says something.
    fn wait<T>(&self, mut ready: impl FnMut(&mut FeedState) -> Option<T>) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(answer) = ready(&mut state) {
                return answer;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Ends a feed: [`Outcome::Failed`] unless [`FeedGuard::verified`] was called, also when the
/// download task is dropped mid-way.
pub(super) struct FeedGuard(Arc<Feed>);

impl FeedGuard {
    /// Guards `feed` until the download ends.
    pub(super) fn new(feed: Arc<Feed>) -> FeedGuard {
        FeedGuard(feed)
    }

    /// The blob verified and was stored: the reader may see its end.
    pub(super) fn verified(self) {
        self.0.update(|state| state.outcome = Outcome::Verified);
    }
}

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.0.update(|state| {
            if state.outcome == Outcome::Pending {
                state.outcome = Outcome::Failed;
            }
        });
    }
}

/// Reads a blob file while it is being downloaded, waiting for more bytes; ends when the
/// download verified, fails when it failed.
pub(super) struct GrowingReader {
    file: File,
    feed: Arc<Feed>,
    position: u64,
}

impl GrowingReader {
    /// Waits for the download to create its file and takes the handle on it.
    pub(super) fn open(feed: Arc<Feed>) -> io::Result<GrowingReader> {
        let file = feed.wait(|state| match state.file.take() {
            Some(file) => Some(Ok(file)),
            None if state.outcome == Outcome::Failed => Some(Err(download_failed())),
            None => None,
        })?;
        Ok(GrowingReader {
            file,
            feed,
            position: 0,
        })
    }
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let position = self.position;
        // Bytes already written are served even when the download has failed since: the
        // failure is reported when the reader reaches them.
        let available = self.feed.wait(|state| {
            if state.readable > position {
                return Some(Ok(state.readable - position));
            }
            match state.outcome {
                Outcome::Verified => Some(Ok(0)),
                Outcome::Failed => Some(Err(download_failed())),
                Outcome::Pending => None,
            }
        })?;
        if available == 0 {
            return Ok(0);
        }
        let wanted = usize::try_from(available)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let read = self.file.read(&mut buf[..wanted])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than the bytes written to it",
            ));
        }
        self.position += read as u64;
        Ok(read)
    }
}

fn download_failed() -> io::Error {
    io::Error::other("the layer's download failed")
}

#[cfg(test)]
mod tests;
