//! Pushing against wiremock servers: the answers and faults a real registry does not give on
//! demand (push-scope challenges, absolute and relative session locations, 416 on a chunk,
//! 5xx on a PUT, a wrong `Docker-Content-Digest`, error documents).
//!
//! Retry delays are recorded, never waited for (see `support.rs`).

use bytes::Bytes;
use tank_reference::{Digest, Reference};
use tank_registry::{Error, PushBlobOptions, PushedBlob, media_type};
use wiremock::matchers::{bearer_token, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{REPO, SERVICE, TestClient, header_of, query, requests, sha256};

fn repository(server: &MockServer) -> Reference {
    format!("{}/{REPO}", server.address())
        .parse()
        .expect("a reference")
}

fn content(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 31 % 253) as u8).collect()
}

fn blob_path(digest: &Digest) -> String {
    format!("/v2/{REPO}/blobs/{digest}")
}

const UPLOADS: &str = "/v2/team/app/blobs/uploads/";

fn of_method<'a>(requests: &'a [Request], name: &str) -> Vec<&'a Request> {
    requests
        .iter()
        .filter(|request| request.method.as_str() == name)
        .collect()
}

/// The blob is absent: HEAD answers 404.
async fn mount_absent(server: &MockServer, digest: &Digest) {
    Mock::given(method("HEAD"))
        .and(path(blob_path(digest)))
        .respond_with(ResponseTemplate::new(404))
        .mount(server)
        .await;
}

/// POST to the uploads endpoint answers 202 with `location`.
async fn mount_session(server: &MockServer, location: &str) {
    Mock::given(method("POST"))
        .and(path(UPLOADS))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", location))
        .mount(server)
        .await;
}

fn created(digest: &Digest) -> ResponseTemplate {
    ResponseTemplate::new(201)
        .insert_header("Docker-Content-Digest", digest.to_string().as_str())
        .insert_header("Location", format!("/v2/{REPO}/blobs/{digest}").as_str())
}

async fn push(
    test: &TestClient,
    server: &MockServer,
    bytes: &[u8],
    options: &PushBlobOptions,
) -> Result<PushedBlob, Error> {
    test.client
        .push_blob(
            &repository(server),
            &sha256(bytes),
            bytes.len() as u64,
            &Bytes::from(bytes.to_vec()),
            options,
        )
        .await
}

#[tokio::test]
async fn a_push_asks_for_a_push_token_and_keeps_it_apart_from_pull_tokens() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let bytes = content(500);
    let digest = sha256(&bytes);
    let realm = format!("{}/token", auth.uri());
    // The registry's challenge to the HEAD names only pull (as Distribution does for reads);
    // the client must still ask for push at once, not after the POST is refused.
    let challenge =
        format!(r#"Bearer realm="{realm}",service="{SERVICE}",scope="repository:{REPO}:pull""#);
    for (verb, answer) in [
        ("HEAD", ResponseTemplate::new(404)),
        (
            "POST",
            ResponseTemplate::new(202).insert_header("Location", "/upload/1?_state=s1"),
        ),
    ] {
        Mock::given(method(verb))
            .and(bearer_token("tok-push"))
            .respond_with(answer)
            .with_priority(1)
            .mount(&registry)
            .await;
    }
    Mock::given(method("PUT"))
        .and(path("/upload/1"))
        .and(bearer_token("tok-push"))
        .respond_with(created(&digest))
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .and(bearer_token("tok-pull"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
        )
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", challenge.as_str())
                .set_body_raw(
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                    "application/json",
                ),
        )
        .with_priority(10)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("scope", format!("repository:{REPO}:pull,push")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": "tok-push", "expires_in": 300})),
        )
        .with_priority(1)
        .mount(&auth)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": "tok-pull", "expires_in": 300})),
        )
        .with_priority(5)
        .mount(&auth)
        .await;
    let test = TestClient::anonymous();

    let outcome = push(&test, &registry, &bytes, &PushBlobOptions::default())
        .await
        .expect("push with a push token");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 1, "one token for the whole push");
    let scopes: Vec<String> = token_requests[0]
        .url
        .query_pairs()
        .filter(|(key, _)| key == "scope")
        .map(|(_, value)| value.into_owned())
        .collect();
    assert_eq!(scopes, [format!("repository:{REPO}:pull,push")]);
    let registry_requests = requests(&registry).await;
    let sent: Vec<(String, Option<String>)> = registry_requests
        .iter()
        .map(|request| {
            (
                request.method.to_string(),
                header_of(request, "authorization"),
            )
        })
        .collect();
    let push_token = Some("Bearer tok-push".to_owned());
    assert_eq!(
        sent,
        [
            ("HEAD".to_owned(), None),
            ("HEAD".to_owned(), push_token.clone()),
            ("POST".to_owned(), push_token.clone()),
            ("PUT".to_owned(), push_token.clone()),
        ]
    );

    // A pull-scoped request does not reuse the push token: it gets its own.
    let size = test
        .client
        .blob_exists(&repository(&registry), &digest)
        .await
        .expect("exists check");
    assert_eq!(size, Some(bytes.len() as u64));
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 2);
    assert_eq!(
        query(&token_requests[1], "scope"),
        Some(format!("repository:{REPO}:pull"))
    );
}

