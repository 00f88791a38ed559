//! The filesystem reads a layer build needs, with errors naming the path: `lstat`, link
//! targets, sorted directory listings, content comparison and `user.*` xattrs.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rustix::io::Errno;

use crate::Error;

/// The names in `dir`, sorted by their bytes.
pub(super) fn sorted_names(dir: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let failed = |source| Error::Io {
        operation: "list directory",
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(failed)? {
        names.push(item.map_err(failed)?.file_name().as_bytes().to_vec());
    }
    names.sort();
    Ok(names)
}

/// `lstat`: the metadata of `path` itself, not of what a symlink points at.
pub(super) fn lstat(path: &Path) -> Result<Metadata, Error> {
    fs::symlink_metadata(path).map_err(|source| Error::Io {
        operation: "stat",
        path: path.to_path_buf(),
        source,
    })
}

/// The target of the symlink at `path`, as bytes.
pub(super) fn read_link(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read_link(path)
        .map(|target| target.into_os_string().as_bytes().to_vec())
        .map_err(|source| Error::Io {
            operation: "read link",
            path: path.to_path_buf(),
            source,
        })
}

/// Whether two files of equal size hold the same bytes, compared in chunks.
pub(super) fn same_contents(a: &Path, b: &Path) -> Result<bool, Error> {
    let open = |path: &Path| {
        File::open(path).map_err(|source| Error::Io {
            operation: "open",
            path: path.to_path_buf(),
            source,
        })
    };
    let (mut file_a, mut file_b) = (open(a)?, open(b)?);
    let mut buffer_a = vec![0_u8; 64 * 1024];
    let mut buffer_b = vec![0_u8; 64 * 1024];
    loop {
        let read_a = read_full(&mut file_a, &mut buffer_a, a)?;
        let read_b = read_full(&mut file_b, &mut buffer_b, b)?;
        if buffer_a[..read_a] != buffer_b[..read_b] {
            return Ok(false);
        }
        if read_a == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buffer` as far as the file allows; returns how much was read.
fn read_full(file: &mut File, buffer: &mut [u8], path: &Path) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    operation: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(filled)
}

/// Extended attributes as (full name, value) pairs.
pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The `user.*` extended attributes of `path` (not following symlinks), sorted by name;
/// none where the filesystem has no xattrs.
pub(super) fn user_xattrs(path: &Path) -> Result<Xattrs, Error> {
    let failed = |errno: Errno| Error::Io {
        operation: "read extended attributes of",
        path: path.to_path_buf(),
        source: io::Error::from(errno),
    };
    let mut names = vec![0_u8; 64 * 1024];
    let length = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(length) => length,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(errno) => return Err(failed(errno)),
    };
    let mut out = Vec::new();
    for name in names[..length].split(|byte| *byte == 0) {
        if !name.starts_with(b"user.") {
            continue;
        }
        let mut value = vec![0_u8; 64 * 1024];
        let length =
            rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..]).map_err(failed)?;
        value.truncate(length);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}
