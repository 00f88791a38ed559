//! The follow machinery alone: a reader that waits for a file to grow, sees its end only
//! once the download verified, and fails once it failed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, PoisonError};
use std::thread;

use super::{Feed, FeedGuard, GrowingReader, Outcome};

impl Feed {
    /// How the download ended, so far.
    pub(in crate::pull) fn outcome(&self) -> Outcome {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outcome
    }
}

/// A feed over a fresh temporary file, and the writer side of that file.
fn feed_with_file() -> (Arc<Feed>, File, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("blob");
    let writer = File::create(&path).expect("create the blob file");
    let follower = File::open(&path).expect("open the blob file again");
    let feed = Arc::new(Feed::default());
    feed.update(|state| state.file = Some(follower));
    (feed, writer, dir)
}

/// Writes `bytes` and tells the feed, as the download's sink does.
fn grow(feed: &Feed, writer: &mut File, written: &mut u64, bytes: &[u8]) {
    writer.write_all(bytes).expect("write to the blob file");
    writer.flush().expect("flush the blob file");
    *written += bytes.len() as u64;
    let readable = *written;
    feed.update(|state| state.readable = readable);
}

/// What a reader thread saw, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Bytes(Vec<u8>),
    End,
    Failed(String),
}

/// Reads `reader` to its end on a thread, sending each read's result as it happens.
fn read_on_a_thread(mut reader: GrowingReader) -> (mpsc::Receiver<Seen>, thread::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel();
    let handle = thread::spawn(move || {
        let mut buffer = [0_u8; 64];
        loop {
            let seen = match reader.read(&mut buffer) {
                Ok(0) => Seen::End,
                Ok(n) => Seen::Bytes(buffer[..n].to_vec()),
                Err(error) => Seen::Failed(error.to_string()),
            };
            let last = !matches!(seen, Seen::Bytes(_));
            if sender.send(seen).is_err() || last {
                return;
            }
        }
    });
    (receiver, handle)
}

/// Receives bytes until `length` of them came; fails on anything else.
fn receive_bytes(receiver: &mpsc::Receiver<Seen>, length: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    while bytes.len() < length {
        match receiver.recv().expect("the reader thread is alive") {
            Seen::Bytes(chunk) => bytes.extend(chunk),
            other => panic!("expected bytes, the reader saw {other:?}"),
        }
    }
    bytes
}

#[test]
fn the_reader_waits_for_growth_and_ends_only_after_verified() {
    let (feed, mut writer, _dir) = feed_with_file();
    let guard = FeedGuard::new(Arc::clone(&feed));
    let reader = GrowingReader::open(Arc::clone(&feed)).expect("the file is there");
    let (receiver, handle) = read_on_a_thread(reader);
    let mut written = 0;

    grow(&feed, &mut writer, &mut written, b"first part ");
    assert_eq!(receive_bytes(&receiver, 11), b"first part ");
    // Everything written has been read and the download is still running: the reader
    // waits rather than reporting an end. Had it ended, the next message would be End.
    grow(&feed, &mut writer, &mut written, b"second part");
    assert_eq!(receive_bytes(&receiver, 11), b"second part");

    guard.verified();
    assert_eq!(receiver.recv().expect("the reader's verdict"), Seen::End);
    handle.join().expect("the reader thread ends");
    assert_eq!(feed.outcome(), Outcome::Verified);
}

#[test]
fn the_reader_fails_after_the_download_failed_and_keeps_what_came_before() {
    let (feed, mut writer, _dir) = feed_with_file();
    let guard = FeedGuard::new(Arc::clone(&feed));
    let mut reader = GrowingReader::open(Arc::clone(&feed)).expect("the file is there");
    let mut written = 0;
    grow(&feed, &mut writer, &mut written, b"abc");
    drop(guard);

    let mut buffer = [0_u8; 16];
    let read = reader
        .read(&mut buffer)
        .expect("bytes written before the failure");
    assert_eq!(&buffer[..read], b"abc");
    let error = reader.read(&mut buffer).expect_err("the download failed");
    assert!(error.to_string().contains("download failed"), "{error}");
    // It stays failed: no read ever reports a clean end.
    assert!(reader.read(&mut buffer).is_err());
}

#[test]
fn dropping_the_guard_without_verifying_marks_the_feed_failed() {
    let feed = Arc::new(Feed::default());
    assert_eq!(feed.outcome(), Outcome::Pending);
    drop(FeedGuard::new(Arc::clone(&feed)));
    assert_eq!(feed.outcome(), Outcome::Failed);
}

#[test]
fn a_verified_feed_stays_verified_when_its_guard_goes() {
    let feed = Arc::new(Feed::default());
    FeedGuard::new(Arc::clone(&feed)).verified();
    assert_eq!(feed.outcome(), Outcome::Verified);
}

#[test]
fn a_guard_dropped_on_a_task_that_is_aborted_fails_the_feed() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let feed = Arc::new(Feed::default());
    let guard = FeedGuard::new(Arc::clone(&feed));
    runtime.block_on(async {
        let task = tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        task.abort();
        let joined = task.await;
        assert!(joined.is_err_and(|error| error.is_cancelled()));
    });
    assert_eq!(feed.outcome(), Outcome::Failed);
}

#[test]
fn opening_waits_for_the_file_and_fails_if_the_download_fails_first() {
    let feed = Arc::new(Feed::default());
    let guard = FeedGuard::new(Arc::clone(&feed));
    let opener = {
        let feed = Arc::clone(&feed);
        thread::spawn(move || GrowingReader::open(feed).map(|_| ()))
    };
    drop(guard);
    let error = opener
        .join()
        .expect("the opener thread ends")
        .expect_err("no file, and the download failed");
    assert!(error.to_string().contains("download failed"), "{error}");

    let (feed, _writer, _dir) = feed_with_file();
    let opened = thread::spawn(move || GrowingReader::open(feed).map(|_| ()))
        .join()
        .expect("the opener thread ends");
    assert!(opened.is_ok(), "{opened:?}");
}

#[test]
fn a_file_shorter_than_announced_is_an_unexpected_end() {
    let (feed, _writer, _dir) = feed_with_file();
    feed.update(|state| state.readable = 10);
    let mut reader = GrowingReader::open(Arc::clone(&feed)).expect("the file is there");
    let error = reader
        .read(&mut [0_u8; 16])
        .expect_err("nothing is in the file");
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn an_empty_buffer_reads_nothing_without_waiting() {
    let (feed, _writer, _dir) = feed_with_file();
    let mut reader = GrowingReader::open(feed).expect("the file is there");
    assert_eq!(reader.read(&mut []).expect("an empty read"), 0);
}
