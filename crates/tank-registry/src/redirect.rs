//! Where credentials may go: the origin rule for `Authorization`, and the refusals of scheme
//! downgrades (an `https` registry redirecting to `http`, or naming an `http` token realm).
//!
//! A registry is *secure* when its endpoint is `https://` (every registry but loopback ones
//! and those listed in [`crate::ClientConfig::insecure_registries`]). For a secure registry:
//!
//! - a redirect to an `http://` URL is refused ([`Error::InsecureRedirect`]), whatever its
//!   host: a blob or manifest fetched in clear could be read or swapped in transit (the
//!   digest check would catch the swap, but not the reading), and an `http://` URL on the
//!   registry's own host and port would otherwise receive its `Authorization` header;
//! - a Bearer realm given as `http://` is refused ([`Error::InsecureRealm`]): the realm gets
//!   the registry's Basic credentials (or identity token) and answers with a token.
//!
//! Plain-HTTP registries keep working with `http://` realms and redirects. Whatever the
//! scheme, `Authorization` only goes to the exact origin (scheme, host and port) it belongs
//! to ([`same_origin`]): requests redirected elsewhere go without it.

use url::Url;

use crate::Error;
use crate::endpoint::redacted;

/// Whether `url` has the same scheme, host and (effective) port as `origin`: the only place
/// a registry's (or realm's) `Authorization` header may go.
pub(crate) fn same_origin(url: &Url, origin: &Url) -> bool {
    url.scheme() == origin.scheme()
        && url.host() == origin.host()
        && url.port_or_known_default() == origin.port_or_known_default()
}

/// Whether requests whose credentials belong to `origin` must stay on HTTPS: `origin` is
/// `https://` (a secure registry, or the HTTPS realm of one).
pub(crate) fn is_secure(origin: &Url) -> bool {
    origin.scheme() == "https"
}

/// Refuses to follow a redirect from `from` to `to` when that leaves HTTPS for plain HTTP in
/// a request made for the secure `origin`.
pub(crate) fn check_redirect(
    registry: &str,
    origin: &Url,
    from: &Url,
    to: &Url,
) -> Result<(), Error> {
    if is_secure(origin) && to.scheme() != "https" {
        return Err(Error::InsecureRedirect {
            registry: registry.to_owned(),
            from: redacted(from),
            to: redacted(to),
        });
    }
    Ok(())
}

/// Refuses a plain-HTTP token realm named by a registry reached over HTTPS (`endpoint`).
pub(crate) fn check_realm(registry: &str, endpoint: &Url, realm: &Url) -> Result<(), Error> {
    if is_secure(endpoint) && realm.scheme() != "https" {
        return Err(Error::InsecureRealm {
            registry: registry.to_owned(),
            realm: redacted(realm),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn same_origin_compares_scheme_host_and_effective_port() {
        let base = url("https://registry.example/");
        let yes = [
            "https://registry.example/v2/x",
            "https://registry.example:443/y",
            "HTTPS://REGISTRY.EXAMPLE/z",
        ];
        let no = [
            "https://s3.example/bucket",
            "https://registry.example:8443/v2/x",
            "http://registry.example/v2/x",
            // Same host and port, clear text: the redirect the scheme check is for.
            "http://registry.example:443/v2/x",
            "https://sub.registry.example/v2/x",
        ];
        for text in yes {
            assert!(same_origin(&url(text), &base), "{text}");
        }
        for text in no {
            assert!(!same_origin(&url(text), &base), "{text}");
        }
        let plain = url("http://127.0.0.1:5000/");
        assert!(same_origin(&url("http://127.0.0.1:5000/v2/"), &plain));
        assert!(!same_origin(&url("https://127.0.0.1:5000/v2/"), &plain));
    }

    #[test]
    fn secure_origins_never_redirect_to_plain_http() {
        let secure = url("https://registry.example/");
        let from = url("https://registry.example/v2/a/blobs/sha256:x?sig=secret");
        for to in [
            "http://registry.example:443/v2/a/blobs/sha256:x",
            "http://registry.example/v2/a/blobs/sha256:x",
            "http://127.0.0.1:9/elsewhere?token=secret",
        ] {
            let error = check_redirect("registry.example", &secure, &from, &url(to))
                .expect_err(to)
                .to_string();
            assert!(
                error.contains("https://registry.example/v2/a/blobs/sha256:x "),
                "{error}"
            );
            assert!(error.contains(to.split('?').next().unwrap()), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
        for to in [
            "https://registry.example/v2/b",
            "https://s3.example/bucket/blob?X-Amz-Signature=1",
        ] {
            assert!(check_redirect("registry.example", &secure, &from, &url(to)).is_ok());
        }
        // A plain-HTTP registry may redirect anywhere (Authorization still only goes to its
        // own origin).
        let plain = url("http://127.0.0.1:5000/");
        let from = url("http://127.0.0.1:5000/v2/a/blobs/sha256:x");
        for to in ["http://127.0.0.1:6000/x", "https://s3.example/x"] {
            assert!(check_redirect("127.0.0.1:5000", &plain, &from, &url(to)).is_ok());
        }
    }

    #[test]
    fn secure_registries_refuse_plain_http_realms() {
        let secure = url("https://registry.example/");
        let error = check_realm(
            "registry.example",
            &secure,
            &url("http://auth.example/token?x=1"),
        )
        .unwrap_err();
        assert!(matches!(error, Error::InsecureRealm { .. }));
        let shown = error.to_string();
        assert!(shown.contains("registry.example"), "{shown}");
        assert!(shown.contains("http://auth.example/token"), "{shown}");
        assert!(
            check_realm(
                "registry.example",
                &secure,
                &url("https://auth.example/token")
            )
            .is_ok()
        );
        let plain = url("http://127.0.0.1:5000/");
        assert!(
            check_realm(
                "127.0.0.1:5000",
                &plain,
                &url("http://127.0.0.1:5001/token")
            )
            .is_ok()
        );
        assert!(check_realm("127.0.0.1:5000", &plain, &url("https://auth.example/token")).is_ok());
    }
}
