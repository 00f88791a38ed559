//! Directory modes and mtimes, applied after the directories' contents, deepest first:
//! at the end of the layer, or earlier when too many are pending.

use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;

use super::Extraction;
use crate::content::timestamps;
use crate::root::InPath;
use crate::{Error, printable};

impl Extraction<'_> {
    /// Applies the pending directory modes and mtimes, deepest first.
    pub(crate) fn apply_pending(&mut self) -> Result<(), Error> {
        let mut pending = std::mem::take(&mut self.root.pending);
        let mut failure = None;
        pending.drain_sorted(|path, meta| {
            let Ok(fd) = self.root.open_dir(&InPath::clean(path)) else {
                // Replaced or whited out later in the layer.
                return true;
            };
            let finish_error = |errno: Errno| Error::Finish {
                path: printable(path),
                source: errno.into(),
            };
            let applied = rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
                .and_then(|()| match meta.mtime {
                    Some(mtime) => rfs::futimens(&fd, &timestamps(mtime)),
                    None => Ok(()),
                })
                .map_err(finish_error);
            match applied {
                Ok(()) => true,
                Err(error) => {
                    failure = Some(error);
                    false
                }
            }
        });
        // Keep the (emptied) buffers; the cached parent may have lost its write bit.
        self.root.pending = pending;
        self.root.invalidate();
        failure.map_or(Ok(()), Err)
    }

    /// Applies what is still pending once every entry is in.
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        self.apply_pending()
    }
}
