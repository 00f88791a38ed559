//! HTTPS: a real `docker-registry` serving TLS with a certificate from a CA made in the test
//! (tank-testkit's [`TestCertificates`]), trusted through
//! [`ClientConfig::extra_root_certificates`]; and a raw TLS server (canned answers, recorded
//! requests) for what Distribution never does: redirect an HTTPS request to plain HTTP, or
//! name a plain-HTTP token realm.
//!
//! The registry is addressed as `registry.tank.test:PORT` ([`TEST_TLS_HOST`], pinned to
//! 127.0.0.1 with [`ClientConfig::resolve`]): a loopback address would be spoken to in plain
//! HTTP.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tank_reference::Reference;
use tank_registry::{Client, ClientConfig, CredentialStore, Error, ManifestKind, PushBlobOptions};
use tank_testkit::{Registry, TEST_TLS_HOST, TestCertificates};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::raw::{RawResponse, RawServer};
use crate::support::{REPO, TestClient, manifest_body, reference_at, sha256};

/// A client that maps [`TEST_TLS_HOST`] to 127.0.0.1 and trusts `ca` (when given).
fn config(ca: Option<&TestCertificates>, credentials: CredentialStore) -> ClientConfig {
    ClientConfig {
        credentials,
        extra_root_certificates: ca.map(|ca| ca.ca_pem().to_vec()).into_iter().collect(),
        resolve: vec![(TEST_TLS_HOST.to_owned(), IpAddr::V4(Ipv4Addr::LOCALHOST))],
        ..ClientConfig::default()
    }
}

/// A Docker config giving `user:password` for `registry`.
fn basic_store(dir: &std::path::Path, registry: &str) -> CredentialStore {
    let file = dir.join("config.json");
    let document = serde_json::json!({ "auths": { registry: { "auth": "dXNlcjpzZWNyZXQ=" } } });
    std::fs::write(&file, document.to_string()).unwrap();
    CredentialStore::from_files(Some(file), vec![])
}

/// `Basic base64(user:secret)`, what [`basic_store`] makes the client send.
const BASIC: &str = "Basic dXNlcjpzZWNyZXQ=";

/// The error and its sources, one line.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// A real registry over HTTPS

#[tokio::test]
async fn a_tls_registry_is_pushed_to_and_pulled_from_with_its_ca_trusted() {
    let registry = Registry::builder().tls(true).start().unwrap();
    let ca = registry.certificates().unwrap();
    let client = Client::new(config(Some(ca), CredentialStore::anonymous())).unwrap();
    let host = registry.tls_host();
    assert_eq!(
        client.endpoint(&host).unwrap().as_str(),
        format!("https://{host}/")
    );
    let reference: Reference = reference_at(&host, &format!("{REPO}:v1"));

    // Push a config, a layer and the manifest naming them, over HTTPS.
    let config_bytes =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"layer bytes over tls".to_vec();
    for blob in [config_bytes.to_vec(), layer.clone()] {
        let digest = sha256(&blob);
        client
            .push_blob(
                &reference,
                &digest,
                blob.len() as u64,
                &Bytes::from(blob),
                &PushBlobOptions::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("push over https: {}", chain(&error)));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config_bytes).to_string(), "size": config_bytes.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer).to_string(), "size": layer.len() }],
    })
    .to_string();
    client
        .push_manifest(
            &reference,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.as_bytes(),
        )
        .await
        .unwrap_or_else(|error| panic!("manifest push over https: {}", chain(&error)));

    // Pull it back with a fresh client.
    let client = Client::new(config(Some(ca), CredentialStore::anonymous())).unwrap();
    let fetched = client
        .fetch_manifest(&reference)
        .await
        .unwrap_or_else(|error| panic!("pull over https: {}", chain(&error)));
    assert_eq!(fetched.raw(), manifest.as_bytes());
    let ManifestKind::Image(image) = fetched.kind() else {
        panic!("an image manifest: {:?}", fetched.media_type());
    };
    let digest = image.layers()[0].digest().to_string().parse().unwrap();
    let mut sink = Vec::new();
    let written = client
        .fetch_blob(&reference, &digest, Some(layer.len() as u64), &mut sink)
        .await
        .unwrap_or_else(|error| panic!("blob over https: {}", chain(&error)));
    assert_eq!(written, layer.len() as u64);
    assert_eq!(sink, layer);
}

