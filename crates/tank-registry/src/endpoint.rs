//! Endpoint rules: which base URL serves a registry name (which hosts count as "the
//! registry's own" for sending credentials is in `redirect`).

use std::net::{Ipv4Addr, Ipv6Addr};

use url::Url;

use crate::Error;

/// The host that serves Docker Hub's registry API.
const DOCKER_HUB_ENDPOINT: &str = "https://registry-1.docker.io/";

/// The base URL (`scheme://host[:port]/`) that serves `registry`.
///
/// `docker.io` and `index.docker.io` are served by `registry-1.docker.io`; loopback registries
/// (`localhost`, `127.0.0.0/8`, `[::1]`, with or without a port) and the registries listed in
/// `insecure` (as `host` or `host:port`) speak plain HTTP; everything else HTTPS.
pub(crate) fn endpoint(registry: &str, insecure: &[String]) -> Result<Url, Error> {
    let invalid = || Error::InvalidRegistry {
        registry: registry.to_owned(),
    };
    let lower = registry.to_ascii_lowercase();
    if lower == "docker.io" || lower == "index.docker.io" {
        return Url::parse(DOCKER_HUB_ENDPOINT).map_err(|_| invalid());
    }
    if lower.is_empty() || lower.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid());
    }
    let scheme = if is_loopback(&lower) || is_listed_insecure(&lower, insecure) {
        "http"
    } else {
        "https"
    };
    let url = Url::parse(&format!("{scheme}://{lower}/")).map_err(|_| invalid())?;
    if url.host_str().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

/// Splits `host[:port]` (the host may be a bracketed IPv6 address) into host and port text.
fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = registry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (registry, None),
        };
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let (host, _) = split_host_port(registry);
    if host == "localhost" {
        return true;
    }
    if let Ok(address) = host.parse::<Ipv4Addr>() {
        return address.is_loopback();
    }
    if let Ok(address) = host.parse::<Ipv6Addr>() {
        return address.is_loopback();
    }
    false
}

/// Whether `registry` (`host[:port]`) is listed, either exactly or by its host alone.
fn is_listed_insecure(registry: &str, insecure: &[String]) -> bool {
    let (host, _) = split_host_port(registry);
    insecure.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        if entry == registry {
            return true;
        }
        let (entry_host, entry_port) = split_host_port(&entry);
        entry_port.is_none() && entry_host == host
    })
}

/// `url` without its query and fragment, for logs and errors: presigned redirect URLs carry
/// signatures in the query.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(registry: &str, insecure: &[&str], expected: &str) {
        let insecure: Vec<String> = insecure.iter().map(|entry| entry.to_string()).collect();
        let url =
            endpoint(registry, &insecure).unwrap_or_else(|error| panic!("{registry}: {error}"));
        assert_eq!(
            url.as_str(),
            expected,
            "endpoint of {registry} with insecure {insecure:?}"
        );
    }

    #[test]
    fn docker_hub_is_served_by_registry_1() {
        check("docker.io", &[], "https://registry-1.docker.io/");
        check("index.docker.io", &[], "https://registry-1.docker.io/");
        check("registry-1.docker.io", &[], "https://registry-1.docker.io/");
        check("docker.com", &[], "https://docker.com/");
    }

    #[test]
    fn loopback_is_plain_http_and_nothing_else_is() {
        check("localhost", &[], "http://localhost/");
        check("localhost:5000", &[], "http://localhost:5000/");
        check("127.0.0.1", &[], "http://127.0.0.1/");
        check("127.0.0.1:5000", &[], "http://127.0.0.1:5000/");
        check("127.1.2.3:5000", &[], "http://127.1.2.3:5000/");
        check("[::1]", &[], "http://[::1]/");
        check("[::1]:5000", &[], "http://[::1]:5000/");

        check(
            "localhost.example.com",
            &[],
            "https://localhost.example.com/",
        );
        check("128.0.0.1:5000", &[], "https://128.0.0.1:5000/");
        check("10.0.0.1", &[], "https://10.0.0.1/");
        check("[::2]:5000", &[], "https://[::2]:5000/");
        check("quay.io", &[], "https://quay.io/");
        check("ghcr.io:443", &[], "https://ghcr.io/");
    }

    #[test]
    fn insecure_registries_match_by_host_or_host_and_port() {
        check(
            "registry.lan:5000",
            &["registry.lan"],
            "http://registry.lan:5000/",
        );
        check("registry.lan", &["registry.lan"], "http://registry.lan/");
        check(
            "registry.lan:5000",
            &["registry.lan:5000"],
            "http://registry.lan:5000/",
        );
        check(
            "Registry.LAN:5000",
            &["registry.lan:5000"],
            "http://registry.lan:5000/",
        );
        check("[fd00::1]:5000", &["[fd00::1]"], "http://[fd00::1]:5000/");

        check(
            "registry.lan:5001",
            &["registry.lan:5000"],
            "https://registry.lan:5001/",
        );
        check(
            "registry.lan",
            &["registry.lan:5000"],
            "https://registry.lan/",
        );
        check(
            "other.lan:5000",
            &["registry.lan"],
            "https://other.lan:5000/",
        );
        check(
            "sub.registry.lan",
            &["registry.lan"],
            "https://sub.registry.lan/",
        );
    }

    #[test]
    fn malformed_registry_names_are_refused() {
        for registry in [
            "",
            "host/path",
            "host name",
            "user@host",
            "[::1",
            "host:port",
        ] {
            let error = endpoint(registry, &[]);
            assert!(
                matches!(error, Err(Error::InvalidRegistry { .. })),
                "{registry:?} gave {error:?}"
            );
        }
    }

    #[test]
    fn redacted_drops_query_and_password() {
        let url =
            Url::parse("https://user:secret@s3.example/blob?X-Amz-Signature=abc#frag").unwrap();
        assert_eq!(redacted(&url), "https://user@s3.example/blob");
        let plain = Url::parse("http://127.0.0.1:5000/v2/x/blobs/sha256:ab").unwrap();
        assert_eq!(redacted(&plain), plain.as_str());
    }
}
