//! Mirror fallback in the registry client, against wiremock servers (and a tiny raw HTTP
//! server where a body must be cut mid-stream): each test configures mirrors and a primary
//! location, makes one source misbehave, and asserts both the outcome and what every server
//! received.
//!
//! Retry delays are never waited for: the [`Sleeper`] records them and returns at once, so
//! the tests count the retries the client made. Every client call runs under a generous
//! deadline so that a client that never gives up fails the test instead of hanging it (a
//! bound, not a timed assertion).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use tank_reference::{Digest, Reference};
use tank_registry::{ClientConfig, CredentialStore, Error, Mirror, Registries, media_type};
use tokio::net::TcpListener;
use wiremock::matchers::{basic_auth, bearer_token, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::raw::{RawResponse, RawServer, range_header};
use crate::support::{
    MAX_RETRIES, TestClient, header_of, host, manifest_body, manifest_response, reference_at,
    requests, sha256,
};

const DEADLINE: Duration = Duration::from_secs(30);
const BLOB_LENGTH: usize = 10_000;
const CUT_AT: usize = 4_000;
const BLOB_LIMIT: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Helpers

impl TestClient {
    /// An anonymous client with `registries`.
    fn mirrored(registries: Registries) -> TestClient {
        TestClient::mirrored_with_credentials(registries, CredentialStore::anonymous())
    }

    /// A client with `registries` and `credentials`.
    fn mirrored_with_credentials(
        registries: Registries,
        credentials: CredentialStore,
    ) -> TestClient {
        TestClient::exact(ClientConfig {
            registries,
            credentials,
            max_retries: MAX_RETRIES,
            ..ClientConfig::default()
        })
    }

    async fn blob(&self, reference: &Reference, digest: &Digest) -> (Result<u64, Error>, Vec<u8>) {
        let mut sink = Vec::new();
        let result =
            bounded(
                self.client
                    .fetch_blob(reference, digest, Some(BLOB_LENGTH as u64), &mut sink),
            )
            .await;
        (result, sink)
    }
}

/// Runs `work`, failing the test if it has not finished within [`DEADLINE`].
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| panic!("the client was still busy after {DEADLINE:?}"))
}

fn conf(text: &str) -> Registries {
    Registries::parse(text, Path::new("test.conf"))
        .unwrap_or_else(|error| panic!("{text}\nshould parse: {error}"))
}

/// One `[[registry]]` for `upstream` with `mirrors` (`location` lines and options each).
fn upstream_with_mirrors(upstream: &str, mirrors: &[&str]) -> Registries {
    let mut text = format!("[[registry]]\nlocation = \"{upstream}\"\n");
    for mirror in mirrors {
        text.push_str(&format!("[[registry.mirror]]\n{mirror}\n"));
    }
    conf(&text)
}

fn blob() -> (Vec<u8>, Digest) {
    let blob: Vec<u8> = (0..BLOB_LENGTH)
        .map(|index| (index * 11 % 239) as u8)
        .collect();
    let digest = sha256(&blob);
    (blob, digest)
}

/// The same length as `blob`, other bytes.
fn lie(blob: &[u8]) -> Vec<u8> {
    blob.iter().map(|byte| byte.wrapping_add(1)).collect()
}

fn not_found(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_raw(
        format!(r#"{{"errors":[{{"code":"{code}","message":"not here"}}]}}"#),
        "application/json",
    )
}

async fn serve(server: &MockServer, verb: &str, at: &str, response: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(response)
        .mount(server)
        .await;
}

/// `METHOD /path` of each request a server received.
async fn lines(server: &MockServer) -> Vec<String> {
    requests(server)
        .await
        .iter()
        .map(|request| format!("{} {}", request.method, request.url.path()))
        .collect()
}

/// A loopback address nothing listens on (bound, then released).
async fn refused_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().unwrap();
    drop(listener);
    address.to_string()
}

// ---------------------------------------------------------------------------------------------
// Manifests

