//! The minimum-progress rule and the deadlines that bound how long one request attempt can
//! hold tank: a transfer that moves fewer than [`ClientConfig::min_progress_bytes`] within a
//! [`ClientConfig::progress_window`] is a stall; so are response headers not complete within
//! [`ClientConfig::header_timeout`] and a document read into memory not complete within
//! [`ClientConfig::document_timeout`]. A stall fails the attempt like a broken connection
//! (retried, resumed with `Range` where blob bytes had arrived) and, when the retries are
//! spent, ends as [`crate::Error::Stalled`] naming the rule.
//!
//! The read timeout of the HTTP stack restarts with every byte, so a registry sending one
//! byte every few seconds never trips it; these rules count bytes per window and total time.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Response;
use tokio::time::Instant;

use crate::config::ClientConfig;

/// Why an attempt was given up as stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stall {
    /// Fewer than `min_bytes` moved within one `window` ([`ClientConfig::min_progress_bytes`]
    /// per [`ClientConfig::progress_window`]).
    TooSlow {
        /// The least a window must move.
        min_bytes: u64,
        /// The window.
        window: Duration,
    },
    /// The response headers were not complete `timeout` after the request (and its body)
    /// was sent ([`ClientConfig::header_timeout`]).
    Headers {
        /// The deadline.
        timeout: Duration,
    },
    /// A document read into memory (manifest, token, error body, image config) was not
    /// complete `timeout` after its headers ([`ClientConfig::document_timeout`]).
    Document {
        /// The deadline.
        timeout: Duration,
    },
}

impl fmt::Display for Stall {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stall::TooSlow { min_bytes, window } => write!(
                formatter,
                "less than {min_bytes} bytes in {} (the minimum-progress rule: \
                 min_progress_bytes per progress_window)",
                Shown(*window)
            ),
            Stall::Headers { timeout } => write!(
                formatter,
                "the response headers were not complete within {} (header_timeout)",
                Shown(*timeout)
            ),
            Stall::Document { timeout } => write!(
                formatter,
                "the document was not complete within {} (document_timeout)",
                Shown(*timeout)
            ),
        }
    }
}

/// A duration as `30 s` or `300 ms`.
struct Shown(Duration);

impl fmt::Display for Shown {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(formatter, "{} s", self.0.as_secs())
        } else {
            write!(formatter, "{} ms", self.0.as_millis())
        }
    }
}

/// Why reading a body or waiting for an answer stopped early.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// The HTTP stack failed (reset, read timeout, malformed framing).
    Transport(reqwest::Error),
    /// A progress rule or deadline fired.
    Stalled(Stall),
}

/// The rules in force for one client, copied from its [`ClientConfig`]. Carried in the
/// extensions of every response the client receives, so that whatever reads a body later
/// knows them without the client at hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    min_bytes: u64,
    window: Duration,
    headers: Duration,
    document: Duration,
}

impl Rules {
    pub(crate) fn of(config: &ClientConfig) -> Rules {
        Rules {
            min_bytes: config.min_progress_bytes,
            window: config.progress_window,
            headers: config.header_timeout,
            document: config.document_timeout,
        }
    }

    /// The rules a response carries (the defaults if it carries none).
    pub(crate) fn of_response(response: &Response) -> Rules {
        response
            .extensions()
            .get::<Rules>()
            .copied()
            .unwrap_or_else(|| Rules::of(&ClientConfig::default()))
    }

    /// A meter for a blob body (the progress rule only).
    pub(crate) fn transfer(&self) -> Meter {
        Meter::new(*self, None)
    }

    /// A meter for a document read into memory (the progress rule and the document deadline).
    pub(crate) fn document(&self) -> Meter {
        Meter::new(*self, nonzero(self.document))
    }

    fn progress_enabled(&self) -> bool {
        self.min_bytes > 0 && !self.window.is_zero()
    }
}

fn nonzero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

/// The progress of one transfer against the rules. Only time spent waiting for the network
/// counts (time the caller spends writing to its sink does not).
pub(crate) struct Meter {
    rules: Rules,
    deadline: Option<Duration>,
    /// Time waited in the current window, and bytes moved in it.
    waited: Duration,
    moved: u64,
    /// Time waited in all.
    total: Duration,
}

impl Meter {
    fn new(rules: Rules, deadline: Option<Duration>) -> Meter {
        Meter {
            rules,
            deadline,
            waited: Duration::ZERO,
            moved: 0,
            total: Duration::ZERO,
        }
    }

