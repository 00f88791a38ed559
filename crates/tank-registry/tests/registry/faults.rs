//! Faults of the transport and of the headers that `mock.rs` does not cover: servers that
//! stall (before the headers, right after them, mid-body), Content-Length headers that lie
//! (shorter than the body, longer than it with the connection closed early), and manifests
//! with a missing or wrong `Docker-Content-Digest`.
//!
//! Stalls end by the client's read timeout (300 ms here); retry delays are not waited for
//! (the [`Sleeper`] records them and returns at once). Every client call runs under a
//! generous deadline so that a client that never gives up fails the test instead of
//! hanging it; the deadline is a bound, not a timed assertion.

use std::error::Error as _;
use std::future::Future;
use std::time::{Duration, Instant};

use tank_reference::Digest;
use tank_registry::{ClientConfig, CredentialStore, Error, media_type};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::raw::{RawResponse, RawServer, range_header};
use crate::support::{MAX_RETRIES, TestClient, manifest_body, reference_at, sha256};

const READ_TIMEOUT: Duration = Duration::from_millis(300);
/// Far above what any test here needs (the slowest waits out four 300 ms stalls).
const DEADLINE: Duration = Duration::from_secs(20);
const BLOB_LENGTH: usize = 20_000;
const CUT_AT: usize = 7_000;

// ---------------------------------------------------------------------------------------------
// Helpers

impl TestClient {
    /// An anonymous client with a 300 ms read timeout.
    fn timing_out() -> TestClient {
        TestClient::exact(ClientConfig {
            credentials: CredentialStore::anonymous(),
            read_timeout: READ_TIMEOUT,
            max_retries: MAX_RETRIES,
            retry_base_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(5),
            ..ClientConfig::default()
        })
    }

    /// Fetches blob `digest` of `team/app` from `host` into memory.
    async fn blob_at(
        &self,
        host: &str,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> (Result<u64, Error>, Vec<u8>) {
        let mut sink = Vec::new();
        let result = bounded(self.client.fetch_blob(
            &reference_at(host, "team/app:v1"),
            digest,
            expected_size,
            &mut sink,
        ))
        .await;
        (result, sink)
    }
}

/// Runs `work`, failing the test if it has not finished within [`DEADLINE`]; prints how
/// long it took (for the report, not asserted).
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| panic!("the client was still busy after {DEADLINE:?}"));
    eprintln!("client call took {:?}", started.elapsed());
    result
}

fn blob() -> (Vec<u8>, Digest) {
    let blob: Vec<u8> = (0..BLOB_LENGTH)
        .map(|index| (index * 13 % 241) as u8)
        .collect();
    let digest = sha256(&blob);
    (blob, digest)
}

fn blob_url(host: &str, digest: &Digest) -> String {
    format!("http://{host}/v2/team/app/blobs/{digest}")
}

