//! Memory is bounded by tank, never by the registry: every document the client buffers
//! (manifest by tag and by digest, also from a mirror; token response; registry error
//! bodies; an image config read with `fetch_blob_bytes`; a push's error bodies) is capped
//! while streaming, whatever `Content-Length` says. Each server here sends an endless body
//! without `Content-Length` (chunked or close-delimited, bounded at 256 MiB so the test ends
//! either way) and counts the bytes it managed to write before the client hung up: that count
//! stays within the cap plus the kernel's socket buffers, far below the bound.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tank_registry::{
    ClientConfig, CredentialStore, Document, ERROR_BODY_LIMIT, Error, MANIFEST_LIMIT,
    PushBlobOptions, Registries, TOKEN_LIMIT, media_type,
};

use crate::hostile_server::{Answer, Body, ENDLESS_BOUND, HostileServer, header};
use crate::support::{TestClient, manifest_body, reference_at, sha256};

/// What the kernel may hold in socket buffers on top of what the client read (loopback
/// send and receive buffers reach a few MiB).
const SOCKET_SLACK: u64 = 16 * 1024 * 1024;
/// A bound on each client call: the test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(10);

fn client() -> TestClient {
    TestClient::exact(ClientConfig {
        credentials: CredentialStore::anonymous(),
        max_retries: 1,
        ..ClientConfig::default()
    })
}

async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| panic!("the client was still busy after {DEADLINE:?}"))
}

fn endless(status: u16, headers: &[(&str, &str)], chunked: bool) -> Answer {
    Answer::new(status, headers, Body::Endless { chunked })
}

/// The server wrote at most `cap` plus socket buffers: the client stopped reading near the cap.
fn assert_stopped_near(server: &HostileServer, cap: u64) {
    let sent = server.body_bytes_sent();
    eprintln!("the server sent {sent} body bytes (cap {cap})");
    assert!(
        sent <= cap + SOCKET_SLACK && sent < ENDLESS_BOUND,
        "the client read on past its cap: {sent} bytes sent, cap {cap}"
    );
}

fn too_large(error: &Error, expected: Document, limit: u64, url: &str) {
    assert!(
        matches!(
            error,
            Error::DocumentTooLarge { document, limit: named, url: at, announced: None }
                if *document == expected && *named == limit && at == url
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&limit.to_string()) && text.contains(url),
        "{text}"
    );
}

#[tokio::test]
async fn an_endless_manifest_is_cut_at_the_cap_by_tag_and_by_digest() {
    for chunked in [true, false] {
        let server = HostileServer::start(move |_| {
            endless(200, &[("Content-Type", media_type::OCI_MANIFEST)], chunked)
        })
        .await;
        let test = client();
        let reference = reference_at(&server.host(), "team/app:v1");

        let error = bounded(test.client.fetch_manifest(&reference))
            .await
            .unwrap_err();
        let url = format!("http://{}/v2/team/app/manifests/v1", server.host());
        too_large(&error, Document::Manifest, MANIFEST_LIMIT, &url);
        assert!(error.to_string().starts_with("manifest at "), "{error}");

        let digest = sha256(b"some manifest");
        let error = bounded(test.client.fetch_manifest_by_digest(&reference, &digest))
            .await
            .unwrap_err();
        let url = format!("http://{}/v2/team/app/manifests/{digest}", server.host());
        too_large(&error, Document::Manifest, MANIFEST_LIMIT, &url);
        assert_eq!(server.requests().len(), 2, "a cap is not retried");
        assert_stopped_near(&server, 2 * MANIFEST_LIMIT);
    }
}