#[tokio::test]
async fn a_tls_registry_whose_ca_is_not_trusted_is_refused_with_a_certificate_error() {
    let registry = Registry::builder().tls(true).start().unwrap();
    let test = TestClient::with_config(config(None, CredentialStore::anonymous()));
    let reference = reference_at(&registry.tls_host(), &format!("{REPO}:v1"));
    let error = test.client.fetch_manifest(&reference).await.unwrap_err();
    let text = chain(&error);
    assert!(matches!(error, Error::Unreachable { .. }), "{text}");
    assert!(text.contains(&registry.tls_host()), "{text}");
    assert!(
        text.contains("certificate") && text.contains("UnknownIssuer"),
        "not a certificate error: {text}"
    );
    assert!(
        test.sleeps().is_empty(),
        "an untrusted certificate is not retried"
    );

    // An unusable CA document is refused when the client is made, naming it.
    let error = Client::new(ClientConfig {
        extra_root_certificates: vec![b"not a certificate".to_vec()],
        ..ClientConfig::default()
    })
    .unwrap_err();
    assert!(matches!(error, Error::TlsRoots { .. }), "{error:?}");
    assert!(
        error.to_string().contains("extra root certificates #1"),
        "{error}"
    );
    let mut with_file = ClientConfig::default();
    let missing = registry.root_dir().join("absent.pem");
    let error = with_file.add_root_certificates_file(&missing).unwrap_err();
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
    with_file
        .add_root_certificates_file(registry.certificates().unwrap().ca_path())
        .unwrap();
    assert!(Client::new(with_file).is_ok());
}

// ---------------------------------------------------------------------------------------------
// A raw TLS server

/// One canned HTTP/1.1 answer (`Connection: close`).
fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status} Canned\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A loopback TLS server with the test certificate: each connection gets the next canned
/// answer (the last one repeats); request heads are recorded. Stopped when dropped.
struct TlsServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsServer {
    /// Binds a loopback port, then serves the answers `answers(port)` makes.
    async fn start(
        certificates: &TestCertificates,
        answers: impl FnOnce(u16) -> Vec<Vec<u8>>,
    ) -> TlsServer {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(certificates.cert_path())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(certificates.key_path()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answers = answers(port);
        assert!(!answers.is_empty());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            let mut served = 0usize;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                // A client speaking plain HTTP (or not trusting the CA) fails here.
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    continue;
                };
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 65536 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                recorded
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream
                    .write_all(&answers[served.min(answers.len() - 1)])
                    .await;
                let _ = stream.shutdown().await;
                served += 1;
            }
        });
        TlsServer {
            port,
            requests,
            task,
        }
    }

    /// `registry.tank.test:PORT`.
    fn host(&self) -> String {
        format!("{TEST_TLS_HOST}:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `Authorization` value of a recorded request head.
fn authorization(head: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_owned())
    })
}