#[tokio::test]
async fn a_failing_mirror_is_retried_once_a_missing_one_asked_once_then_the_upstream_serves() {
    let failing = MockServer::start().await;
    let missing = MockServer::start().await;
    let upstream = MockServer::start().await;
    let body = manifest_body("upstream");
    serve(
        &failing,
        "GET",
        "/v2/one/team/app/manifests/v1",
        ResponseTemplate::new(500),
    )
    .await;
    serve(
        &missing,
        "GET",
        "/v2/two/team/app/manifests/v1",
        not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    serve(
        &upstream,
        "GET",
        "/v2/team/app/manifests/v1",
        manifest_response(&body),
    )
    .await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[
            &format!("location = \"{}/one\"", host(&failing)),
            &format!("location = \"{}/two\"", host(&missing)),
        ],
    ));

    let manifest = bounded(
        test.client
            .fetch_manifest(&reference_at(&host(&upstream), "team/app:v1")),
    )
    .await
    .expect("the upstream serves the manifest");
    assert_eq!(manifest.digest(), &sha256(&body));
    assert_eq!(
        lines(&failing).await,
        ["GET /v2/one/team/app/manifests/v1"; 2],
        "a mirror gets one retry, not the configured {MAX_RETRIES}"
    );
    assert_eq!(
        lines(&missing).await,
        ["GET /v2/two/team/app/manifests/v1"],
        "not found is not retried"
    );
    assert_eq!(lines(&upstream).await, ["GET /v2/team/app/manifests/v1"]);
    assert_eq!(test.retries(), 1, "only the failing mirror was retried");
}

#[tokio::test]
async fn a_mirror_refusing_connections_falls_back_to_the_upstream() {
    let upstream = MockServer::start().await;
    let (bytes, digest) = blob();
    let body = manifest_body("upstream");
    serve(
        &upstream,
        "GET",
        "/v2/team/app/manifests/v1",
        manifest_response(&body),
    )
    .await;
    serve(
        &upstream,
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    let dead = refused_address().await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{dead}/cache\"")],
    ));
    let image = reference_at(&host(&upstream), "team/app:v1");

    let manifest = bounded(test.client.fetch_manifest(&image))
        .await
        .expect("the upstream serves the manifest");
    assert_eq!(manifest.digest(), &sha256(&body));
    assert_eq!(
        test.retries(),
        1,
        "the dead mirror is tried twice, not more"
    );

    let (result, sink) = test.blob(&image, &digest).await;
    assert_eq!(
        result.expect("the upstream serves the blob"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, bytes);
    assert_eq!(test.retries(), 2);
    assert_eq!(
        lines(&upstream).await,
        [
            "GET /v2/team/app/manifests/v1".to_owned(),
            format!("GET /v2/team/app/blobs/{digest}")
        ]
    );
}

#[tokio::test]
async fn a_manifest_with_a_wrong_digest_at_the_mirror_is_fetched_from_the_upstream() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let fresh = manifest_body("fresh");
    let stale = manifest_body("stale");
    let digest = sha256(&fresh);
    // By tag: the mirror's Docker-Content-Digest does not match the bytes it sends.
    serve(
        &mirror,
        "GET",
        "/v2/cache/team/app/manifests/v1",
        manifest_response(&stale).insert_header("Docker-Content-Digest", digest.to_string()),
    )
    .await;
    // By digest: the mirror sends other bytes (without Docker-Content-Digest).
    serve(
        &mirror,
        "GET",
        &format!("/v2/cache/team/app/manifests/{digest}"),
        manifest_response(&stale),
    )
    .await;
    for selector in ["v1".to_owned(), digest.to_string()] {
        serve(
            &upstream,
            "GET",
            &format!("/v2/team/app/manifests/{selector}"),
            manifest_response(&fresh),
        )
        .await;
    }
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", host(&mirror))],
    ));

    let by_tag = bounded(
        test.client
            .fetch_manifest(&reference_at(&host(&upstream), "team/app:v1")),
    )
    .await
    .expect("the upstream serves the tag");
    assert_eq!(by_tag.digest(), &digest);
    assert_eq!(by_tag.raw(), &fresh[..]);

    let by_digest = bounded(test.client.fetch_manifest(&reference_at(
        &host(&upstream),
        &format!("team/app@{digest}"),
    )))
    .await
    .expect("the upstream serves the digest");
    assert_eq!(by_digest.digest(), &digest);
    assert_eq!(by_digest.raw(), &fresh[..]);

    assert_eq!(
        lines(&mirror).await,
        [
            "GET /v2/cache/team/app/manifests/v1".to_owned(),
            format!("GET /v2/cache/team/app/manifests/{digest}")
        ],
        "wrong bytes are not retried at the mirror"
    );
    assert_eq!(
        lines(&upstream).await,
        [
            "GET /v2/team/app/manifests/v1".to_owned(),
            format!("GET /v2/team/app/manifests/{digest}")
        ]
    );
    assert_eq!(test.retries(), 0);
}

