//! Client behaviour against wiremock servers: one test per rule, the failing case next to the
//! passing one. What wiremock cannot do (cut a body short, send a body without a length) is
//! done by [`RawServer`], the tiny HTTP/1.1 server of `raw.rs`.
//!
//! Retry delays are never waited for: the client gets a [`Sleeper`] that records each delay
//! and returns at once, so the tests assert the delays the client chose, not wall-clock time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use tank_reference::Digest;
use tank_registry::{
    Client, ClientConfig, CredentialStore, Document, Error, ManifestKind, media_type,
};
use wiremock::matchers::{basic_auth, bearer_token, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::raw::{RawResponse, RawServer, range_header};

use crate::support::{
    BASE_DELAY, MAX_DELAY, MAX_RETRIES, REPO, SERVICE, TestClient, header_of, host, manifest_body,
    manifest_response, query, reference, reference_at, requests, sha256,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn blob_bytes(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 7 % 251) as u8).collect()
}

fn manifest_path(repository: &str, selector: &str) -> String {
    format!("/v2/{repository}/manifests/{selector}")
}

fn blob_path(repository: &str, digest: &Digest) -> String {
    format!("/v2/{repository}/blobs/{digest}")
}

fn authorization(request: &Request) -> Option<String> {
    header_of(request, "authorization")
}

