//! tank-image's integration tests, one binary: assembly and layer building, OCI layouts,
//! pulls and pushes against a loopback docker-registry, and the fuzz corpus replayed through
//! the config invariants.

mod assemble;
mod fuzz_config;
mod layout;
mod one_reader;
mod pull;
mod push;
