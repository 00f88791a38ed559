//! Tests of tank-registry: `faults` drives the client against stalling and lying servers;
//! `mock` drives the client against wiremock servers (auth, retries,
//! redirects, faults); `real` against CNCF Distribution (`docker-registry`) on loopback;
//! `push_mock` and `push_real` do the same for pushing; `raw` is the canned-bytes HTTP/1.1
//! server that `faults`, `mock` and `mirrors` use for what wiremock cannot do; `support` holds
//! the helpers the wiremock-driven files share (the recording [`TestClient`](support::TestClient));
//! `hostile` checks absurd numbers and escape sequences from a registry; `tls` runs against
//! an HTTPS `docker-registry` and a raw TLS server (trusted CA, scheme downgrades).
//! Resource bounds: `faults_limits` (every buffered document capped while streaming),
//! `faults_progress` (the minimum-progress rule, header and document deadlines),
//! `local_limits` (registries.conf, credentials files, credential helpers), all against
//! `hostile_server`, a server of endless and dripping bodies that counts what it sent.

mod challenge_invariants;
mod error_body_invariants;
mod faults;
mod faults_limits;
mod faults_progress;
mod fuzz_corpus;
mod hostile;
mod hostile_server;
mod local_limits;
mod manifest_invariants;
mod mirrors;
mod mock;
mod push_mock;
mod push_real;
mod raw;
mod real;
mod support;
mod tls;
mod token_invariants;
