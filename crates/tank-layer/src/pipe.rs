//! Decompression on its own thread: the decompressed tar bytes (hashed into the diff_id
//! on the way) flow in fixed-size chunks through a bounded channel to the thread that
//! parses and writes entries, so on two cores inflating and writing files overlap. At most
//! [`DEPTH`] chunks are in flight, so memory does not grow with the layer's size.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

use crate::stream::HashingReader;

/// Bytes per chunk.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Chunks queued between the threads.
pub(crate) const DEPTH: usize = 4;

/// A chunk of decompressed bytes, or the error that ended the stream.
pub(crate) type Chunk = io::Result<Vec<u8>>;

/// Reads `source` to its end in chunks and sends them; stops early when the receiver is
/// gone (the extraction failed) or after sending an error. Returns the reader, whose hash
/// and count cover exactly what was read.
pub(crate) fn produce<R: Read>(
    mut source: HashingReader<R>,
    chunks: SyncSender<Chunk>,
    recycled: Receiver<Vec<u8>>,
) -> HashingReader<R> {
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
            if chunks.send(Ok(buffer)).is_err() {
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

/// The extracting side: a [`Read`] over the chunks, handing used buffers back.
pub(crate) struct ChannelReader {
    chunks: Receiver<Chunk>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    passed: u64,
    /// The stream ended (a read returned 0 for a non-empty buffer).
    pub(crate) eof: bool,
}

impl ChannelReader {
    pub(crate) fn new(chunks: Receiver<Chunk>, recycle: SyncSender<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            chunks,
            recycle,
            current: Vec::new(),
            position: 0,
            passed: 0,
            eof: false,
        }
    }

    /// Bytes read so far.
    pub(crate) fn passed(&self) -> u64 {
        self.passed
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
                    // A full recycle queue just means the producer allocates less often.
                    let _ = self.recycle.try_send(used);
                }
                Ok(Err(error)) => return Err(error),
                Err(_) => {
                    self.eof = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        self.passed += n as u64;
        Ok(n)
    }
}