fn bearer_challenge(auth: &MockServer, scope: Option<&str>) -> String {
    let mut challenge = format!(r#"Bearer realm="{}/token",service="{SERVICE}""#, auth.uri());
    if let Some(scope) = scope {
        challenge.push_str(&format!(r#",scope="{scope}""#));
    }
    challenge
}

fn unauthorized(challenge: &str) -> ResponseTemplate {
    ResponseTemplate::new(401)
        .insert_header("WWW-Authenticate", challenge)
        .set_body_raw(
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            "application/json",
        )
}

/// Serves `body` at `path` to requests carrying `Bearer <token>`, a 401 challenge to others.
async fn mount_bearer_protected(
    registry: &MockServer,
    path_text: &str,
    token: &str,
    challenge: &str,
    response: ResponseTemplate,
) {
    Mock::given(method("GET"))
        .and(path(path_text))
        .and(bearer_token(token))
        .respond_with(response)
        .with_priority(1)
        .mount(registry)
        .await;
    Mock::given(method("GET"))
        .and(path(path_text))
        .respond_with(unauthorized(challenge))
        .with_priority(10)
        .mount(registry)
        .await;
}

/// A token endpoint at `/token` that hands out `token` for `scope`.
async fn mount_token(auth: &MockServer, scope: &str, answer: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", SERVICE))
        .and(query_param("scope", scope))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(auth)
        .await;
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// A Docker config holding `entry` (e.g. `{"auth": …}`) for `registry`.
fn docker_config(dir: &Path, registry: &str, entry: serde_json::Value) -> PathBuf {
    let file = dir.join("config.json");
    let document = serde_json::json!({ "auths": { registry: entry } });
    std::fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
    file
}

fn basic_store(dir: &Path, registry: &str, user: &str, password: &str) -> CredentialStore {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let file = docker_config(dir, registry, serde_json::json!({ "auth": auth }));
    CredentialStore::from_files(Some(file), vec![])
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens

#[tokio::test]
async fn anonymous_bearer_token_is_sent_to_its_registry_and_no_other() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let other_registry = MockServer::start().await;
    let body = manifest_body("a");
    let challenge = bearer_challenge(&auth, Some(&pull_scope(REPO)));
    mount_bearer_protected(
        &registry,
        &manifest_path(REPO, "v1"),
        "tok-1",
        &challenge,
        manifest_response(&body),
    )
    .await;
    mount_token(
        &auth,
        &pull_scope(REPO),
        serde_json::json!({ "token": "tok-1", "expires_in": 300 }),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(manifest_response(&body))
        .mount(&other_registry)
        .await;
    let test = TestClient::anonymous();

    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .expect("the token answers the challenge");
    assert_eq!(manifest.raw(), body.as_slice());
    let registry_requests = requests(&registry).await;
    assert_eq!(
        registry_requests.len(),
        2,
        "the challenge, then the retry with the token"
    );
    assert_eq!(authorization(&registry_requests[0]), None);
    assert_eq!(
        authorization(&registry_requests[1]).as_deref(),
        Some("Bearer tok-1")
    );
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 1);
    assert_eq!(
        authorization(&token_requests[0]),
        None,
        "anonymous token request"
    );
    assert_eq!(query(&token_requests[0], "account"), None);

    // Same repository name and the same client, another registry: the token stays home.
    test.client
        .fetch_manifest(&reference(&other_registry, "team/app:v1"))
        .await
        .expect("an open registry");
    let other_requests = requests(&other_registry).await;
    assert_eq!(other_requests.len(), 1);
    assert_eq!(
        authorization(&other_requests[0]),
        None,
        "a token leaked to another registry"
    );
    assert_eq!(requests(&auth).await.len(), 1);
}

#[tokio::test]
async fn tokens_are_cached_per_scope_and_the_scope_is_built_when_the_challenge_has_none() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let app_body = manifest_body("app");
    let other_body = manifest_body("other");
    mount_bearer_protected(
        &registry,
        &manifest_path(REPO, "v1"),
        "tok-app",
        &bearer_challenge(&auth, Some(&pull_scope(REPO))),
        manifest_response(&app_body),
    )
    .await;
    // No scope in this challenge: the client must ask for repository:team/other:pull itself.
    mount_bearer_protected(
        &registry,
        &manifest_path("team/other", "v1"),
        "tok-other",
        &bearer_challenge(&auth, None),
        manifest_response(&other_body),
    )
    .await;
    mount_token(
        &auth,
        &pull_scope(REPO),
        serde_json::json!({ "token": "tok-app", "expires_in": 300 }),
    )
    .await;
    mount_token(
        &auth,
        &pull_scope("team/other"),
        serde_json::json!({ "access_token": "tok-other", "expires_in": 300 }),
    )
    .await;
    let test = TestClient::anonymous();

    for _ in 0..2 {
        let manifest = test
            .client
            .fetch_manifest(&reference(&registry, "team/app:v1"))
            .await
            .unwrap();
        assert_eq!(manifest.raw(), app_body.as_slice());
    }
    assert_eq!(
        requests(&auth).await.len(),
        1,
        "the second request reuses the cached token"
    );
    let registry_requests = requests(&registry).await;
    assert_eq!(
        registry_requests.len(),
        3,
        "401, retry, then the cached token straight away"
    );
    assert_eq!(
        authorization(&registry_requests[2]).as_deref(),
        Some("Bearer tok-app")
    );

    let other = test
        .client
        .fetch_manifest(&reference(&registry, "team/other:v1"))
        .await
        .unwrap();
    assert_eq!(other.raw(), other_body.as_slice());
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 2, "another scope needs another token");
    assert_eq!(
        query(&token_requests[1], "scope"),
        Some(pull_scope("team/other"))
    );
    let registry_requests = requests(&registry).await;
    assert_eq!(
        authorization(&registry_requests[3]),
        None,
        "team/app's token was sent for team/other"
    );
}

#[tokio::test]
async fn an_expired_token_is_fetched_again() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let body = manifest_body("a");
    let challenge = bearer_challenge(&auth, Some(&pull_scope(REPO)));
    mount_bearer_protected(
        &registry,
        &manifest_path(REPO, "v1"),
        "tok-old",
        &challenge,
        manifest_response(&body),
    )
    .await;
    // Issued long ago: expired on arrival, good only for the retry it was fetched for.
    mount_token(
        &auth,
        &pull_scope(REPO),
        serde_json::json!({ "token": "tok-old", "expires_in": 300, "issued_at": "2000-01-01T00:00:00Z" }),
    )
    .await;
    let test = TestClient::anonymous();

    for _ in 0..2 {
        test.client
            .fetch_manifest(&reference(&registry, "team/app:v1"))
            .await
            .unwrap();
    }
    assert_eq!(
        requests(&auth).await.len(),
        2,
        "an expired token must not be reused"
    );
    let registry_requests = requests(&registry).await;
    assert_eq!(registry_requests.len(), 4);
    assert_eq!(
        authorization(&registry_requests[2]),
        None,
        "the expired token was sent"
    );
}

#[tokio::test]
async fn bearer_token_with_basic_credentials_and_refusals() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let body = manifest_body("a");
    let challenge = bearer_challenge(&auth, Some(&pull_scope(REPO)));
    mount_bearer_protected(
        &registry,
        &manifest_path(REPO, "v1"),
        "tok-user",
        &challenge,
        manifest_response(&body),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(basic_auth("tank", "secret"))
        .and(query_param("account", "tank"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": "tok-user" })),
        )
        .with_priority(1)
        .mount(&auth)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#,
            "application/json",
        ))
        .with_priority(10)
        .mount(&auth)
        .await;

    let good = tempfile::tempdir().unwrap();
    let test =
        TestClient::with_credentials(basic_store(good.path(), &host(&registry), "tank", "secret"));
    test.client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .expect("credentials exchanged for a token");
    for request in requests(&registry).await {
        let sent = authorization(&request).unwrap_or_default();
        assert!(
            !sent.starts_with("Basic"),
            "the registry got the password: {sent}"
        );
    }
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 1);
    assert!(
        authorization(&token_requests[0])
            .unwrap()
            .starts_with("Basic ")
    );

    let wrong = tempfile::tempdir().unwrap();
    let test =
        TestClient::with_credentials(basic_store(wrong.path(), &host(&registry), "tank", "wrong"));
    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&host(&registry)) && text.contains(REPO),
        "{text}"
    );
    assert!(text.contains("incorrect username or password"), "{text}");
}