/// The error and all its sources, joined as a CLI would print them.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_timeout(error: &Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(reqwest) = cause.downcast_ref::<reqwest::Error>() {
            if reqwest.is_timeout() {
                return true;
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Stalls

#[tokio::test]
async fn a_stall_right_after_the_headers_times_out_and_the_next_attempt_succeeds() {
    let (blob, digest) = blob();
    let server = RawServer::start(vec![
        RawResponse::head(200, &[], BLOB_LENGTH).held_open(),
        RawResponse::full(200, &[], &blob),
    ])
    .await;
    let test = TestClient::timing_out();

    let (result, sink) = test
        .blob_at(&server.host(), &digest, Some(BLOB_LENGTH as u64))
        .await;
    assert_eq!(
        result.expect("the second attempt works"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, blob);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        range_header(&requests[1]),
        None,
        "nothing had arrived, so nothing to resume from"
    );
    assert_eq!(test.retries(), 1);
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out_and_the_next_attempt_succeeds() {
    let (blob, digest) = blob();
    let server = RawServer::start(vec![
        RawResponse::silent(),
        RawResponse::full(200, &[], &blob),
    ])
    .await;
    let test = TestClient::timing_out();

    let (result, sink) = test.blob_at(&server.host(), &digest, None).await;
    assert_eq!(
        result.expect("the second attempt works"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, blob);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(test.retries(), 1);
}

#[tokio::test]
async fn a_blob_that_keeps_stalling_fails_with_a_timeout_naming_the_url() {
    let (blob, digest) = blob();
    // The first answer brings CUT_AT bytes, then every answer ignores the range and stalls
    // at the same place: no progress after the first attempt.
    let server = RawServer::start(vec![RawResponse::stalled(&blob, CUT_AT)]).await;
    let test = TestClient::timing_out();

    let (result, sink) = test
        .blob_at(&server.host(), &digest, Some(BLOB_LENGTH as u64))
        .await;
    let error = result.expect_err("a download that never ends fails");
    let url = blob_url(&server.host(), &digest);
    match &error {
        Error::Unreachable {
            url: named,
            attempts,
            ..
        } => {
            assert_eq!(named, &url);
            // One attempt made progress (the counter starts again), then MAX_RETRIES + 1
            // attempts without progress.
            assert_eq!(*attempts, MAX_RETRIES + 1);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let text = chain(&error);
    eprintln!("error: {text}");
    assert!(text.contains(&url), "{text}");
    assert!(
        is_timeout(&error) && text.contains("timed out"),
        "the cause is a timeout: {text}"
    );
    assert_eq!(server.requests().len(), MAX_RETRIES as usize + 1);
    for request in &server.requests()[1..] {
        assert_eq!(range_header(request), Some(format!("bytes={CUT_AT}-")));
    }
    assert_eq!(
        sink,
        blob[..CUT_AT],
        "nothing but the real prefix was written"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_fails_with_a_timeout_naming_the_url() {
    let (_, digest) = blob();
    let server = RawServer::start(vec![RawResponse::silent()]).await;
    let test = TestClient::timing_out();

    let (result, sink) = test.blob_at(&server.host(), &digest, None).await;
    let error = result.expect_err("a registry that never answers fails");
    let url = blob_url(&server.host(), &digest);
    assert!(
        matches!(&error, Error::Unreachable { url: named, attempts, .. } if named == &url && *attempts == MAX_RETRIES + 1),
        "{error:?}"
    );
    let text = chain(&error);
    eprintln!("error: {text}");
    assert!(text.contains(&server.host()), "{text}");
    assert!(
        is_timeout(&error) && text.contains("timed out"),
        "the cause is a timeout: {text}"
    );
    assert_eq!(server.requests().len(), MAX_RETRIES as usize + 1);
    assert!(sink.is_empty());
}

#[tokio::test]
async fn a_stalled_manifest_is_fetched_again_and_one_that_keeps_stalling_is_named() {
    let body = manifest_body("stall");
    let digest = sha256(&body);
    let digest_header = digest.to_string();
    let headers = [
        ("Content-Type", media_type::OCI_MANIFEST),
        ("Docker-Content-Digest", digest_header.as_str()),
    ];
    let half = RawResponse::head(200, &headers, body.len()).then(&body[..body.len() / 2]);
    let server = RawServer::start(vec![
        half.clone().held_open(),
        RawResponse::full(200, &headers, &body),
    ])
    .await;
    let test = TestClient::timing_out();

    let manifest = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .expect("the second attempt works");
    assert_eq!(manifest.digest(), &digest);
    assert_eq!(manifest.raw(), body.as_slice());
    assert_eq!(server.requests().len(), 2);

    let server = RawServer::start(vec![half.held_open()]).await;
    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .expect_err("a manifest that never ends fails");
    let url = format!("http://{}/v2/team/app/manifests/v1", server.host());
    assert!(
        matches!(&error, Error::Unreachable { url: named, attempts, .. } if named == &url && *attempts == MAX_RETRIES + 1),
        "{error:?}"
    );
    let text = chain(&error);
    eprintln!("error: {text}");
    assert!(
        is_timeout(&error) && text.contains("timed out"),
        "the cause is a timeout: {text}"
    );
    assert_eq!(server.requests().len(), MAX_RETRIES as usize + 1);
}

// ---------------------------------------------------------------------------------------------
// Lying Content-Length

#[tokio::test]
async fn a_content_length_shorter_than_the_body_never_gives_a_verified_blob() {
    let (blob, digest) = blob();
    let short = BLOB_LENGTH - 1000;
    // Content-Length says `short`, the server writes the whole blob and closes.
    let lying = RawResponse::head(200, &[], short).then(&blob);
    let test = TestClient::timing_out();

    // The manifest's size disagrees with the announced length: refused before any byte.
    let server = RawServer::start(vec![lying.clone()]).await;
    let (result, sink) = test
        .blob_at(&server.host(), &digest, Some(BLOB_LENGTH as u64))
        .await;
    let error = result.expect_err("the announced length is wrong");
    assert!(
        matches!(&error, Error::SizeMismatch { expected, actual, .. } if *expected == BLOB_LENGTH as u64 && *actual == short as u64),
        "{error:?}"
    );
    assert!(error.to_string().contains(&digest.to_string()), "{error}");
    assert!(sink.is_empty());

    // No size known: the client reads what Content-Length allows, and the digest refuses it.
    let server = RawServer::start(vec![lying.clone()]).await;
    let (result, sink) = test.blob_at(&server.host(), &digest, None).await;
    let error = result.expect_err("a truncated blob");
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &digest && actual == &sha256(&blob[..short])),
        "{error:?}"
    );
    assert_eq!(sink.len(), short);

    // A manifest that lies along with the server (size `short`): the digest still refuses it.
    let server = RawServer::start(vec![lying]).await;
    let (result, _) = test
        .blob_at(&server.host(), &digest, Some(short as u64))
        .await;
    let error = result.expect_err("a truncated blob");
    assert!(
        matches!(&error, Error::DigestMismatch { expected, .. } if expected == &digest),
        "{error:?}"
    );
    assert_eq!(test.retries(), 0, "content errors are not retried");
}

#[tokio::test]
async fn a_content_length_longer_than_the_body_with_an_early_close_resumes_or_fails() {
    let (blob, digest) = blob();
    let long = BLOB_LENGTH + 1000;
    // Content-Length says `long`; the server writes the real blob, then closes.
    let lying = RawResponse::head(200, &[], long).then(&blob);
    let test = TestClient::timing_out();

    // The manifest's size disagrees with the announced length: refused before any byte.
    let server = RawServer::start(vec![lying.clone()]).await;
    let (result, sink) = test
        .blob_at(&server.host(), &digest, Some(BLOB_LENGTH as u64))
        .await;
    let error = result.expect_err("the announced length is wrong");
    assert!(
        matches!(&error, Error::SizeMismatch { expected, actual, .. } if *expected == BLOB_LENGTH as u64 && *actual == long as u64),
        "{error:?}"
    );
    assert!(sink.is_empty());
    assert_eq!(server.requests().len(), 1);

    // No size known: the early close is a cut body; the next (honest) answer completes it.
    let content_range = format!("bytes {BLOB_LENGTH}-{}/{long}", long - 1);
    let server = RawServer::start(vec![
        lying.clone(),
        RawResponse::full(200, &[], &blob),
        // Never reached: the honest full answer ends the download.
        RawResponse::full(
            206,
            &[("Content-Range", content_range.as_str())],
            &[0u8; 1000],
        ),
    ])
    .await;
    let (result, sink) = test.blob_at(&server.host(), &digest, None).await;
    assert_eq!(
        result.expect("resumed through a full answer"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, blob);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        range_header(&requests[1]),
        Some(format!("bytes={BLOB_LENGTH}-"))
    );

    // A server that keeps lying ends in an error, never a verified blob.
    let server = RawServer::start(vec![lying]).await;
    let (result, sink) = test.blob_at(&server.host(), &digest, None).await;
    let error = result.expect_err("the body never reaches its announced length");
    assert!(
        matches!(&error, Error::Unreachable { url, .. } if url == &blob_url(&server.host(), &digest)),
        "{error:?}"
    );
    assert_eq!(sink, blob, "only the real bytes were written");
}

#[tokio::test]
async fn a_manifest_cut_by_a_short_content_length_is_refused() {
    let body = manifest_body("short");
    let digest = sha256(&body);
    let digest_header = digest.to_string();
    let lying = RawResponse::head(
        200,
        &[
            ("Content-Type", media_type::OCI_MANIFEST),
            ("Docker-Content-Digest", digest_header.as_str()),
        ],
        body.len() - 10,
    )
    .then(&body);
    let server = RawServer::start(vec![lying]).await;
    let test = TestClient::timing_out();

    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .expect_err("a truncated manifest");
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &digest && actual == &sha256(&body[..body.len() - 10])),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Docker-Content-Digest

#[tokio::test]
async fn a_manifest_by_tag_without_docker_content_digest_gets_its_computed_digest() {
    let registry = MockServer::start().await;
    let body = manifest_body("no header");
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(body.clone(), media_type::OCI_MANIFEST),
        )
        .mount(&registry)
        .await;
    let test = TestClient::timing_out();

    let manifest = bounded(test.client.fetch_manifest(&reference_at(
        &registry.address().to_string(),
        "team/app:v1",
    )))
    .await
    .expect("a manifest without the header is accepted");
    let requests = registry.received_requests().await.expect("recording is on");
    assert!(
        requests
            .iter()
            .all(|request| !request.headers.contains_key("docker-content-digest")),
        "the mock sent no digest header"
    );
    assert_eq!(manifest.digest(), &sha256(&body));
    assert_eq!(manifest.raw(), body.as_slice());
}

#[tokio::test]
async fn a_wrong_docker_content_digest_is_refused_naming_both_digests() {
    let registry = MockServer::start().await;
    let body = manifest_body("served");
    let claimed = sha256(&manifest_body("claimed"));
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body.clone(), media_type::OCI_MANIFEST)
                .insert_header("Docker-Content-Digest", claimed.to_string()),
        )
        .mount(&registry)
        .await;
    let test = TestClient::timing_out();
    let host = registry.address().to_string();

    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&host, "team/app:v1")),
    )
    .await
    .expect_err("the header and the bytes disagree");
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &claimed && actual == &sha256(&body)),
        "{error:?}"
    );
    let message = error.to_string();
    for needle in [
        claimed.to_string(),
        sha256(&body).to_string(),
        format!("http://{host}/v2/team/app/manifests/v1"),
        "Docker-Content-Digest".to_owned(),
    ] {
        assert!(message.contains(&needle), "{needle:?} not in {message:?}");
    }
    assert_eq!(test.retries(), 0, "a digest mismatch is not retried");
}
