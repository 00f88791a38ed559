//! Three threads per layer: decompression, hashing (the diff_id) and the thread that parses
//! and writes entries. The decompressed tar bytes flow in fixed-size chunks, shared by the
//! hashing and the writing thread, through bounded channels, so inflating, hashing and
//! writing files overlap and none of them waits for the sum of the others. At most
//! [`DEPTH`] chunks are queued per consumer, so memory does not grow with the layer's size;
//! a chunk's buffer goes back to the decompressing thread once both consumers are done
//! with it.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

use sha2::{Digest as _, Sha256};

use crate::stream::CountingReader;

/// Bytes per chunk.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Chunks queued between the threads.
pub(crate) const DEPTH: usize = 4;

/// A chunk of decompressed bytes, or the error that ended the stream.
pub(crate) type Chunk = io::Result<Arc<Vec<u8>>>;

/// Reads `source` to its end in chunks and sends each to the hashing thread (`hashed`) and
/// then the writing thread (`chunks`); stops early when the writing thread is gone (the
/// extraction failed) or after sending an error. Returns the reader, whose count covers
/// exactly what was read (and hashed).
pub(crate) fn produce<R: Read>(
    mut source: CountingReader<R>,
    hashed: SyncSender<Arc<Vec<u8>>>,
    chunks: SyncSender<Chunk>,
    recycled: Receiver<Vec<u8>>,
) -> CountingReader<R> {
    loop {
        let mut buffer = match recycled.try_recv() {
            Ok(buffer) => buffer,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        };
        buffer.resize(CHUNK, 0);
        let mut filled = 0;
        let mut failure = None;
        while filled < CHUNK {
            match source.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let at_end = filled < CHUNK;
        if filled > 0 {
            buffer.truncate(filled);
            let chunk = Arc::new(buffer);
            // The hashing thread only ends when this sender is dropped.
            let _ = hashed.send(Arc::clone(&chunk));
            if chunks.send(Ok(chunk)).is_err() {
                return source;
            }
        }
        if let Some(error) = failure {
            let _ = chunks.send(Err(error));
            return source;
        }
        if at_end {
            return source;
        }
    }
}

/// The hashing thread: hashes every chunk in order until the producer is done; the sha256
/// of the whole decompressed stream.
pub(crate) fn hash(chunks: Receiver<Arc<Vec<u8>>>, recycle: SyncSender<Vec<u8>>) -> Sha256 {
    let mut hasher = Sha256::new();
    for chunk in chunks {
        hasher.update(chunk.as_slice());
        give_back(chunk, &recycle);
    }
    hasher
}

/// Hands a chunk's buffer back to the producer when this was its last user.
fn give_back(chunk: Arc<Vec<u8>>, recycle: &SyncSender<Vec<u8>>) {
    // `into_inner` returns the buffer to exactly one of the two consumers: the last.
    if let Some(buffer) = Arc::into_inner(chunk) {
        // A full recycle queue just means the producer allocates less often.
        let _ = recycle.try_send(buffer);
    }
}

/// The extracting side: a [`Read`] over the chunks, handing used buffers back.
pub(crate) struct ChannelReader {
    chunks: Receiver<Chunk>,
    recycle: SyncSender<Vec<u8>>,
    current: Arc<Vec<u8>>,
    position: usize,
}

impl ChannelReader {
    pub(crate) fn new(chunks: Receiver<Chunk>, recycle: SyncSender<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            chunks,
            recycle,
            current: Arc::new(Vec::new()),
            position: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    self.position = 0;
                    give_back(used, &self.recycle);
                }
                Ok(Err(error)) => return Err(error),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
