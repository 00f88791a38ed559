//! Capped reads of the local files the crate reads: `registries.conf` and its drop-ins, and
//! the Docker and containers credentials files. A file larger than its cap (a mistake, or
//! `/dev/zero` named as a config) is refused without reading past the cap.

use std::io::{self, Read};
use std::path::Path;

/// The most bytes read of a `registries.conf` file or drop-in, or of a credentials file
/// (Docker `config.json`, containers `auth.json`): 1 MiB, thousands of entries.
pub const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;

/// Reads `path` as UTF-8 text, failing with [`io::ErrorKind::FileTooLarge`] (message naming
/// `limit`) as soon as it holds more than `limit` bytes.
pub(crate) fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).map_or(true, |length| length > limit) {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("the file is larger than the {limit}-byte limit"),
        ));
    }
    String::from_utf8(bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_limit_are_refused_and_others_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_text(&path, 10).unwrap(), "0123456789");
        let error = read_text(&path, 9).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert!(error.to_string().contains("9-byte limit"), "{error}");
        // An endless device stops at the cap.
        let error = read_text(Path::new("/dev/zero"), 1000).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_text(&path, 10).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
