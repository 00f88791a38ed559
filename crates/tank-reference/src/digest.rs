//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and streaming hashing and verification.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::Error;
use crate::grammar;

/// A digest algorithm tank can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// SHA-256, the algorithm of nearly every image.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The number of hex characters of a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The name as written in digests.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// `sha256` or `sha512`, exactly (go-digest's names are lower-case).
    fn from_str(name: &str) -> Result<Algorithm, Error> {
        match name {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(Error::UnsupportedDigestAlgorithm {
                input: other.to_owned(),
                algorithm: other.to_owned(),
            }),
        }
    }
}

/// A validated content digest: a supported algorithm and its lower-case hex value.
///
/// Parsing follows go-digest: `algorithm:encoded`, where an algorithm other than sha256 and
/// sha512 is refused as unsupported, and the encoded part must be exactly the algorithm's
/// length of lower-case hex.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex value, without the `algorithm:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of a whole buffer.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// A verifier that checks streamed bytes against this digest and, when given, a size.
    pub fn verifier(&self, expected_size: Option<u64>) -> Verifier {
        Verifier {
            expected: self.clone(),
            expected_size,
            hasher: Hasher::new(self.algorithm),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;

    /// Parses `algorithm:hex` as go-digest's `Parse` does, but supporting sha256 and sha512
    /// only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDigestFormat`] when it is not `algorithm:hex` or the hex is not
    /// lower-case, [`Error::UnsupportedDigestAlgorithm`] for a well-formed digest of another
    /// algorithm, [`Error::InvalidDigestLength`] when the hex has the wrong length.
    fn from_str(input: &str) -> Result<Digest, Error> {
        parse_digest_in(input, input)
    }
}

/// Parses the digest `digest`, found in `input` (a reference, or the digest itself), with
/// errors naming both.
pub(crate) fn parse_digest_in(digest: &str, input: &str) -> Result<Digest, Error> {
    let invalid = |reason: String| Error::InvalidDigestFormat {
        input: input.to_owned(),
        digest: digest.to_owned(),
        reason,
    };
    let (algorithm, encoded) = match digest.split_once(':') {
        Some((algorithm, encoded)) if !algorithm.is_empty() && !encoded.is_empty() => {
            (algorithm, encoded)
        }
        _ => return Err(invalid("expected ALGORITHM:HEX".to_owned())),
    };
    let algorithm = match algorithm {
        "sha256" => Algorithm::Sha256,
        "sha512" => Algorithm::Sha512,
        other => {
            return Err(match grammar::digest_problem(digest) {
                Some(reason) => invalid(reason),
                None => Error::UnsupportedDigestAlgorithm {
                    input: input.to_owned(),
                    algorithm: other.to_owned(),
                },
            });
        }
    };
    if encoded.len() != algorithm.hex_len() {
        return Err(Error::InvalidDigestLength {
            input: input.to_owned(),
            digest: digest.to_owned(),
            algorithm,
            expected: algorithm.hex_len(),
            actual: encoded.len(),
        });
    }
    if let Some(bad) = encoded
        .chars()
        .find(|c| !(c.is_ascii_digit() || ('a'..='f').contains(c)))
    {
        return Err(invalid(format!(
            "the hex part must be lower-case hexadecimal, and contains {bad:?}"
        )));
    }
    Ok(Digest {
        algorithm,
        hex: encoded.to_owned(),
    })
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// Hashes bytes as they pass and yields their [`Digest`].
#[derive(Clone)]
pub struct Hasher {
    state: State,
    bytes: u64,
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Hasher { state, bytes: 0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(hasher) => hasher.update(bytes),
            State::Sha512(hasher) => hasher.update(bytes),
        }
        self.bytes += bytes.len() as u64;
    }

    /// How many bytes have been fed.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.state {
            State::Sha256(hasher) => (Algorithm::Sha256, to_hex(&hasher.finalize())),
            State::Sha512(hasher) => (Algorithm::Sha512, to_hex(&hasher.finalize())),
        };
        Digest { algorithm, hex }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        };
        f.debug_struct("Hasher")
            .field("algorithm", &algorithm)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// Checks streamed bytes against an expected digest and size.
///
/// [`Verifier::update`] fails as soon as more bytes arrive than the expected size, so a
/// hostile server cannot make a caller read (or store) an endless stream;
/// [`Verifier::finish`] checks the final size and digest.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Hasher,
}

impl Verifier {
    /// Feeds bytes.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`] as soon as the bytes seen so far exceed the expected size.
    /// The refused bytes are not taken: the verifier is as it was before the call.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let total = self.hasher.bytes() + bytes.len() as u64;
        if let Some(expected) = self.expected_size {
            if total > expected {
                return Err(Error::SizeMismatch {
                    digest: self.expected.clone(),
                    expected,
                    actual: total,
                });
            }
        }
        self.hasher.update(bytes);
        Ok(())
    }

    /// How many bytes have been accepted.
    pub fn bytes(&self) -> u64 {
        self.hasher.bytes()
    }

    /// The digest being checked against.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// The size being checked against, when one was given.
    pub fn expected_size(&self) -> Option<u64> {
        self.expected_size
    }

    /// Checks the size and the digest of everything fed; returns the digest.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`] when fewer bytes came than expected,
    /// [`Error::DigestMismatch`] when the bytes hash to another digest.
    pub fn finish(self) -> Result<Digest, Error> {
        let actual_size = self.hasher.bytes();
        if let Some(expected) = self.expected_size {
            if actual_size != expected {
                return Err(Error::SizeMismatch {
                    digest: self.expected,
                    expected,
                    actual: actual_size,
                });
            }
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(Error::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        Ok(actual)
    }
}

impl std::io::Write for Verifier {
    /// Feeds `buf` through [`Verifier::update`]; an overflow is an
    /// [`std::io::ErrorKind::InvalidData`] error wrapping [`Error::SizeMismatch`].
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf)
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