#[tokio::test]
async fn identity_token_is_exchanged_with_an_oauth2_post() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let body = manifest_body("a");
    let challenge = bearer_challenge(&auth, Some(&pull_scope(REPO)));
    mount_bearer_protected(
        &registry,
        &manifest_path(REPO, "v1"),
        "tok-oauth",
        &challenge,
        manifest_response(&body),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({ "access_token": "tok-oauth", "expires_in": 300 }),
            ),
        )
        .mount(&auth)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = docker_config(
        dir.path(),
        &host(&registry),
        serde_json::json!({ "identitytoken": "refresh-me" }),
    );
    let test = TestClient::with_credentials(CredentialStore::from_files(Some(config), vec![]));

    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .expect("identity token exchanged");
    assert_eq!(manifest.raw(), body.as_slice());
    let token_requests = requests(&auth).await;
    assert_eq!(token_requests.len(), 1);
    assert_eq!(token_requests[0].method.as_str(), "POST");
    assert_eq!(
        authorization(&token_requests[0]),
        None,
        "the refresh token goes in the form only"
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&token_requests[0].body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("grant_type"), Some("refresh_token"));
    assert_eq!(field("refresh_token"), Some("refresh-me"));
    assert_eq!(field("service"), Some(SERVICE));
    assert_eq!(field("scope"), Some(pull_scope(REPO).as_str()));
    assert_eq!(field("client_id"), Some("tank"));

    // The failing case: the token endpoint refuses the refresh token.
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&refusing)
        .await;
    let registry2 = MockServer::start().await;
    mount_bearer_protected(
        &registry2,
        &manifest_path(REPO, "v1"),
        "tok-oauth",
        &bearer_challenge(&refusing, None),
        manifest_response(&body),
    )
    .await;
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = docker_config(
        dir2.path(),
        &host(&registry2),
        serde_json::json!({ "identitytoken": "revoked" }),
    );
    let test2 = TestClient::with_credentials(CredentialStore::from_files(Some(config2), vec![]));
    let error = test2
        .client
        .fetch_manifest(&reference(&registry2, "team/app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
}

#[tokio::test]
async fn a_second_401_after_authenticating_is_an_auth_error() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(unauthorized(&bearer_challenge(
            &auth,
            Some(&pull_scope(REPO)),
        )))
        .mount(&registry)
        .await;
    mount_token(
        &auth,
        &pull_scope(REPO),
        serde_json::json!({ "token": "useless" }),
    )
    .await;
    let test = TestClient::anonymous();

    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap_err();
    match &error {
        Error::Unauthorized {
            registry: named,
            repository,
            message,
        } => {
            assert_eq!(named, &host(&registry));
            assert_eq!(repository, REPO);
            assert!(message.contains("authentication required"), "{message}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(
        requests(&registry).await.len(),
        2,
        "exactly one retry with the token"
    );
    assert!(
        test.sleeps().is_empty(),
        "auth failures are not retried with backoff"
    );
}

// ---------------------------------------------------------------------------------------------
// Basic

#[tokio::test]
async fn basic_challenge_is_answered_with_stored_credentials() {
    let registry = MockServer::start().await;
    let body = manifest_body("a");
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .and(basic_auth("tank", "secret"))
        .respond_with(manifest_response(&body))
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(unauthorized(r#"Basic realm="Registry Realm""#))
        .with_priority(10)
        .mount(&registry)
        .await;

    let good = tempfile::tempdir().unwrap();
    let test =
        TestClient::with_credentials(basic_store(good.path(), &host(&registry), "tank", "secret"));
    for _ in 0..2 {
        let manifest = test
            .client
            .fetch_manifest(&reference(&registry, "team/app:v1"))
            .await
            .unwrap();
        assert_eq!(manifest.raw(), body.as_slice());
    }
    let sent = requests(&registry).await;
    assert_eq!(sent.len(), 3, "401, retry, then Basic sent straight away");
    assert_eq!(authorization(&sent[0]), None);
    assert!(authorization(&sent[2]).unwrap().starts_with("Basic "));

    let wrong = tempfile::tempdir().unwrap();
    let test =
        TestClient::with_credentials(basic_store(wrong.path(), &host(&registry), "tank", "wrong"));
    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");

    let error = TestClient::anonymous()
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap_err();
    match &error {
        Error::Unauthorized {
            registry: named,
            repository,
            ..
        } => {
            assert_eq!(named, &host(&registry));
            assert_eq!(repository, REPO);
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Redirects

/// A registry whose blob needs `Bearer tok-blob` and redirects to `location`.
async fn redirecting_registry(location: &str, digest: &Digest) -> (MockServer, MockServer) {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    mount_bearer_protected(
        &registry,
        &blob_path(REPO, digest),
        "tok-blob",
        &bearer_challenge(&auth, Some(&pull_scope(REPO))),
        ResponseTemplate::new(307).insert_header("Location", location),
    )
    .await;
    mount_token(
        &auth,
        &pull_scope(REPO),
        serde_json::json!({ "token": "tok-blob" }),
    )
    .await;
    (registry, auth)
}

#[tokio::test]
async fn authorization_never_follows_a_redirect_to_another_host() {
    let blob = blob_bytes(5000);
    let digest = sha256(&blob);
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bucket/blob"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(blob.clone()))
        .mount(&storage)
        .await;
    // 127.0.0.1 and localhost are different hosts, as a registry and its S3 bucket are.
    let location = format!(
        "http://localhost:{}/bucket/blob?X-Amz-Signature=s3cr3t",
        storage.address().port()
    );
    let (registry, _auth) = redirecting_registry(&location, &digest).await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    let count = test
        .client
        .fetch_blob(
            &reference(&registry, "team/app:v1"),
            &digest,
            Some(blob.len() as u64),
            &mut sink,
        )
        .await
        .expect("blob through the redirect");
    assert_eq!(count, blob.len() as u64);
    assert_eq!(sink, blob);
    let registry_requests = requests(&registry).await;
    assert_eq!(
        authorization(registry_requests.last().unwrap()).as_deref(),
        Some("Bearer tok-blob")
    );
    let storage_requests = requests(&storage).await;
    assert_eq!(storage_requests.len(), 1);
    assert_eq!(
        authorization(&storage_requests[0]),
        None,
        "the token reached another host"
    );
    assert_eq!(
        query(&storage_requests[0], "X-Amz-Signature").as_deref(),
        Some("s3cr3t")
    );
}

#[tokio::test]
async fn authorization_follows_a_redirect_on_the_same_host() {
    let blob = blob_bytes(5000);
    let digest = sha256(&blob);
    let (registry, _auth) = redirecting_registry("/internal/blob", &digest).await;
    Mock::given(method("GET"))
        .and(path("/internal/blob"))
        .and(bearer_token("tok-blob"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(blob.clone()))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    test.client
        .fetch_blob(
            &reference(&registry, "team/app:v1"),
            &digest,
            Some(blob.len() as u64),
            &mut sink,
        )
        .await
        .expect("blob through a same-host redirect");
    assert_eq!(sink, blob);
    let internal: Vec<Request> = requests(&registry)
        .await
        .into_iter()
        .filter(|request| request.url.path() == "/internal/blob")
        .collect();
    assert_eq!(internal.len(), 1);
    assert_eq!(
        authorization(&internal[0]).as_deref(),
        Some("Bearer tok-blob")
    );
}

#[tokio::test]
async fn redirect_loops_stop_after_ten_hops() {
    let registry = MockServer::start().await;
    let blob = blob_bytes(10);
    let digest = sha256(&blob);
    Mock::given(method("GET"))
        .and(path(blob_path(REPO, &digest)))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/hop"))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/hop"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/hop"))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(
            &reference(&registry, "team/app:v1"),
            &digest,
            None,
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::TooManyRedirects { limit: 10, .. }),
        "{error:?}"
    );
    assert_eq!(requests(&registry).await.len(), 11);
}

// ---------------------------------------------------------------------------------------------
// Digests and sizes

#[tokio::test]
async fn manifest_digest_is_checked_against_docker_content_digest() {
    let registry = MockServer::start().await;
    let body = manifest_body("a");
    let other = manifest_body("b");
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "right")))
        .respond_with(
            manifest_response(&body)
                .insert_header("Docker-Content-Digest", sha256(&body).to_string()),
        )
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "wrong")))
        .respond_with(
            manifest_response(&body)
                .insert_header("Docker-Content-Digest", sha256(&other).to_string()),
        )
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:right"))
        .await
        .unwrap();
    assert_eq!(manifest.digest(), &sha256(&body));
    assert_eq!(manifest.media_type(), media_type::OCI_MANIFEST);
    assert!(matches!(manifest.kind(), ManifestKind::Image(image) if image.layers().len() == 1));

    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:wrong"))
        .await
        .unwrap_err();
    match error {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, sha256(&other));
            assert_eq!(actual, sha256(&body));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn manifest_digest_is_checked_against_the_digest_asked_for() {
    let registry = MockServer::start().await;
    let body = manifest_body("a");
    let impostor = manifest_body("impostor");
    let right = sha256(&body);
    let asked_wrong = sha256(&manifest_body("asked"));
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, &right.to_string())))
        .respond_with(manifest_response(&body))
        .mount(&registry)
        .await;
    // Serves other bytes under a digest, without a Docker-Content-Digest to compare with.
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, &asked_wrong.to_string())))
        .respond_with(manifest_response(&impostor))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let tagged = reference(&registry, "team/app:v1");

    let manifest = test
        .client
        .fetch_manifest_by_digest(&tagged, &right)
        .await
        .unwrap();
    assert_eq!(manifest.digest(), &right);
    let pinned = test
        .client
        .fetch_manifest(&tagged.with_digest(right.clone()))
        .await
        .unwrap();
    assert_eq!(pinned.raw(), body.as_slice());

    let error = test
        .client
        .fetch_manifest_by_digest(&tagged, &asked_wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &asked_wrong && actual == &sha256(&impostor)),
        "{error:?}"
    );
    let error = test
        .client
        .fetch_manifest(&tagged.with_digest(asked_wrong.clone()))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error:?}");
}

