//! The progress board `pull` and `copy` share: one bar per layer or blob (bytes and rate)
//! when stderr is a terminal and logging is on; without bars the commands log lines instead.

use std::sync::{Mutex, PoisonError};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tank_reference::Digest;

/// The bars and the items (layers, blobs) they stand for.
pub(crate) struct Board<T> {
    /// The bar area, when bars are drawn.
    pub(crate) bars: Option<MultiProgress>,
    state: Mutex<BoardState<T>>,
}

/// What the board knows, behind its lock.
pub(crate) struct BoardState<T> {
    /// The items, as the command announced them.
    pub(crate) items: Vec<T>,
    /// One bar per item, when bars are drawn.
    pub(crate) bars: Vec<ProgressBar>,
}

impl<T> Board<T> {
    pub(crate) fn new() -> Board<T> {
        Board {
            bars: crate::progress_bars().cloned(),
            state: Mutex::new(BoardState {
                items: Vec::new(),
                bars: Vec::new(),
            }),
        }
    }

    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut BoardState<T>) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    /// Stops every bar and clears the area (the command's own output follows).
    pub(crate) fn finish(&self) {
        self.with_state(|state| {
            for bar in &state.bars {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        });
        if let Some(multi) = &self.bars {
            let _ = multi.clear();
        }
    }
}

/// The style of one bar; `message_width` fits the longest status word.
pub(crate) fn style(message_width: usize) -> ProgressStyle {
    let template = format!(
        "{{prefix}} {{wide_bar:.cyan/blue}} {{bytes:>9}}/{{total_bytes:<9}} {{binary_bytes_per_sec:>11}} {{msg:{message_width}}}"
    );
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `sha256:` and the first 12 hex digits.
pub(crate) fn short(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("{}:{}", digest.algorithm(), &hex[..hex.len().min(12)])
}
