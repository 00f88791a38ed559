//! Ref sidecars: `refs/<registry>/<repository>/<tag-or-digest>/<platform>.json`, one per
//! pulled (reference, platform), each path component percent-encoded.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tank_reference::{DEFAULT_TAG, Digest, Reference};

use rustix::io::Errno;

use crate::Cache;
use crate::error::{Error, Warning, io};
use crate::files::{self, Access};
use crate::{fsutil, tree};

/// The `version` this tank writes into ref sidecars. Readers ignore fields they do not know,
/// so a newer tank's sidecar still reads.
pub const REF_RECORD_VERSION: u32 = 1;

/// What a pull of one (reference, platform) resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefRecord {
    /// The platform manifest's digest (also the rootfs name).
    #[serde(with = "digest_string")]
    pub manifest_digest: Digest,
    /// The index (manifest list) digest, when the reference named an index.
    #[serde(default, with = "optional_digest_string")]
    pub index_digest: Option<Digest>,
    /// The parsed image config.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Every blob the ref needs kept: config and layers, and manifest or index blobs when
    /// they were stored. [`Cache::gc`] keeps these (and the manifest and index digests).
    #[serde(default, with = "digest_strings")]
    pub blobs: Vec<Digest>,
    /// When the record was made, in seconds since the Unix epoch.
    #[serde(default)]
    pub written_at: u64,
}

impl RefRecord {
    /// A record made now.
    pub fn new(
        manifest_digest: Digest,
        index_digest: Option<Digest>,
        config: serde_json::Value,
        blobs: Vec<Digest>,
    ) -> RefRecord {
        let written_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        RefRecord {
            manifest_digest,
            index_digest,
            config,
            blobs,
            written_at,
        }
    }

    /// Every digest the record keeps alive: the manifest, the index and the blobs.
    pub(crate) fn reachable_blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.manifest_digest)
            .chain(self.index_digest.as_ref())
            .chain(self.blobs.iter())
    }
}

/// The sidecar file: the record with its format version.
#[derive(Serialize, Deserialize)]
struct RefFile {
    #[serde(default = "default_version")]
    version: u32,
    #[serde(flatten)]
    record: RefRecord,
}

fn default_version() -> u32 {
    REF_RECORD_VERSION
}

/// Which sidecar: a reference's registry, repository and tag or digest, and a platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct RefKey {
    /// The registry, e.g. `docker.io` or `[::1]:5000`.
    pub registry: String,
    /// The repository, e.g. `library/alpine`.
    pub repository: String,
    /// The digest (`sha256:…`) when the reference has one, else its tag (`latest` when
    /// it has neither).
    pub tag_or_digest: String,
    /// The platform, as the caller named it, e.g. `linux/amd64`.
    pub platform: String,
}

impl RefKey {
    /// The key of `reference` on `platform`.
    pub fn new(reference: &Reference, platform: &str) -> RefKey {
        let tag_or_digest = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_string(),
            (None, None) => DEFAULT_TAG.to_string(),
        };
        RefKey {
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            tag_or_digest,
            platform: platform.to_string(),
        }
    }

    /// The sidecar's path relative to `refs/`.
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(encode_component(&self.registry))
            .join(encode_component(&self.repository))
            .join(encode_component(&self.tag_or_digest))
            .join(format!("{}.json", encode_component(&self.platform)))
    }

    fn from_components(components: [&str; 4]) -> Option<RefKey> {
        let [registry, repository, tag_or_digest, file] = components;
        Some(RefKey {
            registry: decode_component(registry)?,
            repository: decode_component(repository)?,
            tag_or_digest: decode_component(tag_or_digest)?,
            platform: decode_component(file.strip_suffix(".json")?)?,
        })
    }
}

impl fmt::Display for RefKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = if self.tag_or_digest.contains(':') {
            '@'
        } else {
            ':'
        };
        write!(
            f,
            "{}/{}{separator}{} ({})",
            self.registry, self.repository, self.tag_or_digest, self.platform
        )
    }
}

