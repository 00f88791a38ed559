//! Helpers shared by the wiremock-driven tests (`mock`, `push_mock`, `faults`, `mirrors`):
//! a client whose retry delays are recorded instead of waited for, references to a mock
//! server, manifest bodies and answers, and readers of the requests a server received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tank_reference::{Algorithm, Digest, Reference};
use tank_registry::{Client, ClientConfig, CredentialStore, Sleeper, media_type};
use wiremock::{MockServer, Request, ResponseTemplate};

/// The repository most tests use.
pub(crate) const REPO: &str = "team/app";
/// The `service` of the bearer challenges the mock registries send.
pub(crate) const SERVICE: &str = "test-registry";
/// Retries of a [`TestClient`] made by [`TestClient::with_config`].
pub(crate) const MAX_RETRIES: u32 = 3;
/// First retry delay of a [`TestClient`] made by [`TestClient::with_config`].
pub(crate) const BASE_DELAY: Duration = Duration::from_millis(100);
/// Longest retry delay of a [`TestClient`] made by [`TestClient::with_config`].
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(10);

/// A client whose retry delays are recorded instead of waited for: its [`Sleeper`] notes
/// each delay and returns at once, so tests assert the delays (or count the retries) the
/// client chose, not wall-clock time.
pub(crate) struct TestClient {
    pub(crate) client: Client,
    sleeps: Arc<Mutex<Vec<Duration>>>,
}

impl TestClient {
    /// An anonymous client with the test retry settings.
    pub(crate) fn anonymous() -> TestClient {
        TestClient::with_credentials(CredentialStore::anonymous())
    }

    /// A client with `credentials` and the test retry settings.
    pub(crate) fn with_credentials(credentials: CredentialStore) -> TestClient {
        TestClient::with_config(ClientConfig {
            credentials,
            ..ClientConfig::default()
        })
    }

    /// A client from `config` whose retry settings are replaced by the test ones
    /// ([`MAX_RETRIES`], [`BASE_DELAY`], [`MAX_DELAY`]).
    pub(crate) fn with_config(config: ClientConfig) -> TestClient {
        TestClient::exact(ClientConfig {
            max_retries: MAX_RETRIES,
            retry_base_delay: BASE_DELAY,
            max_retry_delay: MAX_DELAY,
            ..config
        })
    }

    /// A client from `config` as given (retry settings included), but for the recording
    /// sleeper.
    pub(crate) fn exact(config: ClientConfig) -> TestClient {
        let sleeps = Arc::new(Mutex::new(Vec::new()));
        let recorder = sleeps.clone();
        let config = ClientConfig {
            sleeper: Sleeper::new(move |delay| {
                recorder.lock().unwrap().push(delay);
                std::future::ready(())
            }),
            ..config
        };
        TestClient {
            client: Client::new(config).expect("a client"),
            sleeps,
        }
    }

    /// The delays the client asked to wait, in order.
    pub(crate) fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    /// How many retries the client waited for.
    pub(crate) fn retries(&self) -> usize {
        self.sleeps.lock().unwrap().len()
    }
}

/// `host:port` of `server`.
pub(crate) fn host(server: &MockServer) -> String {
    server.address().to_string()
}

/// `registry/rest` as a reference.
pub(crate) fn reference_at(registry: &str, rest: &str) -> Reference {
    let text = format!("{registry}/{rest}");
    text.parse()
        .unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
}

/// `rest` (e.g. `team/app:v1`) at `server`.
pub(crate) fn reference(server: &MockServer, rest: &str) -> Reference {
    reference_at(&host(server), rest)
}

pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}

/// A small valid OCI image manifest; `salt` makes different ones.
pub(crate) fn manifest_body(salt: &str) -> Vec<u8> {
    let config = sha256(format!("config {salt}").as_bytes());
    let layer = sha256(format!("layer {salt}").as_bytes());
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":20}}]}}"#,
        media_type::OCI_MANIFEST
    )
    .into_bytes()
}

/// A 200 carrying `body` as an OCI image manifest.
pub(crate) fn manifest_response(body: &[u8]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_vec(), media_type::OCI_MANIFEST)
}

/// The requests `server` received, in order.
pub(crate) async fn requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

/// The value of header `name` of `request`.
pub(crate) fn header_of(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

/// The value of query parameter `key` of `request`.
pub(crate) fn query(request: &Request, key: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}
