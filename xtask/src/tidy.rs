//! Tidy checks over the source tree, as `#[test]`s (`cargo test --workspace` runs them): the
//! habits the compiler and clippy don't enforce, and the code map kept true to the files.
//!
//! - every Rust file opens with a `//!` comment saying what it is for;
//! - every library crate denies `clippy::unwrap_used` (unit tests may unwrap:
//!   `allow-unwrap-in-tests` in `clippy.toml`);
//! - no test is `#[ignore]`d or `#[should_panic]`: tests assert the `Err`;
//! - every `#[allow(...)]` gives its `reason = "..."`;
//! - a crate's `rust-version` is at least that of each tank crate it depends on;
//! - each crate has one integration-test binary, `tests/<name>/main.rs`, and no
//!   `tests/*.rs` (except the crates in [`TEST_BINARY_EXCEPTIONS`]);
//! - every `#[path = "..."]` in `fuzz/` (the fuzz targets share their oracles with the
//!   corpus-replay tests that way) names a file that exists, so moving a test file fails
//!   `cargo test`, not only the fuzz build;
//! - every source file of `crates/` is named in ARCHITECTURE.md's code map.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Crates still allowed `tests/*.rs` files, each its own test binary. Empty this list once
/// their tests are folded into `tests/<name>/`.
const TEST_BINARY_EXCEPTIONS: &[&str] = &[];

/// The library crates: no `unwrap()` outside their unit tests.
const LIBRARY_CRATES: &[&str] = &[
    "tank-reference",
    "tank-registry",
    "tank-cache",
    "tank-layer",
    "tank-image",
];

/// The workspace root: xtask lives in `<root>/xtask`.
fn workspace_root() -> PathBuf {
    crate::workspace_root()
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

/// The Rust files of `crates/`, `xtask/`, `tests/` and `fuzz/`, sorted.
fn all_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 10, "tidy found only {} files", files.len());
    files
}

