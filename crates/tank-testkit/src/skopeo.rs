//! `skopeo copy` and `skopeo inspect --raw`, isolated from the user's auth files and policy.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::Error;
use crate::oci::read_layout_tags;
use crate::registry::find_program;

/// One tag of an OCI layout as skopeo can read it: `oci:DIR:TAG` for OCI media types, or a
/// temporary copy in skopeo's `dir:` format for Docker media types, which skopeo 1.9's `oci:`
/// transport does not accept in `index.json`.
#[derive(Debug)]
pub struct LayoutSource {
    reference: String,
    _dir_copy: Option<TempDir>,
}

impl LayoutSource {
    /// The source for `tag` of the layout in `layout`.
    pub fn new(layout: &Path, tag: &str) -> Result<LayoutSource, Error> {
        let tags = read_layout_tags(layout)?;
        let entry =
            tags.iter()
                .find(|entry| entry.tag == tag)
                .ok_or_else(|| Error::InvalidLayout {
                    path: layout.join("index.json"),
                    problem: format!("no entry is tagged {tag:?}"),
                })?;
        if entry.media_type.starts_with("application/vnd.oci.") {
            return Ok(LayoutSource {
                reference: format!("oci:{}:{tag}", layout.display()),
                _dir_copy: None,
            });
        }
        let copy = tempfile::Builder::new()
            .prefix("tank-skopeo-dir-")
            .tempdir()
            .map_err(|source| Error::io(std::env::temp_dir(), source))?;
        write_dir_transport(layout, &entry.digest, copy.path())?;
        Ok(LayoutSource {
            reference: format!("dir:{}", copy.path().display()),
            _dir_copy: Some(copy),
        })
    }

    /// The skopeo image name, e.g. `oci:/path:latest` or `dir:/tmp/…`.
    pub fn reference(&self) -> &str {
        &self.reference
    }
}

/// Copies the manifest or index `digest` of `layout`, with everything it references, into
/// `out` in skopeo's `dir:` format: `manifest.json`, `<hex>.manifest.json` per index entry,
/// `<hex>` per blob, and a `version` file.
fn write_dir_transport(layout: &Path, digest: &str, out: &Path) -> Result<(), Error> {
    let top = read_blob(layout, digest)?;
    let document = parse_blob(layout, digest, &top)?;
    if let Some(entries) = document["manifests"].as_array() {
        for entry in entries {
            let entry_digest = descriptor_digest(layout, entry)?;
            let manifest = read_blob(layout, entry_digest)?;
            let path = out.join(format!("{}.manifest.json", hex_of(entry_digest)));
            fs::write(&path, &manifest).map_err(|source| Error::io(&path, source))?;
            let parsed = parse_blob(layout, entry_digest, &manifest)?;
            copy_image_blobs(layout, &parsed, out)?;
        }
    } else {
        copy_image_blobs(layout, &document, out)?;
    }
    let manifest_path = out.join("manifest.json");
    fs::write(&manifest_path, &top).map_err(|source| Error::io(&manifest_path, source))?;
    let version_path = out.join("version");
    fs::write(&version_path, "Directory Transport Version: 1.1\n")
        .map_err(|source| Error::io(&version_path, source))?;
    Ok(())
}

fn copy_image_blobs(layout: &Path, manifest: &Value, out: &Path) -> Result<(), Error> {
    let mut descriptors = vec![&manifest["config"]];
    if let Some(layers) = manifest["layers"].as_array() {
        descriptors.extend(layers);
    }
    for descriptor in descriptors {
        let digest = descriptor_digest(layout, descriptor)?;
        let bytes = read_blob(layout, digest)?;
        let path = out.join(hex_of(digest));
        fs::write(&path, bytes).map_err(|source| Error::io(&path, source))?;
    }
    Ok(())
}

fn descriptor_digest<'a>(layout: &Path, descriptor: &'a Value) -> Result<&'a str, Error> {
    descriptor["digest"]
        .as_str()
        .ok_or_else(|| Error::InvalidLayout {
            path: layout.to_path_buf(),
            problem: format!("descriptor without digest: {descriptor}"),
        })
}

fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>, Error> {
    let path = layout.join("blobs").join("sha256").join(hex_of(digest));
    fs::read(&path).map_err(|source| Error::io(&path, source))
}

fn parse_blob(layout: &Path, digest: &str, bytes: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        path: layout.join("blobs").join("sha256").join(hex_of(digest)),
        source,
    })
}

/// Options for [`skopeo_copy`]. TLS verification is always off (test registries speak plain
/// HTTP on loopback) and the signature policy is never consulted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `--all`: copy every image of an index, not just the host's.
    pub all: bool,
    /// `--preserve-digests`: fail rather than rewrite a manifest.
    pub preserve_digests: bool,
    /// `--src-creds USER:PASSWORD`; `--src-no-creds` when `None`.
    pub src_creds: Option<(String, String)>,
    /// `--dest-creds USER:PASSWORD`; `--dest-no-creds` when `None`.
    pub dest_creds: Option<(String, String)>,
    /// `--format` (`oci` or `v2s2`); the source's manifest type when `None`.
    pub format: Option<String>,
}

