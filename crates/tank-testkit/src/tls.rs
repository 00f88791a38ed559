//! A throwaway certificate authority and a server certificate it issued, made with the
//! `openssl` command (Debian's `openssl` package, a dependency of `ca-certificates`), for
//! tests that serve HTTPS on loopback: a [`crate::Registry`] with
//! [`crate::RegistryBuilder::tls`], or a hand-made TLS server.
//!
//! The `openssl` command rather than a Rust crate (rcgen): it is installed wherever the
//! system's CA bundle is, and it adds no crate (rcgen would bring `pem`, `yasna` and `time`
//! into the lockfile for tests only). A missing `openssl` fails with
//! [`Error::ToolMissing`] naming the package; `$TANK_OPENSSL` may name another binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;
use crate::registry::find_program;

/// The host name every test certificate is valid for, besides `127.0.0.1` and `localhost`:
/// a name that is not loopback by its spelling (clients speak HTTPS to it) and that tests
/// map to `127.0.0.1` themselves (`tank_registry::ClientConfig::resolve`).
pub const TEST_TLS_HOST: &str = "registry.tank.test";

/// A CA certificate and a server certificate (with its key) that the CA issued, valid for
/// two days for `127.0.0.1`, `localhost` and [`TEST_TLS_HOST`], as PEM files in a directory.
#[derive(Clone, Debug)]
pub struct TestCertificates {
    ca_pem: Vec<u8>,
    ca_path: PathBuf,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl TestCertificates {
    /// Makes a new CA (ECDSA P-256, `CA:TRUE`) and a server certificate it signs (with
    /// `subjectAltName` `IP:127.0.0.1, DNS:localhost, DNS:registry.tank.test` and the
    /// `serverAuth` usage) in `dir`: `ca.pem`, `server.pem`, `server.key` (plus the CA's
    /// key and the request).
    pub fn generate(dir: &Path) -> Result<TestCertificates, Error> {
        let openssl = find_program("openssl", "TANK_OPENSSL", "openssl")?;
        fs::create_dir_all(dir).map_err(|source| Error::io(dir, source))?;
        let ca_path = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        let cert_path = dir.join("server.pem");
        let key_path = dir.join("server.key");
        let request = dir.join("server.csr");
        let extensions = dir.join("server.ext");
        fs::write(
            &extensions,
            format!(
                "basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:{TEST_TLS_HOST}\n"
            ),
        )
        .map_err(|source| Error::io(&extensions, source))?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(
            &openssl,
            &[
                &["req", "-x509"][..],
                &ec[..],
                &[
                    "-days",
                    "2",
                    "-subj",
                    "/CN=tank-testkit test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
            &[("-keyout", &ca_key), ("-out", &ca_path)],
        )?;
        run(
            &openssl,
            &[&["req"][..], &ec[..], &["-subj", "/CN=127.0.0.1"]].concat(),
            &[("-keyout", &key_path), ("-out", &request)],
        )?;
        run(
            &openssl,
            &["x509", "-req", "-days", "2", "-set_serial", "2"],
            &[
                ("-in", &request),
                ("-CA", &ca_path),
                ("-CAkey", &ca_key),
                ("-extfile", &extensions),
                ("-out", &cert_path),
            ],
        )?;
        let ca_pem = fs::read(&ca_path).map_err(|source| Error::io(&ca_path, source))?;
        Ok(TestCertificates {
            ca_pem,
            ca_path,
            cert_path,
            key_path,
        })
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The CA certificate file.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The server certificate file (PEM, the leaf alone).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The server's private key file (PEM, PKCS#8).
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
}

/// Runs `openssl args… (flag path)…`, failing with its stderr.
fn run(openssl: &Path, args: &[&str], paths: &[(&str, &Path)]) -> Result<(), Error> {
    let mut command = Command::new(openssl);
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let shown = format!("{} {}", openssl.display(), {
        let mut words: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        for (flag, path) in paths {
            words.push((*flag).to_owned());
            words.push(path.display().to_string());
        }
        words.join(" ")
    });
    let output = command.output().map_err(|source| Error::Spawn {
        program: openssl.display().to_string(),
        source,
    })?;
    if !output.status.success() {
        return Err(Error::CommandFailed {
            command: shown,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_generated_as_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let certificates = TestCertificates::generate(dir.path()).unwrap();
        let ca = String::from_utf8(certificates.ca_pem().to_vec()).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        let leaf = fs::read_to_string(certificates.cert_path()).unwrap();
        assert!(leaf.contains("BEGIN CERTIFICATE"), "{leaf}");
        let key = fs::read_to_string(certificates.key_path()).unwrap();
        assert!(key.contains("PRIVATE KEY"), "{key}");
        // The leaf verifies against the CA, for the names the tests use.
        let output = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(certificates.ca_path())
            .arg("-verify_ip")
            .arg("127.0.0.1")
            .arg(certificates.cert_path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