/// Runs `check` over each file (given its path relative to the root and its text) and
/// collects `path: offence` lines.
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
fn library_crates_deny_unwrap() {
    let root = workspace_root();
    let missing: Vec<&str> = LIBRARY_CRATES
        .iter()
        .copied()
        .filter(|name| {
            let lib = root.join("crates").join(name).join("src/lib.rs");
            let text = fs::read_to_string(&lib).expect("the crate has a lib.rs");
            !text
                .lines()
                .any(|line| line.trim() == "#![deny(clippy::unwrap_used)]")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "lib.rs without #![deny(clippy::unwrap_used)]: {missing:?}"
    );
    let clippy = fs::read_to_string(root.join("clippy.toml")).expect("clippy.toml");
    assert!(clippy.contains("allow-unwrap-in-tests = true"), "{clippy}");
}

#[test]
fn no_test_is_ignored_or_should_panic() {
    let needles = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    let found = offences(&all_rust_files(), |_, text| {
        text.lines()
            .enumerate()
            .filter(|(_, line)| {
                let line = line.trim_start();
                needles.iter().any(|needle| line.starts_with(needle))
            })
            .map(|(n, line)| format!("line {}: {}", n + 1, line.trim()))
            .collect()
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The `#[allow(...)]` / `#![allow(...)]` attributes of `text` that give no `reason`, as
/// `line N: attribute`.
fn allows_without_reason(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for opener in [concat!("#[", "allow("), concat!("#![", "allow(")] {
        let mut from = 0;
        while let Some(at) = text[from..].find(opener) {
            let start = from + at;
            let end = text[start..]
                .find(")]")
                .map_or(text.len(), |end| start + end + 2);
            let attribute = &text[start..end];
            if !attribute.contains("reason") {
                let line = text[..start].lines().count() + 1;
                let shown: String = attribute.split_whitespace().collect::<Vec<_>>().join(" ");
                found.push(format!("line {line}: {shown} gives no reason"));
            }
            from = end;
        }
    }
    found
}

#[test]
fn every_allow_gives_its_reason() {
    let found = offences(&all_rust_files(), |shown, text| {
        if shown.ends_with("xtask/src/tidy.rs") {
            return vec![];
        }
        allows_without_reason(text)
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn allows_without_reason_finds_attributes_over_lines() {
    let text = concat!(
        "#[allow(dead_code)]\nfn a() {}\n#[allow(\n    clippy::x,\n    reason = \"why\"\n)]\n",
        "fn b() {}\n#![allow(unused)]\n"
    );
    assert_eq!(
        allows_without_reason(text),
        [
            "line 1: #[allow(dead_code)] gives no reason",
            "line 8: #![allow(unused)] gives no reason"
        ]
    );
}

/// One package manifest, read without a TOML parser (the workspace's manifests are simple):
/// its name, its `rust-version` and the tank crates in `[dependencies]`.
#[derive(Debug)]
struct Manifest {
    path: PathBuf,
    name: String,
    /// `None` when the package states none.
    rust_version: Option<String>,
    tank_dependencies: Vec<String>,
}

/// The value of a `key = "value"` line.
fn quoted_value(line: &str, key: &str) -> Option<String> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    Some(rest.trim_matches('"').to_owned())
}

fn read_manifest(path: &Path, workspace_rust_version: &str) -> Option<Manifest> {
    let text = fs::read_to_string(path).expect("Cargo.toml is readable");
    let mut section = String::new();
    let mut name = None;
    let mut rust_version = None;
    let mut tank_dependencies = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        match section.as_str() {
            "[package]" => {
                if let Some(value) = quoted_value(line, "name") {
                    name = Some(value);
                } else if line.starts_with("rust-version.workspace") {
                    rust_version = Some(workspace_rust_version.to_owned());
                } else if let Some(value) = quoted_value(line, "rust-version") {
                    rust_version = Some(value);
                }
            }
            "[dependencies]" => {
                let dependency = line.split(['.', ' ', '=']).next().unwrap_or("");
                if dependency.starts_with("tank-") {
                    tank_dependencies.push(dependency.to_owned());
                }
            }
            _ => {}
        }
    }
    Some(Manifest {
        path: path.to_owned(),
        name: name?,
        rust_version,
        tank_dependencies,
    })
}

/// `1.85` as `(1, 85, 0)`.
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text
        .split('.')
        .map(|part| part.parse::<u32>().expect("a numeric rust-version"));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn rust_version_covers_the_tank_dependencies() {
    let root = workspace_root();
    let workspace_text = fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let workspace_rust_version = workspace_text
        .lines()
        .skip_while(|line| line.trim() != "[workspace.package]")
        .find_map(|line| quoted_value(line.trim(), "rust-version"))
        .expect("[workspace.package] rust-version");
    let mut paths = vec![root.join("Cargo.toml"), root.join("xtask/Cargo.toml")];
    for entry in fs::read_dir(root.join("crates")).expect("crates/") {
        let manifest = entry.expect("a directory entry").path().join("Cargo.toml");
        if manifest.is_file() {
            paths.push(manifest);
        }
    }
    let manifests: BTreeMap<String, Manifest> = paths
        .iter()
        .filter_map(|path| read_manifest(path, &workspace_rust_version))
        .map(|manifest| (manifest.name.clone(), manifest))
        .collect();
    assert!(manifests.contains_key("tank-cache"), "{manifests:?}");
    assert!(!manifests["tank-image"].tank_dependencies.is_empty());

    let mut found = Vec::new();
    for manifest in manifests.values() {
        let Some(own) = &manifest.rust_version else {
            continue;
        };
        for dependency in &manifest.tank_dependencies {
            let needed = manifests
                .get(dependency)
                .and_then(|dependency| dependency.rust_version.as_ref());
            if let Some(needed) = needed
                && version(own) < version(needed)
            {
                found.push(format!(
                    "{}: rust-version {own}, but {dependency} needs {needed}",
                    manifest.path.display()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn each_crate_has_one_integration_test_binary() {
    let root = workspace_root();
    let mut crates: Vec<(String, PathBuf)> = vec![("tank".to_owned(), root.clone())];
    for entry in fs::read_dir(root.join("crates")).expect("crates/") {
        let dir = entry.expect("a directory entry").path();
        let name = dir.file_name().and_then(|name| name.to_str()).unwrap_or("");
        crates.push((name.to_owned(), dir.clone()));
    }
    let mut found = Vec::new();
    for (name, dir) in crates {
        if TEST_BINARY_EXCEPTIONS.contains(&name.as_str()) {
            continue;
        }
        let Ok(entries) = fs::read_dir(dir.join("tests")) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|extension| extension == "rs") {
                let shown = path.strip_prefix(&root).unwrap_or(&path);
                found.push(format!(
                    "{}: a test binary of its own; move it into tests/<name>/ (one binary per crate)",
                    shown.display()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// What ARCHITECTURE.md's code map names: files and directories, relative to the root.
#[derive(Debug, Default)]
struct CodeMap {
    files: Vec<String>,
    dirs: Vec<String>,
}

impl CodeMap {
    /// Reads the fenced block under `## Code map`. A line starting with `crates/<name>` opens
    /// that crate (and names its `src/lib.rs`); within it, `src/x.rs`, `src/dir/` and bare
    /// names such as `main.rs` or `apply/finish.rs` anywhere on a line name the crate's files.
    fn parse(text: &str) -> CodeMap {
        let mut map = CodeMap::default();
        let block = text
            .split_once("## Code map")
            .and_then(|(_, rest)| rest.split_once("```"))
            .and_then(|(_, rest)| rest.split_once("```"))
            .map_or("", |(block, _)| block);
        let mut current: Option<String> = None;
        for line in block.lines() {
            if line.starts_with(|c: char| !c.is_whitespace()) {
                let first = line.split_whitespace().next().unwrap_or("");
                current = first
                    .strip_prefix("crates/")
                    .map(|name| format!("crates/{}", name.trim_end_matches('/')));
                if let Some(crate_dir) = &current {
                    map.files.push(format!("{crate_dir}/src/lib.rs"));
                }
            }
            for token in line.split(|c: char| c.is_whitespace() || ",;:()`".contains(c)) {
                let is_file = token.ends_with(".rs");
                let is_dir = token.ends_with('/') && token.contains('/') && token.len() > 1;
                if !is_file && !is_dir {
                    continue;
                }
                let mut candidates = Vec::new();
                if token.starts_with("crates/") {
                    candidates.push(token.to_owned());
                } else if let Some(crate_dir) = &current {
                    candidates.push(format!("{crate_dir}/{token}"));
                    if !token.starts_with("src/") {
                        candidates.push(format!("{crate_dir}/src/{token}"));
                    }
                }
                let list = if is_file {
                    &mut map.files
                } else {
                    &mut map.dirs
                };
                list.extend(candidates);
            }
        }
        map
    }

    /// Whether `path` (relative to the root, `/`-separated) is named: the file itself, a
    /// directory holding it, or, for a unit-test `tests.rs`, its parent module.
    fn names(&self, path: &str) -> bool {
        if self.files.iter().any(|file| file == path) {
            return true;
        }
        if self.dirs.iter().any(|dir| path.starts_with(dir.as_str())) {
            return true;
        }
        if let Some(dir) = path.strip_suffix("/tests.rs") {
            return self.names(&format!("{dir}.rs")) || self.names(&format!("{dir}/mod.rs"));
        }
        false
    }
}

/// The library and CLI sources the map must name: `crates/*/src/**.rs` and `crates/tank/*.rs`.
fn mapped_sources() -> Vec<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    for entry in fs::read_dir(root.join("crates")).expect("crates/") {
        let dir = entry.expect("a directory entry").path();
        if dir.join("src").is_dir() {
            rust_files(&dir.join("src"), &mut files);
        } else if let Ok(entries) = fs::read_dir(&dir) {
            files.extend(
                entries
                    .map(|entry| entry.expect("a directory entry").path())
                    .filter(|path| path.extension().is_some_and(|extension| extension == "rs")),
            );
        }
    }
    let mut shown: Vec<String> = files
        .iter()
        .map(|file| {
            file.strip_prefix(&root)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    shown.sort();
    shown
}

#[test]
fn every_source_file_is_named_in_the_code_map() {
    let text = fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).expect("the map");
    let map = CodeMap::parse(&text);
    assert!(map.files.len() > 20, "the code map was not found: {map:?}");
    let sources = mapped_sources();
    assert!(sources.len() > 20, "{sources:?}");
    let unnamed: Vec<&String> = sources.iter().filter(|file| !map.names(file)).collect();
    let report = unnamed
        .iter()
        .map(|file| format!("{file}: not named in ARCHITECTURE.md's code map"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(unnamed.is_empty(), "{report}");
}

#[test]
fn the_code_map_parser_reads_crates_files_and_directories() {
    let text = "\
# x

## Code map

```
Cargo.toml              workspace
crates/tank-layer       one layer
  src/stream.rs         streams
  src/tar/              the tar reader
  src/apply.rs          entries; apply/finish.rs: modes
crates/tank             the CLI
  main.rs               clap
  run_spec.rs, cache.rs one file per command
tests/cli/              end-to-end tests
```

## Layering
  src/other.rs
";
    let map = CodeMap::parse(text);
    for named in [
        "crates/tank-layer/src/lib.rs",
        "crates/tank-layer/src/stream.rs",
        "crates/tank-layer/src/tar/header.rs",
        "crates/tank-layer/src/apply/finish.rs",
        "crates/tank-layer/src/stream/tests.rs",
        "crates/tank/main.rs",
        "crates/tank/run_spec.rs",
        "crates/tank/cache.rs",
    ] {
        assert!(map.names(named), "{named} should be named: {map:?}");
    }
    for unnamed in [
        "crates/tank-layer/src/other.rs",
        "crates/tank-layer/src/root.rs",
        "crates/tank/copy.rs",
        "crates/tank-layer/src/apply/other.rs",
    ] {
        assert!(
            !map.names(unnamed),
            "{unnamed} should not be named: {map:?}"
        );
    }
}

/// The `#[path = "..."]` attributes of one file, with their line numbers.
fn path_attributes(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(number, line)| {
            let rest = line
                .trim()
                .strip_prefix("#[path")?
                .trim_start()
                .strip_prefix('=')?;
            let value = rest.trim().strip_prefix('"')?;
            Some((number + 1, value.split('"').next()?.to_owned()))
        })
        .collect()
}

#[test]
fn every_fuzz_path_attribute_names_an_existing_file() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("fuzz/fuzz_targets"), &mut files);
    assert!(
        !files.is_empty(),
        "no fuzz targets found under fuzz/fuzz_targets"
    );
    let mut seen = 0;
    let mut missing = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("read fuzz target");
        for (line, target) in path_attributes(&text) {
            seen += 1;
            let resolved = file.parent().expect("a file has a parent").join(&target);
            if !resolved.is_file() {
                missing.push(format!("{}:{line}: {target}", file.display()));
            }
        }
    }
    assert!(
        seen > 0,
        "the fuzz targets include no shared oracle: the check reads nothing"
    );
    assert!(
        missing.is_empty(),
        "#[path] attributes naming no file (a test file moved?):\n{}",
        missing.join("\n")
    );
}

#[test]
fn path_attributes_are_read_with_their_lines() {
    let text = "//! x\n#[path = \"../a/b.rs\"]\nmod b;\n  #[path=\"c.rs\"]\n// #[cfg(test)]\n";
    assert_eq!(
        path_attributes(text),
        vec![(2, "../a/b.rs".to_owned()), (4, "c.rs".to_owned())]
    );
}