#[tokio::test]
async fn a_secure_registry_never_redirects_to_plain_http_nor_sends_credentials_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = TestCertificates::generate(dir.path()).unwrap();
    // Where the second redirect points: a plain-HTTP server that must never be asked.
    let plain = RawServer::start(vec![RawResponse::full(200, &[], b"clear")]).await;
    let digest = sha256(b"blob");
    let elsewhere = format!("http://{}/elsewhere?token=secret", plain.host());
    let server = TlsServer::start(&certificates, |port| {
        let same_host = format!("http://{TEST_TLS_HOST}:{port}/v2/{REPO}/blobs/{digest}");
        vec![
            answer(401, &[("WWW-Authenticate", r#"Basic realm="tank""#)], b""),
            answer(302, &[("Location", &same_host)], b""),
            answer(302, &[("Location", &elsewhere)], b""),
        ]
    })
    .await;
    let store = basic_store(dir.path(), &server.host());
    let test = TestClient::with_config(config(Some(&certificates), store));
    let reference = reference_at(&server.host(), &format!("{REPO}:v1"));

    // 1: 401 Basic; 2: with the credentials (over TLS) → 302 to http://<same host:port>/,
    // where the old same-host rule would have sent them again, in clear text.
    let mut sink = Vec::new();
    let error = test
        .client
        .fetch_blob(&reference, &digest, None, &mut sink)
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(matches!(error, Error::InsecureRedirect { .. }), "{text}");
    let blob_url = format!("https://{}/v2/{REPO}/blobs/{digest}", server.host());
    let downgraded = format!("http://{}/v2/{REPO}/blobs/{digest}", server.host());
    assert!(text.contains(&blob_url), "{text}");
    assert!(text.contains(&downgraded), "{text}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(authorization(&requests[0]), None);
    assert_eq!(authorization(&requests[1]).as_deref(), Some(BASIC));
    assert!(
        test.sleeps().is_empty(),
        "a refused redirect is not retried"
    );

    // 3: the cached credentials go with the next request (over TLS) → 302 to another host
    // in plain HTTP: refused too, and that host never hears of it.
    let error = test
        .client
        .fetch_blob(&reference, &digest, None, &mut sink)
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(matches!(error, Error::InsecureRedirect { .. }), "{text}");
    assert!(
        text.contains(&format!("http://{}/elsewhere", plain.host())),
        "{text}"
    );
    assert!(
        !text.contains("token=secret"),
        "the query is not shown: {text}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(authorization(&requests[2]).as_deref(), Some(BASIC));
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
    assert!(sink.is_empty());
}

#[tokio::test]
async fn an_https_registry_gets_no_credentials_to_a_plain_http_realm_but_an_https_one_works() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = TestCertificates::generate(dir.path()).unwrap();
    let token_endpoint =
        RawServer::start(vec![RawResponse::full(200, &[], br#"{"token":"tok"}"#)]).await;
    let http_realm = format!("http://{}/token", token_endpoint.host());
    let body = manifest_body("realm");
    let server = TlsServer::start(&certificates, |port| {
        let https_realm = format!("https://{TEST_TLS_HOST}:{port}/token");
        let challenge = |realm: &str| format!(r#"Bearer realm="{realm}",service="tank""#);
        vec![
            // The first pull: a plain-HTTP realm, refused.
            answer(401, &[("WWW-Authenticate", &challenge(&http_realm))], b""),
            // The second: the realm on the registry itself, over HTTPS.
            answer(401, &[("WWW-Authenticate", &challenge(&https_realm))], b""),
            answer(200, &[], br#"{"token":"tok","expires_in":1e19}"#),
            answer(
                200,
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                &body,
            ),
        ]
    })
    .await;
    let store = basic_store(dir.path(), &server.host());
    let test = TestClient::with_config(config(Some(&certificates), store));
    let reference = reference_at(&server.host(), &format!("{REPO}:v1"));

    let error = test.client.fetch_manifest(&reference).await.unwrap_err();
    let text = chain(&error);
    assert!(matches!(error, Error::InsecureRealm { .. }), "{text}");
    assert!(text.contains(&http_realm), "{text}");
    assert!(text.contains(&server.host()), "{text}");
    assert!(
        token_endpoint.requests().is_empty(),
        "the plain-http realm was asked: {:?}",
        token_endpoint.requests()
    );

    let manifest = test
        .client
        .fetch_manifest(&reference)
        .await
        .unwrap_or_else(|error| panic!("{}", chain(&error)));
    assert_eq!(manifest.raw(), body.as_slice());
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert!(requests[2].starts_with("GET /token?"), "{}", requests[2]);
    assert_eq!(authorization(&requests[2]).as_deref(), Some(BASIC));
    assert_eq!(authorization(&requests[3]).as_deref(), Some("Bearer tok"));
}

#[tokio::test]
async fn an_https_redirect_to_another_host_is_followed_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = TestCertificates::generate(dir.path()).unwrap();
    let blob = b"blob behind a redirect".to_vec();
    let digest = sha256(&blob);
    let server = TlsServer::start(&certificates, |port| {
        // The same server under another name (its IP address): another origin.
        let elsewhere = format!("https://127.0.0.1:{port}/storage/blob?signature=1");
        vec![
            answer(401, &[("WWW-Authenticate", r#"Basic realm="tank""#)], b""),
            answer(307, &[("Location", &elsewhere)], b""),
            answer(200, &[], &blob),
        ]
    })
    .await;
    let store = basic_store(dir.path(), &server.host());
    let test = TestClient::with_config(config(Some(&certificates), store));
    let reference = reference_at(&server.host(), &format!("{REPO}:v1"));
    let mut sink = Vec::new();
    test.client
        .fetch_blob(&reference, &digest, Some(blob.len() as u64), &mut sink)
        .await
        .unwrap_or_else(|error| panic!("{}", chain(&error)));
    assert_eq!(sink, blob);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(authorization(&requests[1]).as_deref(), Some(BASIC));
    assert!(
        requests[2].starts_with("GET /storage/blob?signature=1 "),
        "{}",
        requests[2]
    );
    assert_eq!(
        authorization(&requests[2]),
        None,
        "credentials left their origin"
    );
}
