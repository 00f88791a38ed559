//! A loopback HTTP/1.1 server for the faults wiremock cannot make: bodies cut mid-stream,
//! bodies without a length (chunked), Content-Length headers that lie, and connections that
//! stall (before the headers, right after them, mid-body). Each connection gets the next
//! canned [`RawResponse`] (the last one repeats); the request heads are recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer: bytes to write, then the connection is closed (or, when `hold_open`,
/// held open in silence until the server stops).
#[derive(Clone)]
pub(crate) struct RawResponse {
    bytes: Vec<u8>,
    hold_open: bool,
}

impl RawResponse {
    /// A status line and headers announcing `content_length`, and no body yet.
    pub(crate) fn head(status: u16, headers: &[(&str, &str)], content_length: usize) -> Self {
        let mut head = status_line(status, headers);
        head.push_str(&format!("Content-Length: {content_length}\r\n\r\n"));
        RawResponse {
            bytes: head.into_bytes(),
            hold_open: false,
        }
    }

    /// A complete answer whose Content-Length is the body's.
    pub(crate) fn full(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Self {
        RawResponse::head(status, headers, body.len()).then(body)
    }

    /// A 200 announcing the whole `body` but closing after `cut` bytes of it.
    pub(crate) fn cut(body: &[u8], cut: usize) -> Self {
        RawResponse::head(200, &[], body.len()).then(&body[..cut])
    }

    /// Like [`RawResponse::cut`], but the connection then stays open and silent.
    pub(crate) fn stalled(body: &[u8], cut: usize) -> Self {
        RawResponse::cut(body, cut).held_open()
    }

    /// A chunked answer (no Content-Length), in 64 KiB chunks.
    pub(crate) fn chunked(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut head = status_line(status, headers);
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut bytes = head.into_bytes();
        for chunk in body.chunks(64 * 1024) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        RawResponse {
            bytes,
            hold_open: false,
        }
    }

    /// Reads the request and answers nothing, keeping the connection open.
    pub(crate) fn silent() -> Self {
        RawResponse {
            bytes: Vec::new(),
            hold_open: true,
        }
    }

    /// These bytes, then `more` (whatever the announced length says).
    pub(crate) fn then(mut self, more: &[u8]) -> Self {
        self.bytes.extend_from_slice(more);
        self
    }

    /// These bytes, then the connection stays open and silent instead of being closed.
    pub(crate) fn held_open(self) -> Self {
        RawResponse {
            hold_open: true,
            ..self
        }
    }
}

/// The status line, `Connection: close` and `headers`, each line ended by CRLF.
fn status_line(status: u16, headers: &[(&str, &str)]) -> String {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

/// The value of the Range header in a recorded request head, if any.
pub(crate) fn range_header(request: &str) -> Option<String> {
    request.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("range")
            .then(|| value.trim().to_owned())
    })
}

/// Serves the canned responses in order, one per connection (the last one repeats),
/// recording each request head. Stopped when dropped.
pub(crate) struct RawServer {
    address: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    /// Binds a loopback port and starts serving `responses` (at least one).
    pub(crate) async fn start(responses: Vec<RawResponse>) -> RawServer {
        assert!(!responses.is_empty(), "a RawServer needs a response");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            let mut held_open = Vec::new();
            for index in 0.. {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                recorded
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let response = &responses[index.min(responses.len() - 1)];
                let _ = stream.write_all(&response.bytes).await;
                if response.hold_open {
                    held_open.push(stream);
                } else {
                    let _ = stream.shutdown().await;
                }
            }
        });
        RawServer {
            address,
            requests,
            task,
        }
    }

    /// `127.0.0.1:PORT`, for a reference or a mirror location.
    pub(crate) fn host(&self) -> String {
        self.address.to_string()
    }

    /// The request heads received so far, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[test]
fn raw_responses_are_well_formed() {
    let full = RawResponse::full(206, &[("Content-Range", "bytes 1-2/3")], b"ab").bytes;
    assert_eq!(
        String::from_utf8(full).unwrap(),
        "HTTP/1.1 206 Partial Content\r\nConnection: close\r\nContent-Range: bytes 1-2/3\r\nContent-Length: 2\r\n\r\nab"
    );
    let cut = RawResponse::cut(b"abcdef", 2).bytes;
    assert!(
        String::from_utf8(cut)
            .unwrap()
            .ends_with("Content-Length: 6\r\n\r\nab")
    );
    let chunked = RawResponse::chunked(200, &[], b"abc").bytes;
    assert!(
        String::from_utf8(chunked)
            .unwrap()
            .ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    );
}