async fn serve_blob(registry: &MockServer, digest: &Digest, bytes: &[u8]) {
    Mock::given(method("GET"))
        .and(path(blob_path(REPO, digest)))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.to_vec()))
        .mount(registry)
        .await;
}

#[tokio::test]
async fn blob_digest_and_size_are_verified() {
    let registry = MockServer::start().await;
    let blob = blob_bytes(3000);
    let digest = sha256(&blob);
    let tampered_digest = sha256(b"what the manifest promised");
    serve_blob(&registry, &digest, &blob).await;
    serve_blob(&registry, &tampered_digest, &blob).await;
    let test = TestClient::anonymous();
    let tagged = reference(&registry, "team/app:v1");
    let size = blob.len() as u64;

    let mut sink = Vec::new();
    assert_eq!(
        test.client
            .fetch_blob(&tagged, &digest, Some(size), &mut sink)
            .await
            .unwrap(),
        size
    );
    assert_eq!(sink, blob);
    let mut sink = Vec::new();
    assert_eq!(
        test.client
            .fetch_blob(&tagged, &digest, None, &mut sink)
            .await
            .unwrap(),
        size
    );

    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(&tagged, &tampered_digest, Some(size), &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::DigestMismatch { expected, actual, .. } if expected == &tampered_digest && actual == &digest),
        "{error:?}"
    );

    for wrong_size in [size - 1, size + 1] {
        let mut sink = Vec::new();
        let error = test
            .client
            .fetch_blob(&tagged, &digest, Some(wrong_size), &mut sink)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::SizeMismatch { expected, actual, .. } if expected == wrong_size && actual == size),
            "{error:?}"
        );
        assert!(
            sink.is_empty(),
            "the announced length is checked before any byte is written"
        );
    }
    assert!(test.sleeps().is_empty(), "content errors are not retried");
}