    /// How long the caller may wait before it must report to [`Meter::account`]; `None`
    /// when no rule applies.
    fn budget(&self) -> Option<Duration> {
        let window = self
            .rules
            .progress_enabled()
            .then(|| self.rules.window.saturating_sub(self.waited));
        let deadline = self
            .deadline
            .map(|deadline| deadline.saturating_sub(self.total));
        match (window, deadline) {
            (Some(window), Some(deadline)) => Some(window.min(deadline)),
            (window, deadline) => window.or(deadline),
        }
    }

    /// Records that `bytes` moved while waiting `waited`; fails when a window closed with too
    /// few bytes or the deadline passed.
    fn account(&mut self, waited: Duration, bytes: u64) -> Result<(), Stall> {
        self.moved = self.moved.saturating_add(bytes);
        self.waited = self.waited.saturating_add(waited);
        self.total = self.total.saturating_add(waited);
        if let Some(deadline) = self.deadline {
            if self.total >= deadline {
                return Err(Stall::Document { timeout: deadline });
            }
        }
        if self.rules.progress_enabled() && self.waited >= self.rules.window {
            if self.moved < self.rules.min_bytes {
                return Err(Stall::TooSlow {
                    min_bytes: self.rules.min_bytes,
                    window: self.rules.window,
                });
            }
            self.waited = Duration::ZERO;
            self.moved = 0;
        }
        Ok(())
    }

    /// The next chunk of `response`'s body, `None` at its end. A body that ends needs no
    /// more progress: the last, partial window is not judged.
    pub(crate) async fn chunk(
        &mut self,
        response: &mut Response,
    ) -> Result<Option<Bytes>, Interrupted> {
        let mut read = pin!(response.chunk());
        let mut mark = Instant::now();
        loop {
            let outcome = match self.budget() {
                None => Some(read.as_mut().await),
                Some(budget) => tokio::time::timeout(budget, read.as_mut()).await.ok(),
            };
            let now = Instant::now();
            let waited = now.saturating_duration_since(mark);
            mark = now;
            match outcome {
                Some(Ok(Some(chunk))) => {
                    self.account(waited, chunk.len() as u64)
                        .map_err(Interrupted::Stalled)?;
                    return Ok(Some(chunk));
                }
                Some(Ok(None)) => return Ok(None),
                Some(Err(error)) => return Err(Interrupted::Transport(error)),
                None => self.account(waited, 0).map_err(Interrupted::Stalled)?,
            }
        }
    }
}

/// How much of a request body the HTTP stack has taken, for the progress rule of uploads.
pub(crate) struct UploadCounter {
    length: u64,
    taken: AtomicU64,
    /// When the last byte was taken.
    finished: Mutex<Option<Instant>>,
}

impl UploadCounter {
    pub(crate) fn new(length: u64) -> Arc<UploadCounter> {
        Arc::new(UploadCounter {
            length,
            taken: AtomicU64::new(0),
            finished: Mutex::new((length == 0).then(Instant::now)),
        })
    }

    fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }

    fn finished(&self) -> Option<Instant> {
        *self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, bytes: u64) {
        let before = self.taken.fetch_add(bytes, Ordering::SeqCst);
        if before.saturating_add(bytes) >= self.length {
            let mut finished = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
            finished.get_or_insert_with(Instant::now);
        }
    }
}

/// The most bytes handed to the HTTP stack at once from a body in memory, so that its
/// progress is seen as it goes.
const PIECE: usize = 64 * 1024;

/// `bytes` as a stream of pieces, counted as the HTTP stack takes them.
pub(crate) fn counted_bytes(
    bytes: Bytes,
    counter: Arc<UploadCounter>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let pieces: Vec<Bytes> = (0..bytes.len())
        .step_by(PIECE)
        .map(|start| bytes.slice(start..bytes.len().min(start.saturating_add(PIECE))))
        .collect();
    counted(
        futures_util::stream::iter(pieces.into_iter().map(Ok)),
        counter,
    )
}

/// `stream`, each item counted as the HTTP stack takes it.
pub(crate) fn counted<S>(
    stream: S,
    counter: Arc<UploadCounter>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    stream.map(move |item| {
        if let Ok(chunk) = &item {
            counter.record(chunk.len() as u64);
        }
        item
    })
}