/// Runs `skopeo copy SRC DST` (e.g. `oci:DIR:TAG` to `docker://HOST/REPO:TAG`).
pub fn skopeo_copy(source: &str, destination: &str, options: &CopyOptions) -> Result<(), Error> {
    let mut arguments: Vec<String> = vec![
        "copy".into(),
        "--quiet".into(),
        "--src-tls-verify=false".into(),
        "--dest-tls-verify=false".into(),
    ];
    if options.all {
        arguments.push("--all".into());
    }
    if options.preserve_digests {
        arguments.push("--preserve-digests".into());
    }
    if let Some(format) = &options.format {
        arguments.extend(["--format".into(), format.clone()]);
    }
    push_creds(
        &mut arguments,
        "--src-creds",
        "--src-no-creds",
        options.src_creds.as_ref(),
    );
    push_creds(
        &mut arguments,
        "--dest-creds",
        "--dest-no-creds",
        options.dest_creds.as_ref(),
    );
    arguments.extend([source.to_owned(), destination.to_owned()]);
    run_skopeo(arguments)?;
    Ok(())
}

/// Runs `skopeo inspect --raw IMAGE` and returns the manifest or index bytes exactly as served.
pub fn skopeo_inspect_raw(image: &str, creds: Option<(&str, &str)>) -> Result<Vec<u8>, Error> {
    let mut arguments: Vec<String> = vec![
        "inspect".into(),
        "--raw".into(),
        "--tls-verify=false".into(),
    ];
    let creds = creds.map(|(user, password)| (user.to_owned(), password.to_owned()));
    push_creds(&mut arguments, "--creds", "--no-creds", creds.as_ref());
    arguments.push(image.to_owned());
    run_skopeo(arguments)
}

fn push_creds(
    arguments: &mut Vec<String>,
    creds_flag: &str,
    no_creds_flag: &str,
    creds: Option<&(String, String)>,
) {
    match creds {
        Some((user, password)) => {
            arguments.extend([creds_flag.to_owned(), format!("{user}:{password}")]);
        }
        None => arguments.push(no_creds_flag.to_owned()),
    }
}

/// Runs skopeo with an empty temporary auth file and scratch directory, returning stdout.
fn run_skopeo(arguments: Vec<String>) -> Result<Vec<u8>, Error> {
    let program = find_program("skopeo", "TANK_SKOPEO", "skopeo")?;
    let scratch = tempfile::Builder::new()
        .prefix("tank-skopeo-")
        .tempdir()
        .map_err(|source| Error::io(std::env::temp_dir(), source))?;
    let auth_file = scratch.path().join("auth.json");
    fs::write(&auth_file, "{\"auths\":{}}").map_err(|source| Error::io(&auth_file, source))?;

    // Global options first, then the subcommand and its options; the auth file goes right
    // after the subcommand name, where both `copy` and `inspect` accept it.
    let mut full: Vec<String> = vec![
        "--insecure-policy".into(),
        "--tmpdir".into(),
        path_string(scratch.path()),
    ];
    let mut arguments = arguments.into_iter();
    if let Some(subcommand) = arguments.next() {
        full.push(subcommand);
    }
    full.extend(["--authfile".into(), path_string(&auth_file)]);
    full.extend(arguments);

    let output = Command::new(&program)
        .args(&full)
        .output()
        .map_err(|source| Error::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::CommandFailed {
            command: command_line(&program, &full),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

fn path_string(path: &Path) -> String {
    path.display().to_string()
}

/// The command for an error message, with any password masked.
fn command_line(program: &Path, arguments: &[String]) -> String {
    let mut line = program.display().to_string();
    let mut mask_next = false;
    for argument in arguments {
        let shown = if mask_next {
            match argument.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => argument.clone(),
            }
        } else {
            argument.clone()
        };
        mask_next = argument.ends_with("-creds");
        line.push(' ');
        line.push_str(&shown);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ImageBuilder, OciLayoutBuilder, Platform};
    use crate::tarball::TarBuilder;

    #[test]
    fn copy_between_layouts_keeps_the_manifest_bytes() {
        let source = tempfile::tempdir().unwrap();
        let destination = tempfile::tempdir().unwrap();
        let summary = OciLayoutBuilder::new()
            .image(
                "v1",
                ImageBuilder::new(Platform::new("linux", "amd64"))
                    .layer(&TarBuilder::new().file("f", "x", 0o644)),
            )
            .write(source.path())
            .unwrap();
        skopeo_copy(
            &format!("oci:{}:v1", source.path().display()),
            &format!("oci:{}:copied", destination.path().display()),
            &CopyOptions {
                preserve_digests: true,
                ..CopyOptions::default()
            },
        )
        .expect("skopeo copy between layouts");
        let raw = skopeo_inspect_raw(
            &format!("oci:{}:copied", destination.path().display()),
            None,
        )
        .expect("skopeo inspect of the copy");
        assert_eq!(raw, summary.get("v1").unwrap().top().bytes());
    }

    #[test]
    fn a_failing_copy_reports_the_command_and_stderr() {
        let source = tempfile::tempdir().unwrap();
        let error = skopeo_copy(
            &format!("oci:{}:absent", source.path().display()),
            "oci:/nonexistent/never:x",
            &CopyOptions {
                dest_creds: Some(("user".into(), "hidden-password".into())),
                ..CopyOptions::default()
            },
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::CommandFailed { .. }), "{message}");
        assert!(message.contains("skopeo"), "{message}");
        assert!(message.contains(":absent"), "{message}");
        assert!(message.contains("user:***"), "{message}");
        assert!(!message.contains("hidden-password"), "{message}");
    }
}