#[tokio::test]
async fn a_mount_asks_for_pull_on_the_source_repository_too() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let bytes = content(64);
    let digest = sha256(&bytes);
    let realm = format!("{}/token", auth.uri());
    let challenge = format!(r#"Bearer realm="{realm}",service="{SERVICE}""#);
    mount_absent_with_token(&registry, &digest, "tok-mount").await;
    Mock::given(method("POST"))
        .and(path(UPLOADS))
        .and(query_param("mount", digest.to_string()))
        .and(query_param("from", "team/base"))
        .and(bearer_token("tok-mount"))
        .respond_with(created(&digest))
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str()),
        )
        .with_priority(10)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": "tok-mount", "expires_in": 300})),
        )
        .mount(&auth)
        .await;
    let test = TestClient::anonymous();

    let outcome = push(
        &test,
        &registry,
        &bytes,
        &PushBlobOptions {
            mount_from: Some("team/base".to_owned()),
            ..PushBlobOptions::default()
        },
    )
    .await
    .expect("mounted");
    assert_eq!(outcome, PushedBlob::Mounted);
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 1);
    let scopes: Vec<String> = token_requests[0]
        .url
        .query_pairs()
        .filter(|(key, _)| key == "scope")
        .map(|(_, value)| value.into_owned())
        .collect();
    assert_eq!(
        scopes,
        [
            format!("repository:{REPO}:pull,push"),
            "repository:team/base:pull".to_owned()
        ]
    );
    assert!(of_method(&requests(&registry).await, "PUT").is_empty());
}

async fn mount_absent_with_token(server: &MockServer, digest: &Digest, token: &str) {
    Mock::given(method("HEAD"))
        .and(path(blob_path(digest)))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn session_locations_may_be_relative_or_absolute_and_keep_their_query() {
    let registry = MockServer::start().await;
    let storage = MockServer::start().await;
    let bytes = content(1000);
    let digest = sha256(&bytes);
    mount_absent(&registry, &digest).await;
    mount_session(
        &registry,
        "/v2/team/app/blobs/uploads/uuid-1?_state=abc%3D%3D",
    )
    .await;
    Mock::given(method("PUT"))
        .and(path("/v2/team/app/blobs/uploads/uuid-1"))
        .and(query_param("_state", "abc=="))
        .and(query_param("digest", digest.to_string()))
        .and(header("content-type", "application/octet-stream"))
        .respond_with(created(&digest))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let outcome = push(&test, &registry, &bytes, &PushBlobOptions::default())
        .await
        .expect("relative location");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let puts = requests(&registry).await;
    let puts = of_method(&puts, "PUT");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].body, bytes, "the whole blob in one PUT");
    assert_eq!(
        header_of(puts[0], "content-length"),
        Some(bytes.len().to_string())
    );

    // An absolute location on another host: the upload goes there (without the registry's
    // credentials, which this anonymous client does not have anyway).
    let other = content(2000);
    let other_digest = sha256(&other);
    mount_absent(&registry, &other_digest).await;
    let registry_b = MockServer::start().await;
    mount_absent(&registry_b, &other_digest).await;
    mount_session(
        &registry_b,
        &format!("{}/sessions/42?sig=s%2Fg", storage.uri()),
    )
    .await;
    Mock::given(method("PUT"))
        .and(path("/sessions/42"))
        .and(query_param("sig", "s/g"))
        .and(query_param("digest", other_digest.to_string()))
        .respond_with(created(&other_digest))
        .mount(&storage)
        .await;
    let outcome = push(&test, &registry_b, &other, &PushBlobOptions::default())
        .await
        .expect("absolute location");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let stored = requests(&storage).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, other);
}

