//! Extra trusted root certificates ([`crate::ClientConfig::extra_root_certificates`]): a
//! private registry whose certificate is issued by an internal CA.

use std::path::Path;

use reqwest::Certificate;

use crate::Error;
use crate::config::ClientConfig;

/// The certificates of every PEM document of `config.extra_root_certificates`, checked:
/// each document must hold at least one certificate, and every certificate must be one
/// rustls takes as a trust anchor.
pub(crate) fn extra_roots(config: &ClientConfig) -> Result<Vec<Certificate>, Error> {
    let mut roots = Vec::new();
    for (index, pem) in config.extra_root_certificates.iter().enumerate() {
        let what = format!("extra root certificates #{}", index + 1);
        let certificates = Certificate::from_pem_bundle(pem).map_err(|source| Error::TlsRoots {
            what: what.clone(),
            reason: source.to_string(),
        })?;
        if certificates.is_empty() {
            return Err(Error::TlsRoots {
                what,
                reason: "no PEM \"CERTIFICATE\" block in it".to_owned(),
            });
        }
        // rustls parses a certificate only when the client is built: try it now, without
        // the system's roots, so that a bad one is reported when the client is made.
        let mut trial = reqwest::Client::builder().tls_built_in_root_certs(false);
        for certificate in &certificates {
            trial = trial.add_root_certificate(certificate.clone());
        }
        trial.build().map_err(|source| Error::TlsRoots {
            what,
            reason: source.to_string(),
        })?;
        roots.extend(certificates);
    }
    Ok(roots)
}

/// Reads a PEM file of CA certificates for [`ClientConfig::extra_root_certificates`].
pub(crate) fn read_pem_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::TlsRootsFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a request failed because the server's certificate was not trusted or not valid
/// for its name: retrying will not change that. reqwest has no typed TLS error, so this
/// reads rustls's message in the error chain (`invalid peer certificate: …`).
pub(crate) fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.to_string().contains("invalid peer certificate") {
            return true;
        }
        cause = current.source();
    }
    false
}