/// Waits for the answer to a request whose sending is `send`: while its body (counted by
/// `upload`) is being taken, by the progress rule; then, from when the body was complete
/// (or from now, without a body), at most [`ClientConfig::header_timeout`] for the headers.
/// The response comes back carrying `rules` in its extensions.
pub(crate) async fn answer<F>(
    rules: Rules,
    upload: Option<&UploadCounter>,
    send: F,
) -> Result<Response, Interrupted>
where
    F: Future<Output = Result<Response, reqwest::Error>>,
{
    let mut send = pin!(send);
    let started = Instant::now();
    let mut meter = rules.transfer();
    let mut mark = started;
    let mut taken = 0u64;
    let headers = nonzero(rules.headers);
    loop {
        let uploading = upload.filter(|upload| upload.finished().is_none());
        let budget = match uploading {
            // Without a progress rule, look again after a while (the header deadline
            // starts when the body is complete).
            Some(_) => meter
                .budget()
                .unwrap_or(rules.headers.max(Duration::from_secs(1))),
            None => match headers {
                Some(timeout) => header_deadline(upload, started, timeout)
                    .map_or(Duration::MAX, |deadline| {
                        deadline.saturating_duration_since(Instant::now())
                    }),
                None => Duration::MAX,
            },
        };
        match tokio::time::timeout(budget, send.as_mut()).await {
            Ok(Ok(mut response)) => {
                response.extensions_mut().insert(rules);
                return Ok(response);
            }
            Ok(Err(error)) => return Err(Interrupted::Transport(error)),
            Err(_) => {
                let now = Instant::now();
                match uploading {
                    Some(upload) => {
                        let now_taken = upload.taken();
                        meter
                            .account(
                                now.saturating_duration_since(mark),
                                now_taken.saturating_sub(taken),
                            )
                            .map_err(Interrupted::Stalled)?;
                        taken = now_taken;
                        mark = now;
                    }
                    None => {
                        if let Some(timeout) = headers {
                            if header_deadline(upload, started, timeout)
                                .is_some_and(|deadline| now >= deadline)
                            {
                                return Err(Interrupted::Stalled(Stall::Headers { timeout }));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// When the headers must have arrived: `timeout` after the body was complete (or after
/// `started`, without a body); `None` when that is past the end of time.
fn header_deadline(
    upload: Option<&UploadCounter>,
    started: Instant,
    timeout: Duration,
) -> Option<Instant> {
    let from = upload.and_then(UploadCounter::finished).unwrap_or(started);
    from.checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(min_bytes: u64, window_ms: u64, document_ms: u64) -> Rules {
        Rules {
            min_bytes,
            window: Duration::from_millis(window_ms),
            headers: Duration::from_secs(1),
            document: Duration::from_millis(document_ms),
        }
    }

    #[test]
    fn a_window_with_too_few_bytes_is_a_stall_and_a_good_one_starts_afresh() {
        let mut meter = rules(100, 1000, 0).transfer();
        assert_eq!(meter.budget(), Some(Duration::from_millis(1000)));
        meter.account(Duration::from_millis(600), 60).unwrap();
        assert_eq!(meter.budget(), Some(Duration::from_millis(400)));
        meter.account(Duration::from_millis(400), 40).unwrap();
        // A new window: the 100 bytes of the last one do not count for it.
        assert_eq!(meter.budget(), Some(Duration::from_millis(1000)));
        meter.account(Duration::from_millis(999), 99).unwrap();
        assert_eq!(
            meter.account(Duration::from_millis(1), 0),
            Err(Stall::TooSlow {
                min_bytes: 100,
                window: Duration::from_millis(1000)
            })
        );
    }

    #[test]
    fn the_document_deadline_counts_all_waiting_and_zero_turns_rules_off() {
        let mut meter = rules(1, 100, 250).document();
        meter.account(Duration::from_millis(100), 5).unwrap();
        meter.account(Duration::from_millis(100), 5).unwrap();
        assert_eq!(meter.budget(), Some(Duration::from_millis(50)));
        assert_eq!(
            meter.account(Duration::from_millis(50), 5),
            Err(Stall::Document {
                timeout: Duration::from_millis(250)
            })
        );
        let mut off = rules(0, 0, 0).document();
        assert_eq!(off.budget(), None);
        off.account(Duration::from_secs(1_000_000), 0).unwrap();
    }

    #[test]
    fn stalls_name_their_rule() {
        let text = Stall::TooSlow {
            min_bytes: 16384,
            window: Duration::from_secs(30),
        }
        .to_string();
        assert!(text.starts_with("less than 16384 bytes in 30 s"), "{text}");
        let text = Stall::Headers {
            timeout: Duration::from_millis(1500),
        }
        .to_string();
        assert!(
            text.contains("1500 ms") && text.contains("header_timeout"),
            "{text}"
        );
    }

    #[test]
    fn counters_finish_at_the_last_byte() {
        let counter = UploadCounter::new(10);
        counter.record(4);
        assert!(counter.finished().is_none());
        counter.record(6);
        assert!(counter.finished().is_some());
        assert_eq!(counter.taken(), 10);
        assert!(UploadCounter::new(0).finished().is_some());
    }
}