#[tokio::test]
async fn an_existing_blob_is_not_uploaded_and_its_size_is_checked() {
    let registry = MockServer::start().await;
    let bytes = content(300);
    let digest = sha256(&bytes);
    Mock::given(method("HEAD"))
        .and(path(blob_path(&digest)))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
        )
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let outcome = push(&test, &registry, &bytes, &PushBlobOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome, PushedBlob::Existed);
    assert_eq!(requests(&registry).await.len(), 1, "only the HEAD");

    let error = test
        .client
        .push_blob(
            &repository(&registry),
            &digest,
            299,
            &Bytes::from(bytes[..299].to_vec()),
            &PushBlobOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::SizeMismatch {
                expected: 299,
                actual: 300,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_5xx_on_a_monolithic_put_restarts_the_upload_and_succeeds() {
    let registry = MockServer::start().await;
    let bytes = content(4096);
    let digest = sha256(&bytes);
    mount_absent(&registry, &digest).await;
    mount_session(&registry, "/upload/session").await;
    Mock::given(method("PUT"))
        .and(path("/upload/session"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/session"))
        .respond_with(created(&digest))
        .with_priority(2)
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let outcome = push(&test, &registry, &bytes, &PushBlobOptions::default())
        .await
        .expect("retried");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let all = requests(&registry).await;
    assert_eq!(
        of_method(&all, "POST").len(),
        2,
        "a new session for the retry"
    );
    let puts = of_method(&all, "PUT");
    assert_eq!(puts.len(), 2);
    for put in puts {
        assert_eq!(put.body, bytes, "the source is read again for the retry");
    }
    assert_eq!(test.sleeps().len(), 1);

    // Endless 5xx: gives up, naming the push.
    let failing = MockServer::start().await;
    mount_absent(&failing, &digest).await;
    mount_session(&failing, "/upload/session").await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&failing)
        .await;
    let error = push(&test, &failing, &bytes, &PushBlobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::PushRejected {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains(&digest.to_string()), "{error}");
}

#[tokio::test]
async fn a_wrong_docker_content_digest_after_the_upload_is_an_error_naming_both() {
    let registry = MockServer::start().await;
    let bytes = content(100);
    let digest = sha256(&bytes);
    let other = sha256(b"something the registry made up");
    mount_absent(&registry, &digest).await;
    mount_session(&registry, "/upload/1").await;
    Mock::given(method("PUT"))
        .respond_with(created(&other))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let error = push(&test, &registry, &bytes, &PushBlobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &digest && actual == &other),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&digest.to_string()) && text.contains(&other.to_string()),
        "{text}"
    );
}

/// A PATCH with this `Content-Range` answers `response`.
async fn mount_patch(server: &MockServer, at: &str, range: &str, response: ResponseTemplate) {
    Mock::given(method("PATCH"))
        .and(path(at))
        .and(header("content-range", range))
        .and(header("content-type", "application/octet-stream"))
        .respond_with(response)
        .mount(server)
        .await;
}

fn accepted(location: &str, range: &str) -> ResponseTemplate {
    ResponseTemplate::new(202)
        .insert_header("Location", location)
        .insert_header("Range", range)
}

#[tokio::test]
async fn chunks_follow_each_location_and_a_416_resumes_where_the_registry_stands() {
    let registry = MockServer::start().await;
    let bytes = content(300);
    let digest = sha256(&bytes);
    mount_absent(&registry, &digest).await;
    mount_session(&registry, "/up/start").await;
    mount_patch(&registry, "/up/start", "0-99", accepted("/up/s100", "0-99")).await;
    // The registry refuses the second chunk: it says it holds 150 bytes.
    mount_patch(&registry, "/up/s100", "100-199", ResponseTemplate::new(416)).await;
    Mock::given(method("GET"))
        .and(path("/up/s100"))
        .respond_with(
            ResponseTemplate::new(204)
                .insert_header("Location", "/up/s150")
                .insert_header("Range", "0-149"),
        )
        .mount(&registry)
        .await;
    mount_patch(
        &registry,
        "/up/s150",
        "150-249",
        accepted("/up/s250", "0-249"),
    )
    .await;
    // A broken chunk (500): asked again where the upload stands, the registry says 250.
    Mock::given(method("PATCH"))
        .and(path("/up/s250"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/up/s250"))
        .respond_with(
            ResponseTemplate::new(204)
                .insert_header("Location", "/up/s250b")
                .insert_header("Range", "bytes=0-249"),
        )
        .mount(&registry)
        .await;
    mount_patch(
        &registry,
        "/up/s250b",
        "250-299",
        accepted("/up/s300", "0-299"),
    )
    .await;
    Mock::given(method("PUT"))
        .and(path("/up/s300"))
        .and(query_param("digest", digest.to_string()))
        .respond_with(created(&digest))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let outcome = push(
        &test,
        &registry,
        &bytes,
        &PushBlobOptions {
            chunk_size: Some(100),
            ..PushBlobOptions::default()
        },
    )
    .await
    .expect("chunked upload with a 416 and a 500");
    assert_eq!(outcome, PushedBlob::Uploaded);

    let all = requests(&registry).await;
    let patches: Vec<(String, String, Vec<u8>)> = of_method(&all, "PATCH")
        .into_iter()
        .map(|request| {
            (
                request.url.path().to_owned(),
                header_of(request, "content-range").unwrap(),
                request.body.clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, Vec<u8>)> = [
        ("/up/start", "0-99", 0..100),
        ("/up/s100", "100-199", 100..200),
        ("/up/s150", "150-249", 150..250),
        ("/up/s250", "250-299", 250..300),
        ("/up/s250b", "250-299", 250..300),
    ]
    .into_iter()
    .map(|(at, range, bytes_range)| (at.to_owned(), range.to_owned(), bytes[bytes_range].to_vec()))
    .collect();
    assert_eq!(patches, expected);
    let puts = of_method(&all, "PUT");
    assert_eq!(puts.len(), 1);
    assert!(
        puts[0].body.is_empty(),
        "the closing PUT carries no content"
    );
    assert_eq!(
        test.sleeps().len(),
        1,
        "a 416 is asked about at once, a 500 after a backoff"
    );
}

#[tokio::test]
async fn a_lost_upload_session_starts_over() {
    let registry = MockServer::start().await;
    let bytes = content(200);
    let digest = sha256(&bytes);
    mount_absent(&registry, &digest).await;
    Mock::given(method("POST"))
        .and(path(UPLOADS))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/up/first"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&registry)
        .await;
    mount_session(&registry, "/up/second").await;
    mount_patch(
        &registry,
        "/up/first",
        "0-99",
        accepted("/up/first-100", "0-99"),
    )
    .await;
    mount_patch(
        &registry,
        "/up/first-100",
        "100-199",
        ResponseTemplate::new(416),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/up/first-100"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}"#,
            "application/json",
        ))
        .mount(&registry)
        .await;
    mount_patch(
        &registry,
        "/up/second",
        "0-99",
        accepted("/up/second-100", "0-99"),
    )
    .await;
    mount_patch(
        &registry,
        "/up/second-100",
        "100-199",
        accepted("/up/second-200", "0-199"),
    )
    .await;
    Mock::given(method("PUT"))
        .and(path("/up/second-200"))
        .respond_with(created(&digest))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let outcome = push(
        &test,
        &registry,
        &bytes,
        &PushBlobOptions {
            chunk_size: Some(100),
            ..PushBlobOptions::default()
        },
    )
    .await
    .expect("started over");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let all = requests(&registry).await;
    assert_eq!(of_method(&all, "POST").len(), 2);
    assert_eq!(of_method(&all, "PATCH").len(), 4);
}

fn oci_manifest() -> Vec<u8> {
    let config = sha256(b"config");
    let layer = sha256(b"layer");
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":6}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":5}}]}}"#,
        media_type::OCI_MANIFEST
    )
    .into_bytes()
}

