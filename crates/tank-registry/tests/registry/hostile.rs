//! A registry that lies with numbers and text: absurd token lifetimes must not panic, and
//! escape sequences, newlines and bidirectional overrides in its error bodies and headers
//! must reach the user escaped (an error's `Display` holds no control character).

use reqwest::header::HeaderValue;
use tank_registry::Error;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::error_body_invariants::unsafe_chars;
use crate::support::{
    MAX_RETRIES, REPO, SERVICE, TestClient, manifest_body, manifest_response, reference, requests,
};

/// The error and its sources, as a CLI prints them.
fn shown(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn assert_printable(error: &Error, expected: &[&str]) {
    let text = shown(error);
    assert!(
        unsafe_chars(&text).is_empty(),
        "{:?} reaches the terminal in {text:?}",
        unsafe_chars(&text)
    );
    for part in expected {
        assert!(text.contains(part), "{part:?} not shown in {text}");
    }
}

/// A hostile error document: an OSC title change, a screen clear, a newline and carriage
/// return forging a line, and a right-to-left override.
const EVIL_MESSAGE: &str =
    "\u{1b}]0;pwned\u{7}\u{1b}[2J\nfake: pull complete\r\u{9b}31m\u{202e}txt.exe";
const EVIL_SHOWN: &[&str] =
    &[r"\x1b]0;pwned\x07\x1b[2J\nfake: pull complete\r\u{9b}31m\u{202e}txt.exe"];

fn evil_body() -> String {
    serde_json::json!({
        "errors": [{ "code": "DENIED\u{1b}[1m", "message": EVIL_MESSAGE, "detail": EVIL_MESSAGE }]
    })
    .to_string()
}

fn evil_answer(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(evil_body(), "application/json")
}

#[tokio::test]
async fn error_bodies_and_headers_with_escape_sequences_are_shown_escaped() {
    let registry = MockServer::start().await;
    // 401 with an unknown challenge scheme whose parameter holds C1 and bidi characters
    // (bytes a header may carry), and the hostile body.
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/unauthorized")))
        .respond_with(evil_answer(401).insert_header(
            "WWW-Authenticate",
            HeaderValue::from_bytes("Newauth realm=\"\u{9b}2J\u{202e}\"".as_bytes()).unwrap(),
        ))
        .mount(&registry)
        .await;
    // 401 whose Bearer realm is not a URL and holds an override.
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/realm")))
        .respond_with(
            evil_answer(401).insert_header(
                "WWW-Authenticate",
                HeaderValue::from_bytes(
                    format!("Bearer realm=\"\u{202e}lptth\u{85}\",service=\"{SERVICE}\"")
                        .as_bytes(),
                )
                .unwrap(),
            ),
        )
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/broken")))
        .respond_with(evil_answer(500))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/teapot")))
        .respond_with(evil_answer(418))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/missing")))
        .respond_with(evil_answer(404))
        .mount(&registry)
        .await;
    // A manifest whose body names a hostile media type (and no Content-Type).
    let media_type = "application/vnd.\u{1b}]0;x\u{7}\n+json";
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/odd")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(
            serde_json::json!({ "schemaVersion": 2, "mediaType": media_type }).to_string(),
        ))
        .mount(&registry)
        .await;
    // A redirect to a location that is no http URL, with C1 and bidi characters.
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/moved")))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "Location",
            HeaderValue::from_bytes("javascript:\u{9b}2J\u{202e}".as_bytes()).unwrap(),
        ))
        .mount(&registry)
        .await;
    let test = TestClient::anonymous();
    let fetch = |selector: &str| {
        let reference = reference(&registry, &format!("{REPO}:{selector}"));
        let client = test.client.clone();
        async move { client.fetch_manifest(&reference).await.unwrap_err() }
    };

    let error = fetch("unauthorized").await;
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    assert_printable(&error, &[r"\u{9b}2J\u{202e}"]);

    let error = fetch("realm").await;
    assert!(matches!(error, Error::InvalidRealm { .. }), "{error:?}");
    assert_printable(&error, &[r#""\u{202e}lptth\u{85}""#]);

    let error = fetch("broken").await;
    assert!(
        matches!(error, Error::Status { status: 500, attempts, .. } if attempts == MAX_RETRIES + 1),
        "{error:?}"
    );
    assert_printable(&error, EVIL_SHOWN);
    assert_printable(&error, &[r"denied\x1b[1m: "]);

    let error = fetch("teapot").await;
    assert!(
        matches!(error, Error::Status { status: 418, .. }),
        "{error:?}"
    );
    assert_printable(&error, EVIL_SHOWN);

    let error = fetch("missing").await;
    assert!(matches!(error, Error::ManifestUnknown { .. }), "{error:?}");
    assert_printable(&error, &["missing"]);

    let error = fetch("odd").await;
    assert!(
        matches!(&error, Error::UnsupportedMediaType { media_type: raw, .. } if raw == media_type),
        "the field keeps the text as sent: {error:?}"
    );
    assert_printable(&error, &[r#""application/vnd.\x1b]0;x\x07\n+json""#]);

    let error = fetch("moved").await;
    assert!(matches!(error, Error::InvalidRedirect { .. }), "{error:?}");
    assert_printable(&error, &[r#""javascript:\u{9b}2J\u{202e}""#]);
}

#[tokio::test]
async fn a_refused_token_request_shows_the_token_endpoint_message_escaped() {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{REPO}/manifests/v1")))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{}/token",service="{SERVICE}""#, auth.uri()),
        ))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(evil_answer(403))
        .mount(&auth)
        .await;
    let test = TestClient::anonymous();
    let error = test
        .client
        .fetch_manifest(&reference(&registry, &format!("{REPO}:v1")))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    assert_printable(&error, EVIL_SHOWN);
}

/// A registry whose token endpoint answers with `answer`; the manifest is fetched twice.
/// Returns how many tokens were asked for.
async fn pull_twice_with_token_answer(answer: serde_json::Value) -> usize {
    let registry = MockServer::start().await;
    let auth = MockServer::start().await;
    let body = manifest_body("lifetime");
    let manifest_path = format!("/v2/{REPO}/manifests/v1");
    Mock::given(method("GET"))
        .and(path(&manifest_path))
        .and(wiremock::matchers::bearer_token("tok"))
        .respond_with(manifest_response(&body))
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path(&manifest_path))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{}/token",service="{SERVICE}""#, auth.uri()),
        ))
        .with_priority(10)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&answer))
        .mount(&auth)
        .await;
    let test = TestClient::anonymous();
    for _ in 0..2 {
        let manifest = test
            .client
            .fetch_manifest(&reference(&registry, &format!("{REPO}:v1")))
            .await
            .unwrap_or_else(|error| panic!("{answer}: {error}"));
        assert_eq!(manifest.raw(), body.as_slice());
    }
    requests(&auth).await.len()
}

#[tokio::test]
async fn absurd_token_lifetimes_do_not_panic_and_the_token_is_used() {
    // 1e19 seconds overflowed SystemTime: the pull panicked (exit 101). Now it is clamped
    // to a day and the token is reused for the second pull.
    for answer in [
        serde_json::json!({ "token": "tok", "expires_in": 1e19 }),
        serde_json::json!({ "token": "tok", "expires_in": 1e308 }),
        serde_json::json!({ "token": "tok", "expires_in": u64::MAX }),
        serde_json::json!({ "token": "tok", "expires_in": 1e19, "issued_at": "9999-12-31T23:59:59Z" }),
        serde_json::json!({ "token": "tok", "expires_in": -1 }),
        serde_json::json!({ "token": "tok", "expires_in": -1e308 }),
    ] {
        assert_eq!(
            pull_twice_with_token_answer(answer.clone()).await,
            1,
            "{answer}"
        );
    }
    // A token issued at the epoch is stale at once: used for the request it was fetched
    // for, fetched again for the next one.
    let stale = serde_json::json!({ "token": "tok", "expires_in": 1e19, "issued_at": "1970-01-01T00:00:00Z" });
    assert_eq!(pull_twice_with_token_answer(stale).await, 2);
}