// ---------------------------------------------------------------------------------------------
// Blobs

#[tokio::test]
async fn a_blob_served_by_the_mirror_never_reaches_the_upstream() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let (bytes, digest) = blob();
    serve(
        &mirror,
        "GET",
        &format!("/v2/cache/team/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    let mut registries = Registries::none();
    registries
        .add_mirror(
            None,
            Mirror::new(&format!("{}/cache", host(&mirror))).unwrap(),
        )
        .unwrap();
    let test = TestClient::mirrored(registries);

    let (result, sink) = test
        .blob(&reference_at(&host(&upstream), "team/app:v1"), &digest)
        .await;
    assert_eq!(result.expect("the mirror serves it"), BLOB_LENGTH as u64);
    assert_eq!(sink, bytes);
    assert_eq!(
        lines(&mirror).await,
        [format!("GET /v2/cache/team/app/blobs/{digest}")]
    );
    assert!(requests(&upstream).await.is_empty());
    assert_eq!(test.retries(), 0);
}

#[tokio::test]
async fn a_blob_cut_at_the_mirror_continues_at_the_upstream_with_range() {
    let (bytes, digest) = blob();
    // Every answer of the mirror announces the whole blob and closes after CUT_AT bytes.
    let mirror = RawServer::start(vec![RawResponse::cut(&bytes, CUT_AT)]).await;
    let upstream = MockServer::start().await;
    let range = format!("bytes={CUT_AT}-");
    let content_range = format!("bytes {CUT_AT}-{}/{BLOB_LENGTH}", BLOB_LENGTH - 1);
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/blobs/{digest}")))
        .and(header("range", range.as_str()))
        .respond_with(
            ResponseTemplate::new(206)
                .insert_header("Content-Range", content_range.as_str())
                .set_body_raw(bytes[CUT_AT..].to_vec(), "application/octet-stream"),
        )
        .mount(&upstream)
        .await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", mirror.host())],
    ));

    let (result, sink) = test
        .blob(&reference_at(&host(&upstream), "team/app:v1"), &digest)
        .await;
    assert_eq!(result.expect("mirror then upstream"), BLOB_LENGTH as u64);
    assert_eq!(sha256(&sink), digest);
    assert_eq!(sink, bytes);

    let at_mirror = mirror.requests();
    assert_eq!(at_mirror.len(), 2, "the mirror's one retry: {at_mirror:?}");
    assert!(at_mirror[0].starts_with(&format!("GET /v2/cache/team/app/blobs/{digest} ")));
    assert_eq!(range_header(&at_mirror[0]), None);
    assert_eq!(range_header(&at_mirror[1]), Some(range.clone()));
    let at_upstream = requests(&upstream).await;
    assert_eq!(at_upstream.len(), 1);
    assert_eq!(
        at_upstream[0].url.path(),
        format!("/v2/team/app/blobs/{digest}")
    );
    assert_eq!(header_of(&at_upstream[0], "range"), Some(range));
    assert_eq!(test.retries(), 1);
}

