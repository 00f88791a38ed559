//! The walk of `refs/` from directory fds: `refs/`, then registry, repository and
//! selector directories, never following a symlink, with an explicit work list.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::Cache;
use crate::error::{Error, io};
use crate::tree;

/// How many directory levels hold sidecars below `refs/`: registry, repository, selector.
const REF_DEPTH: usize = 3;

/// One directory of a walk of `refs/`.
struct Level {
    fd: OwnedFd,
    path: PathBuf,
    /// Its names below `refs/`.
    components: Vec<OsString>,
    /// The subdirectories still to visit.
    pending: Vec<OsString>,
}

impl Cache {
    /// Visits `refs/` and its directories down to the selector level from directory fds,
    /// never following a symlink, with an explicit work list (at most four directories
    /// open). `visit` gets each directory's fd, path, names below `refs/` and entries.
    pub(crate) fn walk_ref_dirs(
        &self,
        mut visit: impl FnMut(
            BorrowedFd<'_>,
            &Path,
            &[OsString],
            &[(OsString, FileType)],
        ) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let refs = self.root.join("refs");
        let fd = match tree::open_dir(&refs) {
            Ok(fd) => fd,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(Error::Io {
                    operation: "open",
                    path: refs,
                    source: error,
                });
            }
        };
        let entries = tree::list(fd.as_fd()).map_err(io("read directory", &refs))?;
        visit(fd.as_fd(), &refs, &[], &entries)?;
        let mut stack = vec![Level {
            fd,
            path: refs,
            components: Vec::new(),
            pending: subdirectories(&entries),
        }];
        while let Some(top) = stack.last_mut() {
            let Some(name) = top.pending.pop() else {
                stack.pop();
                continue;
            };
            let path = top.path.join(&name);
            let fd = match tree::open_dir_at(top.fd.as_fd(), &name) {
                Ok(fd) => fd,
                Err(error)
                    if matches!(
                        error.raw_os_error().map(Errno::from_raw_os_error),
                        Some(Errno::LOOP | Errno::NOTDIR | Errno::NOENT)
                    ) =>
                {
                    continue;
                }
                Err(error) => {
                    return Err(Error::Io {
                        operation: "open",
                        path,
                        source: error,
                    });
                }
            };
            let entries = tree::list(fd.as_fd()).map_err(io("read directory", &path))?;
            let mut components = top.components.clone();
            components.push(name);
            visit(fd.as_fd(), &path, &components, &entries)?;
            let pending = if components.len() < REF_DEPTH {
                subdirectories(&entries)
            } else {
                Vec::new()
            };
            stack.push(Level {
                fd,
                path,
                components,
                pending,
            });
        }
        Ok(())
    }
}

/// The names of `entries` that may be directories of the refs tree (no leading dot).
fn subdirectories(entries: &[(OsString, FileType)]) -> Vec<OsString> {
    entries
        .iter()
        .filter(|(name, kind)| {
            !name.as_bytes().starts_with(b".")
                && matches!(kind, FileType::Directory | FileType::Unknown)
        })
        .map(|(name, _)| name.clone())
        .collect()
}
