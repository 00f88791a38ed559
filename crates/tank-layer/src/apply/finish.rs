//! After the last entry: opaque directories are emptied of lower-layer content, then
//! directory modes and mtimes are applied, deepest first.

use std::io;

use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;

use super::Extraction;
use crate::book::PathList;
use crate::content::timestamps;
use crate::root::{InPath, remove_children_of, remove_dir_contents};
use crate::{Error, printable};

impl Extraction<'_> {
    /// Applies opaque markers, then directory modes and mtimes, deepest first.
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        let opaque = std::mem::take(&mut self.opaque);
        for index in 0..opaque.len() {
            let (joined, _, _) = opaque.get(index);
            let dir = InPath::clean(joined);
            let finish_error = |source: io::Error| Error::Finish {
                path: printable(joined),
                source,
            };
            let mut keep = self.created.keeper(joined);
            match dir.split_last() {
                None => {
                    let root_fd = self.root.fd().try_clone().map_err(finish_error)?;
                    remove_children_of(&root_fd, &mut keep).map_err(finish_error)?;
                }
                Some((parent, name)) => {
                    let Ok(parent_fd) = self.root.open_dir(&parent) else {
                        continue;
                    };
                    match remove_dir_contents(&parent_fd, name, &mut keep) {
                        // Already removed by an opaque marker of a directory above it.
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        other => other.map_err(finish_error)?,
                    }
                }
            }
            self.root.invalidate();
        }

        // Every directory once, the last record of a path winning, a directory entry's
        // over a lower directory loosened to write into it.
        let loosened = std::mem::take(&mut self.root.loosened);
        let dirs = std::mem::take(&mut self.dirs);
        let list = |is_loosened: bool| -> &PathList { if is_loosened { &loosened } else { &dirs } };
        let mut order: Vec<(bool, usize)> = (0..dirs.len())
            .map(|index| (false, index))
            .chain((0..loosened.len()).map(|index| (true, index)))
            .collect();
        order.sort_by(|a, b| {
            let (path_a, depth_a, _) = list(a.0).get(a.1);
            let (path_b, depth_b, _) = list(b.0).get(b.1);
            depth_b
                .cmp(&depth_a)
                .then_with(|| path_a.cmp(path_b))
                .then_with(|| a.0.cmp(&b.0))
                .then_with(|| b.1.cmp(&a.1))
        });
        let mut last: Option<&[u8]> = None;
        for (is_loosened, index) in order {
            let (path, _, meta) = list(is_loosened).get(index);
            if last == Some(path) {
                continue;
            }
            last = Some(path);
            let Ok(fd) = self.root.open_dir(&InPath::clean(path)) else {
                // Replaced or whited out later in the layer.
                continue;
            };
            let finish_error = |errno: Errno| Error::Finish {
                path: printable(path),
                source: errno.into(),
            };
            rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(finish_error)?;
            if let Some(mtime) = meta.mtime {
                rfs::futimens(&fd, &timestamps(mtime)).map_err(finish_error)?;
            }
        }
        Ok(())
    }
}