#[tokio::test]
async fn a_lying_mirror_is_named_then_skipped_for_that_blob() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let (bytes, digest) = blob();
    let blob_at_mirror = format!("/v2/cache/team/app/blobs/{digest}");
    serve(
        &mirror,
        "GET",
        &blob_at_mirror,
        ResponseTemplate::new(200).set_body_raw(lie(&bytes), "application/octet-stream"),
    )
    .await;
    serve(
        &upstream,
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    let registries = upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", host(&mirror))],
    );
    let test = TestClient::mirrored(registries.clone());
    let image = reference_at(&host(&upstream), "team/app:v1");

    let (result, _) = test.blob(&image, &digest).await;
    match result {
        Err(Error::DigestMismatch {
            what,
            expected,
            actual,
        }) => {
            assert_eq!(expected, digest);
            assert_eq!(actual, sha256(&lie(&bytes)));
            assert!(
                what.contains(&format!("{}/cache/team/app", host(&mirror))),
                "names the mirror: {what}"
            );
            assert!(
                !what.contains(&host(&upstream)),
                "the upstream sent nothing: {what}"
            );
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(lines(&mirror).await, [format!("GET {blob_at_mirror}")]);
    assert!(requests(&upstream).await.is_empty());

    let (result, sink) = test.blob(&image, &digest).await;
    assert_eq!(result.expect("the upstream serves it"), BLOB_LENGTH as u64);
    assert_eq!(sink, bytes);
    assert_eq!(
        requests(&mirror).await.len(),
        1,
        "the distrusted mirror is not asked again"
    );
    assert_eq!(requests(&upstream).await.len(), 1);

    // fetch_blob_bytes starts over by itself once the mirror is distrusted.
    let fresh = TestClient::mirrored(registries);
    let fetched = bounded(fresh.client.fetch_blob_bytes(
        &image,
        &digest,
        Some(BLOB_LENGTH as u64),
        BLOB_LIMIT,
    ))
    .await
    .expect("one call succeeds");
    assert_eq!(fetched, bytes);
    assert_eq!(
        requests(&mirror).await.len(),
        2,
        "one request from the fresh client"
    );
    assert_eq!(requests(&upstream).await.len(), 2);
    assert_eq!(test.retries() + fresh.retries(), 0);
}

#[tokio::test]
async fn a_mirror_whose_half_was_wrong_is_distrusted_although_the_upstream_finished() {
    let (bytes, digest) = blob();
    let wrong = lie(&bytes);
    let mirror = RawServer::start(vec![RawResponse::cut(&wrong, CUT_AT)]).await;
    let upstream = MockServer::start().await;
    let content_range = format!("bytes {CUT_AT}-{}/{BLOB_LENGTH}", BLOB_LENGTH - 1);
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/blobs/{digest}")))
        .and(header("range", format!("bytes={CUT_AT}-").as_str()))
        .respond_with(
            ResponseTemplate::new(206)
                .insert_header("Content-Range", content_range.as_str())
                .set_body_raw(bytes[CUT_AT..].to_vec(), "application/octet-stream"),
        )
        .with_priority(1)
        .mount(&upstream)
        .await;
    serve(
        &upstream,
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", mirror.host())],
    ));
    let image = reference_at(&host(&upstream), "team/app:v1");

    let (result, _) = test.blob(&image, &digest).await;
    match result {
        Err(Error::DigestMismatch { what, .. }) => {
            assert!(
                what.contains(&format!("{}/cache/team/app", mirror.host()))
                    && what.contains(&format!("then {}/team/app", host(&upstream))),
                "names both sources: {what}"
            );
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(mirror.requests().len(), 2);

    let (result, sink) = test.blob(&image, &digest).await;
    assert_eq!(result.expect("the upstream alone"), BLOB_LENGTH as u64);
    assert_eq!(sink, bytes);
    assert_eq!(mirror.requests().len(), 2, "the mirror is not asked again");
    let ranges: Vec<Option<String>> = requests(&upstream)
        .await
        .iter()
        .map(|request| header_of(request, "range"))
        .collect();
    assert_eq!(ranges, [Some(format!("bytes={CUT_AT}-")), None]);
}

#[tokio::test]
async fn wrong_bytes_from_the_upstream_distrust_no_mirror_and_are_fetched_once() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let (bytes, digest) = blob();
    serve(
        &mirror,
        "GET",
        &format!("/v2/cache/team/app/blobs/{digest}"),
        not_found("BLOB_UNKNOWN"),
    )
    .await;
    serve(
        &upstream,
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(lie(&bytes), "application/octet-stream"),
    )
    .await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", host(&mirror))],
    ));
    let image = reference_at(&host(&upstream), "team/app:v1");

    for attempt in 1..=2 {
        let (result, _) = test.blob(&image, &digest).await;
        match result {
            Err(Error::DigestMismatch { what, .. }) => assert!(
                what.contains(&format!("from {}/team/app", host(&upstream)))
                    && !what.contains(&host(&mirror)),
                "names the upstream only: {what}"
            ),
            other => panic!("expected DigestMismatch, got {other:?}"),
        }
        assert_eq!(
            requests(&mirror).await.len(),
            attempt,
            "a mirror that sent nothing is not distrusted"
        );
        assert_eq!(requests(&upstream).await.len(), attempt);
    }

    // No mirror wrote a byte, so no mirror was distrusted: starting over could only fetch
    // the same wrong bytes from the same place again.
    let error = bounded(test.client.fetch_blob_bytes(
        &image,
        &digest,
        Some(BLOB_LENGTH as u64),
        BLOB_LIMIT,
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error:?}");
    assert_eq!(
        requests(&upstream).await.len(),
        3,
        "fetch_blob_bytes starts over only when a mirror was distrusted"
    );
}

