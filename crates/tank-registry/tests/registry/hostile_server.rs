//! A loopback HTTP/1.1 server for the resource-bound tests (`faults_limits`,
//! `faults_progress`): it answers each request from a handler that sees the request head, and
//! can send bodies that never end (chunked or close-delimited, up to a bound), drip a body or
//! the response head one byte at a time, and read a request body at a drip. It counts the body
//! bytes it managed to write, so a test can tell how much a client let in before it hung up.
//!
//! Every connection runs on its own task and every endless or dripping write stops at a bound
//! or when the client goes away; the server stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most body bytes an endless answer writes before giving up (the client never stopped).
pub(crate) const ENDLESS_BOUND: u64 = 256 * 1024 * 1024;

/// How a body is sent.
#[derive(Clone)]
pub(crate) enum Body {
    /// These bytes, then the connection is closed.
    Bytes(Vec<u8>),
    /// Filler without end (up to [`ENDLESS_BOUND`]): in chunked encoding when `chunked`,
    /// else close-delimited.
    Endless {
        /// Chunked encoding (else the body ends when the connection closes).
        chunked: bool,
    },
    /// `fast` at once, then `slow` `step` bytes every `interval`, then close.
    Drip {
        /// Sent at once.
        fast: Vec<u8>,
        /// Sent a step at a time.
        slow: Vec<u8>,
        /// Bytes per step.
        step: usize,
        /// The pause before each step.
        interval: Duration,
    },
}

/// One answer: the status line and headers (each ended by CRLF, without the blank line),
/// sent at once or one byte every `head_drip`, then the body.
#[derive(Clone)]
pub(crate) struct Answer {
    head: String,
    head_drip: Option<Duration>,
    body: Body,
    read_drip: Option<Duration>,
}

impl Answer {
    /// `status` with `headers` and `body`; a `Content-Length` is added for [`Body::Bytes`]
    /// and [`Body::Drip`] (the whole length), `Transfer-Encoding: chunked` for a chunked
    /// endless body.
    pub(crate) fn new(status: u16, headers: &[(&str, &str)], body: Body) -> Answer {
        let mut head = format!("HTTP/1.1 {status} Whatever\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match &body {
            Body::Bytes(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
            Body::Drip { fast, slow, .. } => {
                head.push_str(&format!("Content-Length: {}\r\n", fast.len() + slow.len()))
            }
            Body::Endless { chunked: true } => head.push_str("Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        Answer {
            head,
            head_drip: None,
            body,
            read_drip: None,
        }
    }

    /// A complete answer with `body`.
    pub(crate) fn bytes(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        Answer::new(status, headers, Body::Bytes(body.to_vec()))
    }

    /// The head is sent one byte every `interval`.
    pub(crate) fn head_dripped(self, interval: Duration) -> Answer {
        Answer {
            head_drip: Some(interval),
            ..self
        }
    }

    /// The request body is read one byte every `interval` before answering.
    pub(crate) fn reading_at_a_drip(self, interval: Duration) -> Answer {
        Answer {
            read_drip: Some(interval),
            ..self
        }
    }
}

type Handler = dyn Fn(&str) -> Answer + Send + Sync;

/// The server. Stopped when dropped.
pub(crate) struct HostileServer {
    address: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    /// Binds a loopback port and answers every request with `handler(request head)`.
    pub(crate) async fn start(handler: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (recorded, sent_count, received_count) =
            (requests.clone(), sent.clone(), received.clone());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            // Bounded: no test here makes more than a few dozen requests.
            for _ in 0..200 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let recorded = recorded.clone();
                let sent = sent_count.clone();
                let received = received_count.clone();
                connections.spawn(async move {
                    serve(stream, &*handler, &recorded, &sent, &received).await;
                });
            }
        });
        HostileServer {
            address,
            requests,
            sent,
            received,
            task,
        }
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        self.address.to_string()
    }

    /// The request heads received so far, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Body bytes written to clients so far (all connections).
    pub(crate) fn body_bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Request body bytes read so far (all connections).
    pub(crate) fn body_bytes_received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

/// The value of header `name` in a request head.
pub(crate) fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

async fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    recorded: &Mutex<Vec<String>>,
    sent: &AtomicU64,
    received: &AtomicU64,
) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(at) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    recorded.lock().unwrap().push(text.clone());
    let answer = handler(&text);
    let length: u64 = header(&text, "content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut already = (head.len() - end) as u64;
    received.fetch_add(already, Ordering::SeqCst);
    match answer.read_drip {
        Some(interval) => {
            let mut byte = [0u8; 1];
            while already < length {
                tokio::time::sleep(interval).await;
                match stream.read(&mut byte).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        already += 1;
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        None => {
            while already < length {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => {
                        already += read as u64;
                        received.fetch_add(read as u64, Ordering::SeqCst);
                    }
                }
            }
        }
    }
    let head = format!("{}\r\n", answer.head).into_bytes();
    match answer.head_drip {
        Some(interval) => {
            for byte in head {
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        }
        None => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
        }
    }
    match answer.body {
        Body::Bytes(bytes) => {
            if stream.write_all(&bytes).await.is_ok() {
                sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
        }
        Body::Endless { chunked } => {
            let filler = vec![b'x'; 64 * 1024];
            let mut frame = Vec::new();
            if chunked {
                frame.extend_from_slice(format!("{:x}\r\n", filler.len()).as_bytes());
            }
            frame.extend_from_slice(&filler);
            if chunked {
                frame.extend_from_slice(b"\r\n");
            }
            let mut written = 0u64;
            while written < ENDLESS_BOUND {
                if stream.write_all(&frame).await.is_err() {
                    return;
                }
                written += filler.len() as u64;
                sent.fetch_add(filler.len() as u64, Ordering::SeqCst);
            }
        }
        Body::Drip {
            fast,
            slow,
            step,
            interval,
        } => {
            if stream.write_all(&fast).await.is_err() {
                return;
            }
            sent.fetch_add(fast.len() as u64, Ordering::SeqCst);
            for piece in slow.chunks(step.max(1)) {
                tokio::time::sleep(interval).await;
                if stream.write_all(piece).await.is_err() {
                    return;
                }
                sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        }
    }
    let _ = stream.shutdown().await;
}