#[tokio::test]
async fn an_endless_manifest_from_a_mirror_is_cut_and_the_primary_answers() {
    let mirror =
        HostileServer::start(|_| endless(200, &[("Content-Type", media_type::OCI_MANIFEST)], true))
            .await;
    let body = manifest_body("primary");
    let served = body.clone();
    let primary = HostileServer::start(move |_| {
        Answer::bytes(200, &[("Content-Type", media_type::OCI_MANIFEST)], &served)
    })
    .await;
    let registries = Registries::parse(
        &format!(
            "[[registry]]\nlocation = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\n",
            primary.host(),
            mirror.host()
        ),
        Path::new("test.conf"),
    )
    .unwrap();
    let test = TestClient::exact(ClientConfig {
        credentials: CredentialStore::anonymous(),
        registries,
        max_retries: 1,
        ..ClientConfig::default()
    });
    let manifest = bounded(
        test.client
            .fetch_manifest(&reference_at(&primary.host(), "team/app:v1")),
    )
    .await
    .expect("the primary location answers");
    assert_eq!(manifest.raw(), &body[..]);
    assert_eq!(mirror.requests().len(), 1);
    assert_stopped_near(&mirror, MANIFEST_LIMIT);
}

/// A registry whose manifests need a bearer token from `/token` on itself.
fn challenging(head: &str, token: impl Fn() -> Answer) -> Answer {
    if head.starts_with("GET /token") {
        return token();
    }
    let host = header(head, "host").expect("a Host header");
    let challenge = format!("Bearer realm=\"http://{host}/token\",service=\"test\"");
    Answer::bytes(401, &[("WWW-Authenticate", &challenge)], b"")
}

#[tokio::test]
async fn an_endless_token_response_is_cut_at_the_token_cap() {
    let server = HostileServer::start(|head| {
        challenging(head, || {
            endless(200, &[("Content-Type", "application/json")], true)
        })
    })
    .await;
    let test = client();
    let error = bounded(
        test.client
            .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
    )
    .await
    .unwrap_err();
    let url = format!("http://{}/token", server.host());
    too_large(&error, Document::TokenResponse, TOKEN_LIMIT, &url);
    assert_stopped_near(&server, TOKEN_LIMIT);
}

#[tokio::test]
async fn endless_error_bodies_are_cut_and_the_status_is_still_reported() {
    for status in [404u16, 500] {
        let server = HostileServer::start(move |_| {
            endless(status, &[("Content-Type", "application/json")], true)
        })
        .await;
        let test = client();
        let error = bounded(
            test.client
                .fetch_manifest(&reference_at(&server.host(), "team/app:v1")),
        )
        .await
        .unwrap_err();
        match (status, &error) {
            (404, Error::ManifestUnknown { reference, .. }) => assert_eq!(reference, "v1"),
            (
                500,
                Error::Status {
                    status: 500,
                    message,
                    attempts: 2,
                    ..
                },
            ) => {
                assert!(
                    message.contains(&format!("larger than the {ERROR_BODY_LIMIT}-byte limit")),
                    "{message}"
                );
            }
            _ => panic!("status {status}: {error:?}"),
        }
        assert_stopped_near(&server, ERROR_BODY_LIMIT);
    }
}

#[tokio::test]
async fn an_endless_config_is_cut_at_the_callers_limit() {
    let server = HostileServer::start(|_| endless(200, &[], false)).await;
    let test = client();
    let digest = sha256(b"config");
    let limit = 16 * 1024 * 1024;
    let error = bounded(test.client.fetch_blob_bytes(
        &reference_at(&server.host(), "team/app:v1"),
        &digest,
        None,
        limit,
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::BlobTooLarge { limit: named, .. } if *named == limit),
        "{error:?}"
    );
    assert_stopped_near(&server, limit);
}

#[tokio::test]
async fn an_endless_error_body_of_a_push_is_cut_and_the_refusal_reported() {
    let server = HostileServer::start(|head| {
        if head.starts_with("HEAD ") {
            Answer::bytes(404, &[], b"")
        } else {
            endless(400, &[("Content-Type", "application/json")], true)
        }
    })
    .await;
    let test = client();
    let content = Bytes::from_static(b"layer bytes");
    let digest = sha256(&content);
    let error = bounded(test.client.push_blob(
        &reference_at(&server.host(), "team/app:v1"),
        &digest,
        content.len() as u64,
        &content,
        &PushBlobOptions::default(),
    ))
    .await
    .unwrap_err();
    match &error {
        Error::PushRejected {
            status: 400,
            errors,
            ..
        } => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0]
                    .message
                    .contains("larger than the 65536-byte limit"),
                "{errors:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_stopped_near(&server, ERROR_BODY_LIMIT);
}