#[tokio::test]
async fn a_mirror_asking_for_credentials_it_has_none_for_falls_back() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let body = manifest_body("public");
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="m""#),
        )
        .mount(&mirror)
        .await;
    serve(
        &upstream,
        "GET",
        "/v2/team/app/manifests/v1",
        manifest_response(&body),
    )
    .await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", host(&mirror))],
    ));

    let manifest = bounded(
        test.client
            .fetch_manifest(&reference_at(&host(&upstream), "team/app:v1")),
    )
    .await
    .expect("the anonymous upstream serves it");
    assert_eq!(manifest.digest(), &sha256(&body));
    assert_eq!(
        lines(&mirror).await,
        ["GET /v2/cache/team/app/manifests/v1"],
        "a refusal is not retried"
    );
    assert_eq!(lines(&upstream).await, ["GET /v2/team/app/manifests/v1"]);
    assert_eq!(test.retries(), 0);
}

// ---------------------------------------------------------------------------------------------
// Which requests a mirror gets

#[tokio::test]
async fn a_digest_only_mirror_never_resolves_a_tag_but_serves_blobs_and_digests() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let (bytes, digest) = blob();
    let body = manifest_body("image");
    let manifest_digest = sha256(&body);
    serve(
        &mirror,
        "GET",
        "/v2/cache/team/app/manifests/v1",
        manifest_response(&manifest_body("stale")),
    )
    .await;
    serve(
        &mirror,
        "GET",
        &format!("/v2/cache/team/app/manifests/{manifest_digest}"),
        manifest_response(&body),
    )
    .await;
    serve(
        &mirror,
        "GET",
        &format!("/v2/cache/team/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    serve(
        &upstream,
        "GET",
        "/v2/team/app/manifests/v1",
        manifest_response(&body),
    )
    .await;
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!(
            "location = \"{}/cache\"\npull-from-mirror = \"digest-only\"",
            host(&mirror)
        )],
    ));
    let image = reference_at(&host(&upstream), "team/app:v1");

    let manifest = bounded(test.client.fetch_manifest(&image))
        .await
        .expect("the upstream resolves the tag");
    assert_eq!(manifest.digest(), &manifest_digest);
    assert!(
        requests(&mirror).await.is_empty(),
        "a tag never goes to a digest-only mirror"
    );

    let by_digest = bounded(
        test.client
            .fetch_manifest_by_digest(&image, &manifest_digest),
    )
    .await
    .expect("the mirror serves the digest");
    assert_eq!(by_digest.digest(), &manifest_digest);
    let (result, sink) = test.blob(&image, &digest).await;
    assert_eq!(
        result.expect("the mirror serves the blob"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, bytes);

    assert_eq!(
        lines(&mirror).await,
        [
            format!("GET /v2/cache/team/app/manifests/{manifest_digest}"),
            format!("GET /v2/cache/team/app/blobs/{digest}")
        ]
    );
    assert_eq!(lines(&upstream).await, ["GET /v2/team/app/manifests/v1"]);
}