#[tokio::test]
async fn a_blob_longer_than_expected_stops_at_the_expected_size() {
    let blob = blob_bytes(100_000);
    let digest = sha256(&blob);
    // No Content-Length: the body is chunked, so only counting can catch it.
    let server = RawServer::start(vec![RawResponse::chunked(200, &[], &blob)]).await;
    let test = TestClient::anonymous();
    let tagged = reference_at(&server.host(), "team/app:v1");

    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(&tagged, &digest, Some(1000), &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::SizeMismatch { expected: 1000, actual, .. } if actual > 1000),
        "{error:?}"
    );
    assert!(
        sink.len() <= 1000,
        "wrote {} bytes past the expected size",
        sink.len()
    );

    // The passing case: the same chunked body with the right size.
    let server = RawServer::start(vec![RawResponse::chunked(200, &[], &blob)]).await;
    let tagged = reference_at(&server.host(), "team/app:v1");
    let mut sink = Vec::new();
    test.client
        .fetch_blob(&tagged, &digest, Some(blob.len() as u64), &mut sink)
        .await
        .expect("chunked blob of the right size");
    assert_eq!(sink, blob);
}

#[tokio::test]
async fn blob_bytes_are_limited() {
    let registry = MockServer::start().await;
    let config = blob_bytes(2000);
    let digest = sha256(&config);
    serve_blob(&registry, &digest, &config).await;
    let test = TestClient::anonymous();
    let tagged = reference(&registry, "team/app:v1");

    let bytes = test
        .client
        .fetch_blob_bytes(&tagged, &digest, Some(2000), 2000)
        .await
        .expect("at the limit");
    assert_eq!(bytes, config);

    let error = test
        .client
        .fetch_blob_bytes(&tagged, &digest, Some(2000), 1999)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::BlobTooLarge { limit: 1999, .. }),
        "{error:?}"
    );
    assert_eq!(
        requests(&registry).await.len(),
        1,
        "a known size over the limit is refused without asking"
    );

    let error = test
        .client
        .fetch_blob_bytes(&tagged, &digest, None, 1999)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::BlobTooLarge { limit: 1999, .. }),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Manifest rules

#[tokio::test]
async fn schema_1_manifests_are_refused() {
    let registry = MockServer::start().await;
    let schema_1 = br#"{"schemaVersion":1,"name":"team/app","tag":"v1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "signed")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(schema_1.to_vec(), media_type::DOCKER_MANIFEST_V1_SIGNED),
        )
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "unlabelled")))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(schema_1.to_vec(), "application/json"),
        )
        .mount(&registry)
        .await;
    let body = manifest_body("a");
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v2")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    for tag in ["signed", "unlabelled"] {
        let error = test
            .client
            .fetch_manifest(&reference(&registry, &format!("team/app:{tag}")))
            .await
            .unwrap_err();
        match &error {
            Error::SchemaV1Manifest {
                media_type: named,
                reference: asked,
                ..
            } => {
                assert_eq!(named, media_type::DOCKER_MANIFEST_V1_SIGNED);
                assert_eq!(asked, tag);
            }
            other => panic!("{tag}: expected SchemaV1Manifest, got {other:?}"),
        }
        assert!(error.to_string().contains("schema 1"), "{error}");
    }
    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v2"))
        .await
        .unwrap();
    assert_eq!(
        manifest.media_type(),
        media_type::OCI_MANIFEST,
        "from the body's mediaType"
    );
}

