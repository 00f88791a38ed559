//! Decompression chosen from the media type and checked against magic bytes, and the
//! reader that hashes the uncompressed tar bytes into the diff_id as they pass.

use std::io::{self, BufReader, Read};

use crate::Error;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Whether `head` starts a zstd stream: a zstd frame, or a skippable frame (magic
/// 0x184D2A50..=0x184D2A5F, little-endian), which a zstd stream may begin with.
fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(ZSTD_MAGIC)
        || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
}

/// How a layer's tar stream is compressed.
///
/// Exhaustive: these are the compressions of the OCI and Docker layer media types, and
/// callers (tank-image builds layers in each) match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames, skippable frames among them).
    Zstd,
}

impl Compression {
    /// The compression of a layer with this OCI or Docker media type.
    ///
    /// ```
    /// use tank_layer::Compression;
    /// let media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// assert_eq!(Compression::from_media_type(media_type).ok(), Some(Compression::Zstd));
    /// assert!(Compression::from_media_type("application/json").is_err());
    /// ```
    pub fn from_media_type(media_type: &str) -> Result<Compression, Error> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Ok(Compression::Zstd),
            _ => Err(Error::UnsupportedMediaType {
                media_type: media_type.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// Wraps `stream` in the decompressor for `compression`, after checking the magic bytes.
pub(crate) fn decompress<'a, R: Read + Send + 'a>(
    stream: R,
    compression: Compression,
) -> Result<Box<dyn Read + Send + 'a>, Error> {
    let mut stream = stream;
    let head = read_head(&mut stream, 4).map_err(|source| Error::Stream {
        offset: 0,
        after_entry: None,
        source,
    })?;
    let buffered = BufReader::with_capacity(64 * 1024, io::Cursor::new(head.clone()).chain(stream));
    let found = if head.starts_with(GZIP_MAGIC) {
        Some(("gzip", Compression::Gzip))
    } else if is_zstd(&head) {
        Some(("zstd", Compression::Zstd))
    } else {
        None
    };
    match (compression, found) {
        (Compression::None, None) => Ok(Box::new(buffered)),
        (Compression::Gzip, Some((_, Compression::Gzip))) => {
            Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
        }
        #[cfg(not(feature = "zstd"))]
        (Compression::Zstd, Some((_, Compression::Zstd))) => Err(Error::CodecNotBuilt {
            declared: Compression::Zstd,
            feature: "zstd",
        }),
        #[cfg(feature = "zstd")]
        (Compression::Zstd, Some((_, Compression::Zstd))) => {
            let decoder = zstd::stream::read::Decoder::with_buffer(buffered).map_err(|source| {
                Error::Stream {
                    offset: 0,
                    after_entry: None,
                    source,
                }
            })?;
            Ok(Box::new(decoder))
        }
        (declared, Some((name, _))) => Err(Error::CompressionMismatch {
            declared,
            found: name,
        }),
        (declared, None) => Err(Error::CompressionMismatch {
            declared,
            found: "an uncompressed stream",
        }),
    }
}

/// Reads up to `wanted` bytes (fewer only at the end of the stream).
fn read_head<R: Read>(reader: &mut R, wanted: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0_u8; wanted];
    let mut filled = 0;
    while filled < wanted {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// `sha256:<hex>` of what `hasher` hashed.
pub(crate) fn diff_id(hasher: sha2::Sha256) -> String {
    use sha2::Digest as _;
    let digest = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Passes bytes through, counting them and enforcing an optional size limit. (The diff_id
/// is hashed on a thread of its own: [`crate::pipe::hash`].)
pub(crate) struct CountingReader<R> {
    inner: R,
    bytes: u64,
    max_bytes: Option<u64>,
    pub(crate) limit_hit: bool,
}

impl<R: Read> CountingReader<R> {
    pub(crate) fn new(inner: R, max_bytes: Option<u64>) -> CountingReader<R> {
        CountingReader {
            inner,
            bytes: 0,
            max_bytes,
            limit_hit: false,
        }
    }

    /// Bytes passed so far.
    pub(crate) fn passed(&self) -> u64 {
        self.bytes
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if let Some(max) = self.max_bytes {
            if self.bytes > max {
                self.limit_hit = true;
                return Err(io::Error::other("layer size limit exceeded"));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd frame: the magic bytes and a little more.
    const ZSTD_HEAD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00];

    #[cfg(not(feature = "zstd"))]
    #[test]
    fn without_the_zstd_feature_a_zstd_layer_names_the_missing_feature() {
        let error = match decompress(ZSTD_HEAD, Compression::Zstd) {
            Ok(_) => panic!("a zstd layer was accepted without the zstd feature"),
            Err(error) => error,
        };
        assert!(
            matches!(
                error,
                Error::CodecNotBuilt {
                    feature: "zstd",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("\"zstd\""), "{error}");
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn with_the_zstd_feature_a_zstd_layer_opens() {
        assert!(decompress(ZSTD_HEAD, Compression::Zstd).is_ok());
    }
}