#[tokio::test]
async fn each_host_gets_only_its_own_credentials() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let (bytes, digest) = blob();
    let body = manifest_body("private");
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let challenge = || {
        ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="registry""#)
    };
    // The mirror: m/pm; it has the blob but not the manifest.
    Mock::given(method("GET"))
        .and(path(format!("/v2/cache/team/app/blobs/{digest}")))
        .and(basic_auth("m", "pm"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
        )
        .with_priority(1)
        .mount(&mirror)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/cache/team/app/manifests/v1"))
        .and(basic_auth("m", "pm"))
        .respond_with(not_found("MANIFEST_UNKNOWN"))
        .with_priority(1)
        .mount(&mirror)
        .await;
    Mock::given(method("GET"))
        .respond_with(challenge())
        .with_priority(10)
        .mount(&mirror)
        .await;
    // The upstream: u/pu.
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .and(basic_auth("u", "pu"))
        .respond_with(manifest_response(&body))
        .with_priority(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .respond_with(challenge())
        .with_priority(10)
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let encode = |pair: &str| base64::engine::general_purpose::STANDARD.encode(pair);
    let document = serde_json::json!({ "auths": {
        host(&mirror): { "auth": encode("m:pm") },
        host(&upstream): { "auth": encode("u:pu") },
    }});
    std::fs::write(&config, serde_json::to_vec(&document).unwrap()).unwrap();
    let test = TestClient::mirrored_with_credentials(
        upstream_with_mirrors(
            &host(&upstream),
            &[&format!("location = \"{}/cache\"", host(&mirror))],
        ),
        CredentialStore::from_files(Some(config), vec![]),
    );
    let image = reference_at(&host(&upstream), "team/app:v1");

    let manifest = bounded(test.client.fetch_manifest(&image))
        .await
        .expect("the upstream serves the manifest");
    assert_eq!(manifest.digest(), &sha256(&body));
    let (result, sink) = test.blob(&image, &digest).await;
    assert_eq!(
        result.expect("the mirror serves the blob"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, bytes);

    let sent = |requests: Vec<Request>| -> Vec<(String, Option<String>)> {
        requests
            .iter()
            .map(|request| {
                (
                    request.url.path().to_owned(),
                    header_of(request, "authorization"),
                )
            })
            .collect()
    };
    assert_eq!(
        sent(requests(&mirror).await),
        [
            ("/v2/cache/team/app/manifests/v1".to_owned(), None),
            (
                "/v2/cache/team/app/manifests/v1".to_owned(),
                Some(basic("m", "pm"))
            ),
            (
                format!("/v2/cache/team/app/blobs/{digest}"),
                Some(basic("m", "pm"))
            ),
        ]
    );
    assert_eq!(
        sent(requests(&upstream).await),
        [
            ("/v2/team/app/manifests/v1".to_owned(), None),
            (
                "/v2/team/app/manifests/v1".to_owned(),
                Some(basic("u", "pu"))
            ),
        ]
    );
}

#[tokio::test]
async fn each_host_gets_only_its_own_bearer_token_for_its_own_scope() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let body = manifest_body("tokens");
    for (server, realm_path, token, found) in [
        (
            &mirror,
            "/mirror-token",
            "tok-m",
            not_found("MANIFEST_UNKNOWN"),
        ),
        (
            &upstream,
            "/upstream-token",
            "tok-u",
            manifest_response(&body),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(realm_path))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": token })),
            )
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(bearer_token(token))
            .respond_with(found)
            .with_priority(1)
            .mount(server)
            .await;
        let challenge = format!(r#"Bearer realm="{}{realm_path}",service="s""#, server.uri());
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str()),
            )
            .with_priority(10)
            .mount(server)
            .await;
    }
    let test = TestClient::mirrored(upstream_with_mirrors(
        &host(&upstream),
        &[&format!("location = \"{}/cache\"", host(&mirror))],
    ));

    let manifest = bounded(
        test.client
            .fetch_manifest(&reference_at(&host(&upstream), "team/app:v1")),
    )
    .await
    .expect("the upstream serves it with its token");
    assert_eq!(manifest.digest(), &sha256(&body));
    let seen = |requests: Vec<Request>| -> Vec<(String, Option<String>, Option<String>)> {
        requests
            .iter()
            .map(|request| {
                let scope = request
                    .url
                    .query_pairs()
                    .find(|(key, _)| key == "scope")
                    .map(|(_, value)| value.into_owned());
                (
                    request.url.path().to_owned(),
                    header_of(request, "authorization"),
                    scope,
                )
            })
            .collect()
    };
    let manifest_at_mirror = "/v2/cache/team/app/manifests/v1".to_owned();
    assert_eq!(
        seen(requests(&mirror).await),
        [
            (manifest_at_mirror.clone(), None, None),
            (
                "/mirror-token".to_owned(),
                None,
                Some("repository:cache/team/app:pull".to_owned())
            ),
            (manifest_at_mirror, Some("Bearer tok-m".to_owned()), None),
        ]
    );
    let manifest_at_upstream = "/v2/team/app/manifests/v1".to_owned();
    assert_eq!(
        seen(requests(&upstream).await),
        [
            (manifest_at_upstream.clone(), None, None),
            (
                "/upstream-token".to_owned(),
                None,
                Some("repository:team/app:pull".to_owned())
            ),
            (manifest_at_upstream, Some("Bearer tok-u".to_owned()), None),
        ]
    );
}