#[tokio::test]
async fn docker_media_types_are_accepted_and_asked_for() {
    let registry = MockServer::start().await;
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":7,"digest":"{}","platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}]}}"#,
        media_type::DOCKER_MANIFEST_LIST,
        media_type::DOCKER_MANIFEST,
        sha256(b"entry")
    );
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "list")))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(list.clone(), media_type::DOCKER_MANIFEST_LIST),
        )
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "artifact")))
        .respond_with(
            // No mediaType in the body: the Content-Type is all there is to go by.
            ResponseTemplate::new(200).set_body_raw(
                manifest_of_length(400),
                "application/vnd.oci.artifact.manifest.v1+json",
            ),
        )
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:list"))
        .await
        .unwrap();
    assert_eq!(manifest.media_type(), media_type::DOCKER_MANIFEST_LIST);
    let ManifestKind::Index(index) = manifest.kind() else {
        panic!("a manifest list is an index")
    };
    assert_eq!(
        index.manifests()[0]
            .platform()
            .as_ref()
            .unwrap()
            .variant()
            .as_deref(),
        Some("v7")
    );
    let sent = &requests(&registry).await[0];
    let accept = sent
        .headers
        .get("accept")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for wanted in [
        media_type::OCI_INDEX,
        media_type::OCI_MANIFEST,
        media_type::DOCKER_MANIFEST_LIST,
        media_type::DOCKER_MANIFEST,
    ] {
        assert!(accept.contains(wanted), "Accept {accept:?} lacks {wanted}");
    }
    assert!(
        !accept.contains("distribution.manifest.v1+"),
        "Accept asks for schema 1: {accept}"
    );
    assert_eq!(
        sent.headers.get("user-agent").unwrap().to_str().unwrap(),
        format!("tank/{}", env!("CARGO_PKG_VERSION"))
    );

    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:artifact"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedMediaType { .. }),
        "{error:?}"
    );
}

/// A valid OCI manifest of exactly `length` bytes (padded with an annotation).
fn manifest_of_length(length: usize) -> Vec<u8> {
    let start = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":""#;
    let config = sha256(b"config").to_string();
    let middle = br#"","size":10},"layers":[],"annotations":{"pad":""#;
    let end = br#""}}"#;
    let fixed = start.len() + config.len() + middle.len() + end.len();
    let mut body = Vec::with_capacity(length);
    body.extend_from_slice(start);
    body.extend_from_slice(config.as_bytes());
    body.extend_from_slice(middle);
    body.resize(length - end.len(), b'x');
    body.extend_from_slice(end);
    assert!(length > fixed);
    assert_eq!(body.len(), length);
    body
}

#[tokio::test]
async fn manifests_over_4_mib_are_refused() {
    const CAP: usize = 4 * 1024 * 1024;
    let registry = MockServer::start().await;
    let at_cap = manifest_of_length(CAP);
    let over_cap = manifest_of_length(CAP + 1);
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "at-cap")))
        .respond_with(manifest_response(&at_cap))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "over-cap")))
        .respond_with(manifest_response(&over_cap))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:at-cap"))
        .await
        .unwrap();
    assert_eq!(manifest.raw().len(), CAP);
    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:over-cap"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::DocumentTooLarge { document: Document::Manifest, announced: Some(length), .. } if length == CAP as u64 + 1),
        "{error:?}"
    );

    // Without a Content-Length the cap is enforced while reading.
    let server = RawServer::start(vec![RawResponse::chunked(
        200,
        &[("Content-Type", media_type::OCI_MANIFEST)],
        &over_cap,
    )])
    .await;
    let error = TestClient::anonymous()
        .client
        .fetch_manifest(&reference_at(&server.host(), "team/app:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::DocumentTooLarge {
                document: Document::Manifest,
                announced: None,
                ..
            }
        ),
        "{error:?}"
    );
    let server = RawServer::start(vec![RawResponse::chunked(
        200,
        &[("Content-Type", media_type::OCI_MANIFEST)],
        &at_cap,
    )])
    .await;
    let manifest = TestClient::anonymous()
        .client
        .fetch_manifest(&reference_at(&server.host(), "team/app:v1"))
        .await
        .expect("a chunked manifest at the cap");
    assert_eq!(manifest.raw().len(), CAP);
}

