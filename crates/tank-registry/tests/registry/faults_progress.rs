//! Time is bounded by tank, never by the registry: the minimum-progress rule
//! ([`ClientConfig::min_progress_bytes`] per [`ClientConfig::progress_window`]), the header
//! deadline and the document deadline end attempts that a server keeps alive by dripping
//! bytes (which the read timeout, restarted by every byte, never ends). Here the rule is
//! 64 bytes per 300 ms and servers drip one byte every 100 ms; retry delays are recorded,
//! not waited for. Every call runs under a bound, so a client that never gives up fails the
//! test instead of hanging it.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tank_registry::{ClientConfig, CredentialStore, Error, PushBlobOptions, Stall, media_type};

use crate::hostile_server::{Answer, Body, HostileServer, header};
use crate::support::{TestClient, manifest_body, reference_at, sha256};

const MIN_BYTES: u64 = 64;
const WINDOW: Duration = Duration::from_millis(300);
const DRIP: Duration = Duration::from_millis(100);
const RETRIES: u32 = 2;
const DEADLINE: Duration = Duration::from_secs(9);
const TOO_SLOW: Stall = Stall::TooSlow {
    min_bytes: MIN_BYTES,
    window: WINDOW,
};

fn client(header_timeout: Duration, document_timeout: Duration) -> TestClient {
    TestClient::exact(ClientConfig {
        credentials: CredentialStore::anonymous(),
        max_retries: RETRIES,
        min_progress_bytes: MIN_BYTES,
        progress_window: WINDOW,
        header_timeout,
        document_timeout,
        ..ClientConfig::default()
    })
}

fn strict() -> TestClient {
    client(Duration::from_secs(2), Duration::from_secs(5))
}

async fn bounded<T>(work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| panic!("the client was still busy after {DEADLINE:?}"));
    eprintln!("client call took {:?}", started.elapsed());
    result
}

/// `body` in full at once for `fast` bytes, then one byte every [`DRIP`].
fn drip(fast: &[u8], slow: &[u8]) -> Body {
    Body::Drip {
        fast: fast.to_vec(),
        slow: slow.to_vec(),
        step: 1,
        interval: DRIP,
    }
}

fn assert_stalled(error: &Error, url: &str, stall: Stall, attempts: u32) {
    assert!(
        matches!(
            error,
            Error::Stalled { url: at, stall: which, attempts: made, .. }
                if at == url && *which == stall && *made == attempts
        ),
        "{error:?}"
    );
    let text = error.to_string();
    eprintln!("{text}");
    assert!(text.contains(url), "{text}");
}

#[tokio::test]
async fn a_dripping_manifest_fails_by_the_progress_rule_after_the_retries() {
    let body = manifest_body("drip");
    let server = HostileServer::start(move |_| {
        Answer::new(
            200,
            &[("Content-Type", media_type::OCI_MANIFEST)],
            drip(b"", &body),
        )
    })
    .await;
    let test = strict();
    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .unwrap_err();
    let url = format!("http://{}/v2/team/app/manifests/v1", server.host());
    assert_stalled(&error, &url, TOO_SLOW, RETRIES + 1);
    assert!(
        error
            .to_string()
            .contains("less than 64 bytes in 300 ms (the minimum-progress rule"),
        "{error}"
    );
    assert_eq!(server.requests().len(), RETRIES as usize + 1);
    assert_eq!(test.retries(), RETRIES as usize);
}

#[tokio::test]
async fn a_manifest_dripping_just_enough_ends_at_the_document_deadline() {
    // 400 bytes every 100 ms passes the rule (64 per 300 ms) but would take minutes.
    let body = vec![b' '; 400_000];
    let server = HostileServer::start(move |_| {
        Answer::new(
            200,
            &[("Content-Type", media_type::OCI_MANIFEST)],
            Body::Drip {
                fast: Vec::new(),
                slow: body.clone(),
                step: 400,
                interval: DRIP,
            },
        )
    })
    .await;
    let test = TestClient::exact(ClientConfig {
        credentials: CredentialStore::anonymous(),
        max_retries: 0,
        min_progress_bytes: MIN_BYTES,
        progress_window: WINDOW,
        document_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    });
    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .unwrap_err();
    let url = format!("http://{}/v2/team/app/manifests/v1", server.host());
    assert_stalled(
        &error,
        &url,
        Stall::Document {
            timeout: Duration::from_secs(1),
        },
        1,
    );
}