#[tokio::test]
async fn manifests_are_put_with_their_media_type_and_their_digest_checked() {
    let registry = MockServer::start().await;
    let body = oci_manifest();
    let digest = sha256(&body);
    let wrong = sha256(b"not the manifest");
    Mock::given(method("PUT"))
        .and(path(format!("/v2/{REPO}/manifests/v1")))
        .and(header("content-type", media_type::OCI_MANIFEST))
        .respond_with(created(&digest))
        .mount(&registry)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v2/{REPO}/manifests/{digest}")))
        .respond_with(ResponseTemplate::new(201))
        .mount(&registry)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v2/{REPO}/manifests/liar")))
        .respond_with(created(&wrong))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let tagged = repository(&registry).with_tag("v1").unwrap();

    let pushed = test
        .client
        .push_manifest(&tagged, media_type::OCI_MANIFEST, &body)
        .await
        .expect("manifest push");
    assert_eq!(pushed, digest);
    let puts = requests(&registry).await;
    assert_eq!(puts[0].body, body, "the bytes exactly as given");

    let by_digest = repository(&registry).with_digest(digest.clone());
    let pushed = test
        .client
        .push_manifest(&by_digest, media_type::OCI_MANIFEST, &body)
        .await
        .expect("by digest, no Docker-Content-Digest in the answer");
    assert_eq!(pushed, digest);

    let error = test
        .client
        .push_manifest(
            &repository(&registry).with_tag("liar").unwrap(),
            media_type::OCI_MANIFEST,
            &body,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &digest && actual == &wrong),
        "{error:?}"
    );

    // Bytes that do not hash to the reference's digest are refused before sending.
    let before = requests(&registry).await.len();
    let error = test
        .client
        .push_manifest(
            &repository(&registry).with_digest(wrong.clone()),
            media_type::OCI_MANIFEST,
            &body,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error:?}");
    assert_eq!(requests(&registry).await.len(), before);
}