#[tokio::test]
async fn missing_things_and_registry_errors_are_named() {
    let registry = MockServer::start().await;
    let blob_digest = sha256(b"absent");
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "gone")))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            "application/json",
        ))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path("team/nothing", "v1")))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
            "application/json",
        ))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(blob_path(REPO, &blob_digest)))
        .respond_with(ResponseTemplate::new(404))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "denied")))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
            "application/json",
        ))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:gone"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::ManifestUnknown { repository, reference, .. } if repository == REPO && reference == "gone"),
        "{error:?}"
    );
    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/nothing:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NameUnknown { repository, .. } if repository == "team/nothing"),
        "{error:?}"
    );
    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(
            &reference(&registry, "team/app:v1"),
            &blob_digest,
            None,
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::BlobUnknown { digest, .. } if digest == &blob_digest),
        "{error:?}"
    );
    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:denied"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 403, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("denied: requested access to the resource is denied"),
        "{error}"
    );
    assert!(test.sleeps().is_empty(), "4xx answers are not retried");
    assert_eq!(requests(&registry).await.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn a_429_is_retried_after_the_delay_retry_after_asks_for() {
    let registry = MockServer::start().await;
    let body = manifest_body("a");
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(manifest_response(&body))
        .with_priority(10)
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let manifest = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap();
    assert_eq!(manifest.raw(), body.as_slice());
    assert_eq!(
        test.sleeps(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
    assert_eq!(requests(&registry).await.len(), 3);
}

#[tokio::test]
async fn retry_after_is_capped_and_read_as_an_http_date() {
    let registry = MockServer::start().await;
    let body = manifest_body("a");
    let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let a_minute_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
    for (priority, retry_after) in [(1, "120".to_owned()), (2, in_an_hour), (3, a_minute_ago)] {
        Mock::given(method("GET"))
            .and(path(manifest_path(REPO, "v1")))
            .respond_with(
                ResponseTemplate::new(429).insert_header("Retry-After", retry_after.as_str()),
            )
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(&registry)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(manifest_response(&body))
        .with_priority(10)
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    test.client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap();
    assert_eq!(test.sleeps(), vec![MAX_DELAY, MAX_DELAY, Duration::ZERO]);
}

#[tokio::test]
async fn endless_429_gives_up_after_max_retries() {
    let registry = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(manifest_path(REPO, "v1")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_raw(
                    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#,
                    "application/json",
                ),
        )
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();

    let error = test
        .client
        .fetch_manifest(&reference(&registry, "team/app:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 429, attempts, .. } if attempts == MAX_RETRIES + 1),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("429") && text.contains("pull rate limit") && text.contains("4 attempts"),
        "{text}"
    );
    assert_eq!(requests(&registry).await.len(), MAX_RETRIES as usize + 1);
    assert_eq!(
        test.sleeps(),
        vec![Duration::from_secs(1); MAX_RETRIES as usize]
    );
}

#[tokio::test]
async fn a_burst_of_5xx_is_retried_with_growing_backoff() {
    let registry = MockServer::start().await;
    let blob = blob_bytes(1000);
    let digest = sha256(&blob);
    Mock::given(method("GET"))
        .and(path(blob_path(REPO, &digest)))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&registry)
        .await;
    serve_blob(&registry, &digest, &blob).await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    test.client
        .fetch_blob(
            &reference(&registry, "team/app:v1"),
            &digest,
            Some(1000),
            &mut sink,
        )
        .await
        .expect("success after the burst");
    assert_eq!(sink, blob);
    let sleeps = test.sleeps();
    assert_eq!(sleeps.len(), 3);
    for (retry, delay) in sleeps.iter().enumerate() {
        let full = BASE_DELAY * 2u32.pow(retry as u32);
        assert!(
            *delay >= full / 2 && *delay <= full,
            "retry {retry}: {delay:?} outside [{:?}, {full:?}]",
            full / 2
        );
    }

    // The failing case: the server never recovers.
    let broken = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&broken)
        .await;
    let test = TestClient::anonymous();
    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(&reference(&broken, "team/app:v1"), &digest, None, &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 500, attempts, .. } if attempts == MAX_RETRIES + 1),
        "{error:?}"
    );
    assert_eq!(requests(&broken).await.len(), MAX_RETRIES as usize + 1);
}

#[tokio::test]
async fn an_unreachable_registry_is_retried_then_named() {
    // A port nobody listens on: bind, note the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = closed.local_addr().unwrap().to_string();
    drop(closed);
    let test = TestClient::anonymous();

    let error = test
        .client
        .fetch_manifest(&reference_at(&registry, "team/app:v1"))
        .await
        .unwrap_err();
    match &error {
        Error::Unreachable {
            registry: named,
            attempts,
            ..
        } => {
            assert_eq!(named, &registry);
            assert_eq!(*attempts, MAX_RETRIES + 1);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(test.sleeps().len(), MAX_RETRIES as usize);
    assert!(
        std::error::Error::source(&error).is_some(),
        "the transport error is the source"
    );
}

// ---------------------------------------------------------------------------------------------
// Resuming

const BLOB_LENGTH: usize = 10_000;
const CUT_AT: usize = 4_000;

fn resumable_blob() -> (Vec<u8>, Digest) {
    let blob = blob_bytes(BLOB_LENGTH);
    let digest = sha256(&blob);
    (blob, digest)
}

#[tokio::test]
async fn a_cut_download_resumes_with_range() {
    let (blob, digest) = resumable_blob();
    let content_range = format!("bytes {CUT_AT}-{}/{BLOB_LENGTH}", BLOB_LENGTH - 1);
    let server = RawServer::start(vec![
        RawResponse::cut(&blob, CUT_AT),
        RawResponse::full(
            206,
            &[("Content-Range", content_range.as_str())],
            &blob[CUT_AT..],
        ),
    ])
    .await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    let count = test
        .client
        .fetch_blob(
            &reference_at(&server.host(), "team/app:v1"),
            &digest,
            Some(BLOB_LENGTH as u64),
            &mut sink,
        )
        .await
        .expect("resumed download");
    assert_eq!(count, BLOB_LENGTH as u64);
    assert_eq!(sink, blob);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(range_header(&requests[0]), None);
    assert_eq!(range_header(&requests[1]), Some(format!("bytes={CUT_AT}-")));
    assert_eq!(test.sleeps().len(), 1);
}

#[tokio::test]
async fn a_server_ignoring_range_is_skipped_to_where_the_download_stopped() {
    let (blob, digest) = resumable_blob();
    let server = RawServer::start(vec![
        RawResponse::cut(&blob, CUT_AT),
        RawResponse::full(200, &[], &blob),
    ])
    .await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    test.client
        .fetch_blob(
            &reference_at(&server.host(), "team/app:v1"),
            &digest,
            Some(BLOB_LENGTH as u64),
            &mut sink,
        )
        .await
        .expect("resumed through a full answer");
    assert_eq!(sink, blob);
    assert_eq!(
        range_header(&server.requests()[1]),
        Some(format!("bytes={CUT_AT}-"))
    );

    // The failing case: the second full answer has other bytes after the cut.
    let mut changed = blob.clone();
    changed[BLOB_LENGTH - 1] ^= 0xff;
    let server = RawServer::start(vec![
        RawResponse::cut(&blob, CUT_AT),
        RawResponse::full(200, &[], &changed),
    ])
    .await;
    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(
            &reference_at(&server.host(), "team/app:v1"),
            &digest,
            Some(BLOB_LENGTH as u64),
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::DigestMismatch { actual, .. } if actual == &sha256(&changed)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_resume_answer_starting_elsewhere_is_refused() {
    let (blob, digest) = resumable_blob();
    let wrong_start = CUT_AT - 1000;
    let content_range = format!("bytes {wrong_start}-{}/{BLOB_LENGTH}", BLOB_LENGTH - 1);
    let server = RawServer::start(vec![
        RawResponse::cut(&blob, CUT_AT),
        RawResponse::full(
            206,
            &[("Content-Range", content_range.as_str())],
            &blob[wrong_start..],
        ),
    ])
    .await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(
            &reference_at(&server.host(), "team/app:v1"),
            &digest,
            Some(BLOB_LENGTH as u64),
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ResumeMismatch { offset, .. } if offset == CUT_AT as u64),
        "{error:?}"
    );
    assert_eq!(sink, blob[..CUT_AT], "nothing after the cut was written");
}

#[tokio::test]
async fn a_download_that_keeps_breaking_without_progress_gives_up() {
    let (blob, digest) = resumable_blob();
    // Every answer ignores Range and breaks at the same place: no progress after the first.
    let server = RawServer::start(vec![RawResponse::cut(&blob, CUT_AT)]).await;
    let test = TestClient::anonymous();

    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(
            &reference_at(&server.host(), "team/app:v1"),
            &digest,
            Some(BLOB_LENGTH as u64),
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Unreachable { attempts, .. } if attempts == MAX_RETRIES + 1),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), MAX_RETRIES as usize + 1);
    assert_eq!(sink, blob[..CUT_AT]);
}

#[tokio::test]
async fn a_stalled_download_times_out_and_resumes() {
    let (blob, digest) = resumable_blob();
    let content_range = format!("bytes {CUT_AT}-{}/{BLOB_LENGTH}", BLOB_LENGTH - 1);
    let server = RawServer::start(vec![
        RawResponse::stalled(&blob, CUT_AT),
        RawResponse::full(
            206,
            &[("Content-Range", content_range.as_str())],
            &blob[CUT_AT..],
        ),
    ])
    .await;
    let test = TestClient::with_config(ClientConfig {
        credentials: CredentialStore::anonymous(),
        read_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    });

    let mut sink = Vec::new();
    test.client
        .fetch_blob(
            &reference_at(&server.host(), "team/app:v1"),
            &digest,
            Some(BLOB_LENGTH as u64),
            &mut sink,
        )
        .await
        .expect("the idle timeout ends the stall and the download resumes");
    assert_eq!(sink, blob);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(range_header(&requests[1]), Some(format!("bytes={CUT_AT}-")));
}

// ---------------------------------------------------------------------------------------------
// Endpoints

#[test]
fn endpoints_follow_docker_rules() {
    let client = Client::new(ClientConfig {
        credentials: CredentialStore::anonymous(),
        insecure_registries: vec!["registry.lan".to_owned()],
        ..ClientConfig::default()
    })
    .unwrap();
    let endpoint = |registry: &str| client.endpoint(registry).unwrap().to_string();
    assert_eq!(endpoint("docker.io"), "https://registry-1.docker.io/");
    assert_eq!(endpoint("127.0.0.1:5000"), "http://127.0.0.1:5000/");
    assert_eq!(endpoint("[::1]:5000"), "http://[::1]:5000/");
    assert_eq!(endpoint("localhost"), "http://localhost/");
    assert_eq!(endpoint("registry.lan:5000"), "http://registry.lan:5000/");
    assert_eq!(endpoint("quay.io"), "https://quay.io/");
    assert_eq!(
        endpoint("registry.lan.example"),
        "https://registry.lan.example/"
    );
}