#[tokio::test]
async fn a_dripping_token_endpoint_fails_by_the_progress_rule() {
    let server = HostileServer::start(|head| {
        if head.starts_with("GET /token") {
            return Answer::new(
                200,
                &[("Content-Type", "application/json")],
                drip(b"", br#"{"token":"a token that arrives far too slowly"}"#),
            );
        }
        let host = header(head, "host").expect("a Host header");
        let challenge = format!("Bearer realm=\"http://{host}/token\",service=\"test\"");
        Answer::bytes(401, &[("WWW-Authenticate", &challenge)], b"")
    })
    .await;
    let test = strict();
    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .unwrap_err();
    let url = format!("http://{}/token", server.host());
    // The whole request (challenge, then token) is retried.
    assert_stalled(&error, &url, TOO_SLOW, RETRIES + 1);
}

#[tokio::test]
async fn a_blob_that_turns_to_a_drip_resumes_with_range_and_verifies() {
    let blob: Vec<u8> = (0..50_000u32).map(|index| (index % 251) as u8).collect();
    let digest = sha256(&blob);
    let half = 20_000;
    let served = blob.clone();
    let server = HostileServer::start(move |head| match header(head, "range") {
        None => Answer::new(200, &[], drip(&served[..half], &served[half..])),
        Some(range) => {
            let start: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .expect("an open range");
            let content_range = format!("bytes {start}-{}/{}", served.len() - 1, served.len());
            Answer::bytes(206, &[("Content-Range", &content_range)], &served[start..])
        }
    })
    .await;
    let test = strict();
    let mut sink = Vec::new();
    let written = bounded(test.client.fetch_blob(
        &reference_at(&server.host(), "team/app:v1"),
        &digest,
        Some(blob.len() as u64),
        &mut sink,
    ))
    .await
    .expect("the resumed download completes");
    assert_eq!(written, blob.len() as u64);
    assert_eq!(sink, blob);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let resumed_at: usize = header(&requests[1], "range")
        .expect("the retry asks for a range")
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(
        (half..blob.len()).contains(&resumed_at),
        "resumed at {resumed_at}"
    );
}

#[tokio::test]
async fn a_slow_but_steady_blob_passes_the_rule() {
    // 200 bytes every 100 ms: a step in any 300 ms window beats the 64-byte minimum, also
    // when a loaded machine stretches the server's pauses.
    let blob: Vec<u8> = (0..2_000u32).map(|index| (index % 7) as u8).collect();
    let digest = sha256(&blob);
    let served = blob.clone();
    let server = HostileServer::start(move |_| {
        Answer::new(
            200,
            &[],
            Body::Drip {
                fast: Vec::new(),
                slow: served.clone(),
                step: 200,
                interval: DRIP,
            },
        )
    })
    .await;
    let test = strict();
    let mut sink = Vec::new();
    bounded(test.client.fetch_blob(
        &reference_at(&server.host(), "team/app:v1"),
        &digest,
        Some(blob.len() as u64),
        &mut sink,
    ))
    .await
    .expect("a slow but steady transfer is not a stall");
    assert_eq!(sink, blob);
    assert_eq!(test.retries(), 0);
}

#[tokio::test]
async fn an_upload_the_server_reads_at_a_drip_fails_by_the_progress_rule() {
    // Larger than what the socket buffers and the HTTP stack take at once.
    let content = Bytes::from(vec![7u8; 24 * 1024 * 1024]);
    let digest = sha256(&content);
    let server = HostileServer::start(|head| {
        if head.starts_with("HEAD ") {
            Answer::bytes(404, &[], b"")
        } else if head.starts_with("POST ") {
            Answer::bytes(
                202,
                &[("Location", "/v2/team/app/blobs/uploads/session")],
                b"",
            )
        } else {
            Answer::bytes(201, &[], b"").reading_at_a_drip(DRIP)
        }
    })
    .await;
    let test = strict();
    let error = bounded(test.client.push_blob(
        &reference_at(&server.host(), "team/app:v1"),
        &digest,
        content.len() as u64,
        &content,
        &PushBlobOptions::default(),
    ))
    .await
    .unwrap_err();
    // Errors show URLs without their query.
    let url = format!("http://{}/v2/team/app/blobs/uploads/session", server.host());
    assert_stalled(&error, &url, TOO_SLOW, RETRIES + 1);
    let puts = server
        .requests()
        .iter()
        .filter(|head| head.starts_with("PUT "))
        .count();
    assert_eq!(puts, RETRIES as usize + 1);
    assert!(server.body_bytes_received() < 3 * content.len() as u64);
}

#[tokio::test]
async fn a_chunk_the_server_reads_at_a_drip_fails_by_the_progress_rule() {
    let content = Bytes::from(vec![9u8; 24 * 1024 * 1024]);
    let digest = sha256(&content);
    let server = HostileServer::start(|head| {
        if head.starts_with("HEAD ") {
            Answer::bytes(404, &[], b"")
        } else if head.starts_with("POST ") {
            Answer::bytes(
                202,
                &[("Location", "/v2/team/app/blobs/uploads/session")],
                b"",
            )
        } else if head.starts_with("GET ") {
            // Where the upload stands: nothing arrived.
            Answer::bytes(204, &[("Range", "0-0")], b"")
        } else {
            Answer::bytes(202, &[], b"").reading_at_a_drip(DRIP)
        }
    })
    .await;
    let test = strict();
    let options = PushBlobOptions {
        chunk_size: Some(content.len() as u64 / 2),
        ..PushBlobOptions::default()
    };
    let error = bounded(test.client.push_blob(
        &reference_at(&server.host(), "team/app:v1"),
        &digest,
        content.len() as u64,
        &content,
        &options,
    ))
    .await
    .unwrap_err();
    let url = format!("http://{}/v2/team/app/blobs/uploads/session", server.host());
    assert_stalled(&error, &url, TOO_SLOW, RETRIES + 1);
    let patches = server
        .requests()
        .iter()
        .filter(|head| head.starts_with("PATCH "))
        .count();
    assert_eq!(patches, RETRIES as usize + 1);
}

#[tokio::test]
async fn response_headers_sent_at_a_drip_end_at_the_header_deadline() {
    let server = HostileServer::start(|_| {
        Answer::bytes(
            200,
            &[("Content-Type", media_type::OCI_MANIFEST)],
            &manifest_body("x"),
        )
        .head_dripped(DRIP)
    })
    .await;
    let timeout = Duration::from_millis(700);
    let test = TestClient::exact(ClientConfig {
        credentials: CredentialStore::anonymous(),
        max_retries: 1,
        header_timeout: timeout,
        ..ClientConfig::default()
    });
    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .unwrap_err();
    let url = format!("http://{}/v2/team/app/manifests/v1", server.host());
    assert_stalled(&error, &url, Stall::Headers { timeout }, 2);
}