#[tokio::test]
async fn a_refused_manifest_carries_the_registry_error_code_and_message() {
    let registry = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_regex(format!("^/v2/{REPO}/manifests/")))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}"#,
            "application/json",
        ))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let error = test
        .client
        .push_manifest(
            &repository(&registry).with_tag("v1").unwrap(),
            media_type::OCI_MANIFEST,
            &oci_manifest(),
        )
        .await
        .unwrap_err();
    match &error {
        Error::PushRejected {
            registry: registry_name,
            repository,
            what,
            status,
            errors,
            attempts,
            ..
        } => {
            assert_eq!(registry_name, &registry.address().to_string());
            assert_eq!(repository, REPO);
            assert_eq!(what, "manifest v1");
            assert_eq!(*status, 400);
            assert_eq!(*attempts, 1, "a 400 is not retried");
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].code, "MANIFEST_INVALID");
            assert_eq!(errors[0].message, "manifest invalid");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("answered 400: MANIFEST_INVALID: manifest invalid"),
        "{error}"
    );
}

#[tokio::test]
async fn an_empty_blob_is_uploaded_and_checked_like_any_other() {
    let registry = MockServer::start().await;
    let empty = sha256(b"");
    let not_empty = sha256(b"x");
    mount_absent(&registry, &empty).await;
    mount_absent(&registry, &not_empty).await;
    mount_session(&registry, "/upload/empty").await;
    Mock::given(method("PUT"))
        .and(path("/upload/empty"))
        .and(query_param("digest", empty.to_string()))
        .respond_with(created(&empty))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let outcome = push(&test, &registry, b"", &PushBlobOptions::default())
        .await
        .expect("an empty blob");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let puts = requests(&registry).await;
    let puts = of_method(&puts, "PUT");
    assert_eq!(puts.len(), 1);
    assert_eq!(header_of(puts[0], "content-length").as_deref(), Some("0"));

    let error = test
        .client
        .push_blob(
            &repository(&registry),
            &not_empty,
            0,
            &Bytes::new(),
            &PushBlobOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &not_empty && actual == &empty),
        "{error:?}"
    );
    let all = requests(&registry).await;
    assert_eq!(of_method(&all, "PUT").len(), 1, "nothing more was uploaded");
}
