//! End-to-end tests of the `tank` binary against a real registry, and tidy checks of the tree.

mod inspect;
mod tidy;
