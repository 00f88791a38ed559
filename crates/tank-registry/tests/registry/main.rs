//! Tests of tank-registry: `mock` drives the client against wiremock servers (auth, retries,
//! redirects, faults); `real` against CNCF Distribution (`docker-registry`) on loopback.

mod mock;
mod real;