#[tokio::test]
async fn a_blocked_name_is_refused_before_any_request() {
    let mirror = MockServer::start().await;
    let upstream = MockServer::start().await;
    let (_, digest) = blob();
    let test = TestClient::mirrored(conf(&format!(
        "[[registry]]\nprefix = \"{up}/team\"\nlocation = \"{up}/team\"\nblocked = true\n\
         [[registry.mirror]]\nlocation = \"{mirror}/cache\"\n",
        up = host(&upstream),
        mirror = host(&mirror),
    )));
    let image = reference_at(&host(&upstream), "team/app:v1");
    let blocked = |error: Error| match error {
        Error::Blocked { name, prefix } => {
            assert_eq!(name, image.to_string());
            assert_eq!(prefix, format!("{}/team", host(&upstream)));
        }
        other => panic!("expected Blocked, got {other:?}"),
    };

    blocked(
        bounded(test.client.fetch_manifest(&image))
            .await
            .unwrap_err(),
    );
    blocked(
        bounded(test.client.fetch_manifest_by_digest(&image, &digest))
            .await
            .unwrap_err(),
    );
    blocked(test.blob(&image, &digest).await.0.unwrap_err());
    blocked(
        bounded(
            test.client
                .fetch_blob_bytes(&image, &digest, None, BLOB_LIMIT),
        )
        .await
        .unwrap_err(),
    );
    assert!(requests(&mirror).await.is_empty());
    assert!(requests(&upstream).await.is_empty());
    assert_eq!(test.retries(), 0);
}

#[tokio::test]
async fn a_location_rewrite_moves_pulls_but_not_pushes() {
    let registry = MockServer::start().await;
    let (bytes, digest) = blob();
    let body = manifest_body("moved");
    let manifest_digest = sha256(&body);
    serve(
        &registry,
        "GET",
        "/v2/physical/app/manifests/v1",
        manifest_response(&body),
    )
    .await;
    serve(
        &registry,
        "GET",
        &format!("/v2/physical/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    serve(
        &registry,
        "PUT",
        "/v2/logical/app/manifests/v1",
        ResponseTemplate::new(201)
            .insert_header("Docker-Content-Digest", manifest_digest.to_string()),
    )
    .await;
    serve(
        &registry,
        "HEAD",
        &format!("/v2/logical/app/blobs/{digest}"),
        ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
    )
    .await;
    let test = TestClient::mirrored(conf(&format!(
        "[[registry]]\nprefix = \"{h}/logical\"\nlocation = \"{h}/physical\"\n",
        h = host(&registry)
    )));
    let image = reference_at(&host(&registry), "logical/app:v1");

    let manifest = bounded(test.client.fetch_manifest(&image))
        .await
        .expect("pulled from the physical location");
    assert_eq!(manifest.digest(), &manifest_digest);
    let (result, sink) = test.blob(&image, &digest).await;
    assert_eq!(
        result.expect("blob from the physical location"),
        BLOB_LENGTH as u64
    );
    assert_eq!(sink, bytes);
    let pushed = bounded(
        test.client
            .push_manifest(&image, media_type::OCI_MANIFEST, &body),
    )
    .await
    .expect("pushed to the logical name");
    assert_eq!(pushed, manifest_digest);
    let exists = bounded(test.client.blob_exists(&image, &digest))
        .await
        .expect("exists check at the logical name");
    assert_eq!(exists, Some(BLOB_LENGTH as u64));

    assert_eq!(
        lines(&registry).await,
        [
            "GET /v2/physical/app/manifests/v1".to_owned(),
            format!("GET /v2/physical/app/blobs/{digest}"),
            "PUT /v2/logical/app/manifests/v1".to_owned(),
            format!("HEAD /v2/logical/app/blobs/{digest}"),
        ]
    );
}