/// One cached ref, as [`Cache::list_refs`] lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CachedRef {
    /// Which ref.
    pub key: RefKey,
    /// What it resolved to.
    pub record: RefRecord,
    /// The bytes of the cached blobs it reaches (each counted once).
    pub blob_bytes: u64,
    /// The bytes of its assembled rootfs (0 when none is cached).
    pub rootfs_bytes: u64,
}

/// Percent-encodes one path component: see the crate docs' "Layout".
pub(crate) fn encode_component(value: &str) -> String {
    if value.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for (index, byte) in value.bytes().enumerate() {
        let plain = byte.is_ascii_lowercase()
            || byte.is_ascii_digit()
            || byte == b'_'
            || byte == b'-'
            || (byte == b'.' && index > 0);
        if plain {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reverses [`encode_component`]; `None` for names it cannot have made.
pub(crate) fn decode_component(name: &str) -> Option<String> {
    if name == "%" {
        return Some(String::new());
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = name.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    (encode_component(&decoded) == name).then_some(decoded)
}

impl Cache {
    fn ref_path(&self, key: &RefKey) -> PathBuf {
        self.root.join("refs").join(key.relative_path())
    }

    /// Writes the sidecar of (`reference`, `platform`), replacing any older one atomically.
    /// Returns its path.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn write_ref(
        &self,
        reference: &Reference,
        platform: &str,
        record: &RefRecord,
    ) -> Result<PathBuf, Error> {
        let path = self.ref_path(&RefKey::new(reference, platform));
        let dir = path
            .parent()
            .expect("a ref path has a parent directory")
            .to_path_buf();
        fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let file = RefFile {
            version: REF_RECORD_VERSION,
            record: record.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|source| Error::RefRecord {
            path: path.clone(),
            source,
        })?;
        let (mut temp_file, temp) = fsutil::create_locked_temp(&dir, fsutil::TEMP_PREFIX)
            .map_err(io("create temporary file in", &dir))?;
        let result = temp_file
            .write_all(&json)
            .and_then(|()| temp_file.sync_all())
            .and_then(|()| fs::rename(&temp, &path))
            .and_then(|()| fsutil::sync_dir(&dir));
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map_err(io("write", path.clone()))?;
        Ok(path)
    }

    /// Reads the sidecar of (`reference`, `platform`), or `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::RefRecord`] when it is not valid JSON, [`Error::UnexpectedFileType`] when it
    /// is not a regular file (a symlink is never followed), [`Error::Io`] when it cannot
    /// be read.
    pub fn read_ref(
        &self,
        reference: &Reference,
        platform: &str,
    ) -> Result<Option<RefRecord>, Error> {
        let path = self.ref_path(&RefKey::new(reference, platform));
        let file = match files::open_regular(&path, Access::Read) {
            Ok(file) => file,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let bytes = read_all(file, &path)?;
        parse_record(&path, &bytes).map(Some)
    }

    /// Every sidecar with its key, sorted by key. Files that are not sidecars (temporaries,
    /// names this tank cannot have written) are skipped, and so (with a warning) are
    /// sidecar names that are not regular files: never followed, never opened blocking.
    ///
    /// # Errors
    ///
    /// [`Error::RefRecord`] when a sidecar is not valid JSON (so that gc never removes what
    /// an unreadable ref may reach), [`Error::Io`] when the tree cannot be read.
    pub(crate) fn ref_records(&self) -> Result<Vec<(RefKey, RefRecord)>, Error> {
        let mut found = Vec::new();
        self.walk_ref_dirs(|fd, dir, components, entries| {
            let [registry, repository, selector] = components else {
                return Ok(());
            };
            for (name, _) in entries {
                let names = [registry, repository, selector, name].map(|name| name.to_str());
                let [Some(a), Some(b), Some(c), Some(d)] = names else {
                    continue;
                };
                if d.starts_with('.') {
                    continue;
                }
                let Some(key) = RefKey::from_components([a, b, c, d]) else {
                    continue;
                };
                let path = dir.join(name);
                let Some(file) = open_sidecar_at(fd, name, &path)? else {
                    continue;
                };
                let bytes = read_all(file, &path)?;
                found.push((key, parse_record(&path, &bytes)?));
            }
            Ok(())
        })?;
        found.sort_by(|left, right| left.0.cmp(&right.0));
        Ok(found)
    }

    /// Every cached ref with the bytes it holds in blobs and in its rootfs.
    ///
    /// A rootfs is measured from directory fds; what cannot be measured is logged as a
    /// warning and left out of the count.
    ///
    /// # Errors
    ///
    /// [`Error::RefRecord`] when a sidecar is not valid JSON, [`Error::Io`] when the cache
    /// cannot be read.
    pub fn list_refs(&self) -> Result<Vec<CachedRef>, Error> {
        let mut listed = Vec::new();
        for (key, record) in self.ref_records()? {
            let mut blob_bytes = 0u64;
            let mut seen = std::collections::HashSet::new();
            for digest in record.reachable_blobs() {
                if seen.insert(digest)
                    && let Ok(metadata) = fs::symlink_metadata(self.blob_final_path(digest))
                    && metadata.is_file()
                {
                    blob_bytes = blob_bytes.saturating_add(metadata.len());
                }
            }
            let rootfs_bytes = match self.rootfs_path(&record.manifest_digest) {
                Some(path) => {
                    let (bytes, partial) = tree::tree_size(&path);
                    if let Some(error) = partial {
                        let _: Warning = error.into();
                    }
                    bytes
                }
                None => 0,
            };
            listed.push(CachedRef {
                key,
                record,
                blob_bytes,
                rootfs_bytes,
            });
        }
        Ok(listed)
    }
}

/// Opens the sidecar `name` of `dir`; `None` (with a warning) when it is not a regular
/// file or is gone.
fn open_sidecar_at(
    dir: BorrowedFd<'_>,
    name: &OsString,
    path: &Path,
) -> Result<Option<File>, Error> {
    let fd = match files::open_read_at(dir, name.as_os_str()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            Warning::from_error("read ref", &files::unexpected(path, "symbolic link"));
            return Ok(None);
        }
        Err(error) => {
            return Err(Error::Io {
                operation: "open",
                path: path.to_path_buf(),
                source: error.into(),
            });
        }
    };
    let file = File::from(fd);
    let file_type = file.metadata().map_err(io("inspect", path))?.file_type();
    if !file_type.is_file() {
        Warning::from_error("read ref", &files::unexpected(path, "special file"));
        return Ok(None);
    }
    Ok(Some(file))
}

fn read_all(mut file: File, path: &Path) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read", path))?;
    Ok(bytes)
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<RefRecord, Error> {
    serde_json::from_slice::<RefFile>(bytes)
        .map(|file| file.record)
        .map_err(|source| Error::RefRecord {
            path: path.to_path_buf(),
            source,
        })
}

mod digest_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use tank_reference::Digest;

    pub(super) fn serialize<S: Serializer>(
        digest: &Digest,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(digest)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

mod optional_digest_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use tank_reference::Digest;

    pub(super) fn serialize<S: Serializer>(
        digest: &Option<Digest>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match digest {
            Some(digest) => serializer.collect_str(digest),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Digest>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod digest_strings {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};
    use tank_reference::Digest;

    pub(super) fn serialize<S: Serializer>(
        digests: &[Digest],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(digests.len()))?;
        for digest in digests {
            seq.serialize_element(&digest.to_string())?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Digest>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_component, encode_component};

    #[test]
    fn components_round_trip_and_stay_single_safe_names() {
        for value in [
            "",
            "docker.io",
            "[::1]:5000",
            "library/alpine",
            "..",
            ".hidden",
            "Tag_1.0",
            "sha256:abc",
            "linux/arm64/v8",
            "%41",
        ] {
            let encoded = encode_component(value);
            assert!(!encoded.contains('/'), "{encoded}");
            assert!(!encoded.starts_with('.'), "{encoded}");
            assert_eq!(decode_component(&encoded).as_deref(), Some(value));
        }
        assert_eq!(encode_component("[::1]:5000"), "%5B%3A%3A1%5D%3A5000");
        // Names the encoder cannot have made are refused rather than misread.
        assert_eq!(decode_component("%4"), None);
        assert_eq!(decode_component("%61"), None);
        assert_eq!(decode_component("UPPER"), None);
    }
}
