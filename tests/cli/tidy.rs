//! Tidy checks over the source tree: habits the compiler and clippy don't enforce.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "fixtures" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "tidy found only {} files", files.len());
    files
}

/// The part of a library source file before its unit tests, where panics are not allowed.
fn library_part(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// A `…/src/<module>/tests.rs` that its module (`<module>.rs` or `<module>/mod.rs`) declares
/// as `#[cfg(test)] mod tests;`: unit tests kept in their own file.
fn is_unit_test_file(shown: &Path) -> bool {
    if shown.file_name().is_none_or(|name| name != "tests.rs") {
        return false;
    }
    let Some(dir) = shown.parent() else {
        return false;
    };
    let root = workspace_root();
    [dir.with_extension("rs"), dir.join("mod.rs")]
        .iter()
        .any(|parent| {
            fs::read_to_string(root.join(parent))
                .is_ok_and(|text| text.contains("#[cfg(test)]\nmod tests;"))
        })
}

fn offences(files: &[PathBuf], check: impl Fn(&Path, &str) -> Vec<String>) -> Vec<String> {
    let root = workspace_root();
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).expect("source file is UTF-8");
        let shown = file.strip_prefix(&root).unwrap_or(file);
        for offence in check(shown, &text) {
            found.push(format!("{}: {offence}", shown.display()));
        }
    }
    found
}

#[test]
fn every_source_file_opens_with_a_module_comment() {
    let found = offences(&all_rust_files(), |_, text| {
        if text.trim_start().starts_with("//!") {
            vec![]
        } else {
            vec!["does not open with a //! comment saying what it is for".to_owned()]
        }
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn library_code_does_not_unwrap() {
    let libraries: Vec<PathBuf> = all_rust_files()
        .into_iter()
        .filter(|path| {
            let text = path.to_string_lossy();
            text.contains("/crates/tank-")
                && text.contains("/src/")
                && !text.contains("/crates/tank-testkit/")
        })
        .collect();
    assert!(!libraries.is_empty());
    let found = offences(&libraries, |shown, text| {
        if is_unit_test_file(shown) {
            return vec![];
        }
        library_part(text)
            .lines()
            .enumerate()
            .filter(|(_, line)| {
                let code = line.split("//").next().unwrap_or("");
                code.contains(".unwrap()")
            })
            .map(|(n, line)| format!("line {}: unwrap() in library code: {}", n + 1, line.trim()))
            .collect()
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_test_is_ignored() {
    let needle = concat!("#[", "ignore");
    let found = offences(&all_rust_files(), |_, text| {
        text.lines()
            .enumerate()
            .filter(|(_, line)| line.trim_start().starts_with(needle))
            .map(|(n, _)| format!("line {}: ignored test", n + 1))
            .collect()
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn library_part_stops_at_unit_tests() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests { fn b() { x.unwrap(); } }\n";
    assert_eq!(library_part(text), "fn a() {}\n");
    assert_eq!(library_part("fn a() {}"), "fn a() {}");
}
