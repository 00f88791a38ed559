//! Tests of tank-registry: `mock` drives the client against wiremock servers (auth, retries,
//! redirects, faults); `real` against CNCF Distribution (`docker-registry`) on loopback;
//! `push_mock` and `push_real` do the same for pushing.

mod mock;
mod push_mock;
mod push_real;
mod real;
