//! The bench images, built without internet: a Debian userland made by `debootstrap`
//! (`userland.rs`) cut into layers, plus two generated images (many layers with whiteouts,
//! many small files). Each image is written as an OCI layout by the bench's own streaming
//! writer (`layer.rs`, which says why it is not tank-image's), its layers streamed to files
//! (never held in memory), and the uncompressed layer tars are kept for the limit
//! measurements.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::layer::{Compression, Layer, write_layer, write_manifest};
use super::userland::{FsEntry, append_fs_entry, split_layers, walk};

/// The images the bench pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageName {
    /// The Debian userland as one gzip layer.
    Big1,
    /// The same userland split into five gzip layers.
    Big5,
    /// The same userland as one zstd layer.
    BigZstd,
    /// 32 small gzip layers with whiteouts and opaque directories between them.
    ManyLayers,
    /// About 100,000 small files in one gzip layer.
    ManyFiles,
}

impl ImageName {
    /// Every image, in the order the bench runs them.
    pub(crate) const ALL: [ImageName; 5] = [
        ImageName::Big1,
        ImageName::Big5,
        ImageName::BigZstd,
        ImageName::ManyLayers,
        ImageName::ManyFiles,
    ];

    /// The name used on the command line, in the registry and in the tables.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImageName::Big1 => "big-1",
            ImageName::Big5 => "big-5",
            ImageName::BigZstd => "big-zstd",
            ImageName::ManyLayers => "many-layers",
            ImageName::ManyFiles => "many-files",
        }
    }

    /// The image called `name`.
    pub(crate) fn parse(name: &str) -> anyhow::Result<ImageName> {
        ImageName::ALL
            .into_iter()
            .find(|image| image.as_str() == name)
            .with_context(|| {
                let known: Vec<&str> = ImageName::ALL.iter().map(|image| image.as_str()).collect();
                format!("unknown image {name:?} (known: {})", known.join(", "))
            })
    }

    /// Whether the image is made from the Debian userland.
    pub(crate) fn needs_base(self) -> bool {
        matches!(self, ImageName::Big1 | ImageName::Big5 | ImageName::BigZstd)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Changes whenever what the generators produce changes, so cached images are rebuilt.
const GENERATOR_VERSION: &str = "bench-images-1";
/// The mtime of generated entries (2023-11-14).
const GENERATED_MTIME: u64 = 1_700_000_000;
/// How much of the userland the `--quick` big images keep (in file bytes).
const QUICK_BASE_BYTES: u64 = 48 * 1024 * 1024;

/// One generated path.
enum Generated {
    Dir(String),
    /// Path, size and the seed of its text.
    File(String, usize, u64),
    Symlink(String, String),
    Hardlink(String, String),
}

impl Generated {
    fn append<W: Write>(&self, builder: &mut tar::Builder<W>) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(GENERATED_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        match self {
            Generated::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, io::empty())
            }
            Generated::File(path, size, seed) => {
                let content = text(*size, *seed);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if seed % 7 == 0 { 0o755 } else { 0o644 });
                header.set_size(content.len() as u64);
                builder.append_data(&mut header, path, &content[..])
            }
            Generated::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
            Generated::Hardlink(path, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
        }
    }

    fn file_bytes(&self) -> Option<u64> {
        match self {
            Generated::File(_, size, _) => Some(*size as u64),
            _ => None,
        }
    }
}

/// `size` bytes of word-like text (compressing like source code or configuration does),
/// the same for the same seed.
fn text(size: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "layer", "image", "file", "return", "value", "config", "struct", "impl", "for",
        "self", "error", "path", "while", "match", "data", "index", "static", "const", "let",
        "string", "digest", "manifest", "registry", "cache", "blob", "write", "read", "open",
    ];
    let mut words = tank_testkit::Xorshift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut out = Vec::with_capacity(size + 16);
    let mut column = 0;
    while out.len() < size {
        let state = words.next().expect("xorshift never ends");
        let word = WORDS[(state % WORDS.len() as u64) as usize];
        if state.is_multiple_of(11) {
            out.extend_from_slice(format!("{:x}", state >> 40).as_bytes());
        } else {
            out.extend_from_slice(word.as_bytes());
        }
        column += word.len() + 1;
        if column > 72 {
            out.push(b'\n');
            column = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(size);
    out
}

/// The layers of `many-layers`: `count` layers, each adding a directory of files, rewriting
/// a shared file, deleting a fifth of the previous layer's files with whiteouts, and every
/// eighth layer replacing an older directory with an opaque whiteout.
fn many_layers(count: usize) -> Vec<Vec<Generated>> {
    let files_per_layer = 40;
    let mut layers = Vec::new();
    for layer in 0..count {
        let mut entries = vec![Generated::Dir("data".into()), Generated::Dir("etc".into())];
        let dir = format!("data/l{layer:02}");
        entries.push(Generated::Dir(dir.clone()));
        for file in 0..files_per_layer {
            let seed = (layer * 1000 + file) as u64;
            entries.push(Generated::File(
                format!("{dir}/f{file:03}"),
                512 + (seed as usize * 97) % 6000,
                seed,
            ));
        }
        entries.push(Generated::Hardlink(
            format!("{dir}/f000.link"),
            format!("{dir}/f000"),
        ));
        entries.push(Generated::Symlink(
            format!("{dir}/latest"),
            format!("f{:03}", files_per_layer - 1),
        ));
        entries.push(Generated::File(
            "etc/config".into(),
            300 + layer * 10,
            layer as u64 + 1_000_000,
        ));
        if layer > 0 {
            let previous = format!("data/l{:02}", layer - 1);
            for file in (0..files_per_layer).step_by(5) {
                entries.push(Generated::File(format!("{previous}/.wh.f{file:03}"), 0, 0));
            }
        }
        if layer >= 4 && layer % 8 == 0 {
            let old = format!("data/l{:02}", layer - 4);
            entries.push(Generated::Dir(old.clone()));
            entries.push(Generated::File(format!("{old}/.wh..wh..opq"), 0, 0));
            entries.push(Generated::File(
                format!("{old}/replaced"),
                800,
                layer as u64 + 2_000_000,
            ));
        }
        layers.push(entries);
    }
    layers
}

/// The one layer of `many-files`: `count` files of 100 to 2,100 bytes, 100 to a directory.
fn many_files(count: usize) -> Vec<Generated> {
    let mut entries = vec![Generated::Dir("files".into())];
    for index in 0..count {
        if index % 100 == 0 {
            entries.push(Generated::Dir(format!("files/d{:04}", index / 100)));
        }
        let seed = index as u64;
        entries.push(Generated::File(
            format!("files/d{:04}/f{:03}.txt", index / 100, index % 100),
            100 + (index * 7919) % 2000,
            seed,
        ));
    }
    entries
}

/// One image as built: an OCI layout tagged `latest` and what it holds.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    /// Which image.
    pub(crate) name: ImageName,
    /// The OCI layout.
    pub(crate) layout: PathBuf,
    /// The layers, bottom first.
    pub(crate) layers: Vec<Layer>,
    /// Tar entries over all layers.
    pub(crate) entries: u64,
    /// Regular files (with content) over all layers.
    pub(crate) files: u64,
    /// Bytes of regular-file content over all layers.
    pub(crate) file_bytes: u64,
}

impl Image {
    /// The total compressed size.
    pub(crate) fn compressed(&self) -> u64 {
        self.layers.iter().map(|layer| layer.size).sum()
    }

    /// The total uncompressed (tar) size.
    pub(crate) fn uncompressed(&self) -> u64 {
        self.layers.iter().map(|layer| layer.tar_size).sum()
    }

    fn to_json(&self) -> Value {
        json!({
            "generator": GENERATOR_VERSION,
            "name": self.name.as_str(),
            "entries": self.entries,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "layers": self.layers.iter().map(|layer| json!({
                "digest": layer.digest,
                "size": layer.size,
                "blob": layer.blob,
                "tar": layer.tar,
                "tar_size": layer.tar_size,
                "compression": layer.compression.as_str(),
            })).collect::<Vec<_>>(),
        })
    }

    fn from_json(value: &Value, layout: PathBuf) -> Option<Image> {
        if value["generator"] != GENERATOR_VERSION {
            return None;
        }
        let mut layers = Vec::new();
        for layer in value["layers"].as_array()? {
            let layer = Layer {
                digest: layer["digest"].as_str()?.to_owned(),
                size: layer["size"].as_u64()?,
                blob: PathBuf::from(layer["blob"].as_str()?),
                tar: PathBuf::from(layer["tar"].as_str()?),
                tar_size: layer["tar_size"].as_u64()?,
                compression: match layer["compression"].as_str()? {
                    "gzip" => Compression::Gzip,
                    "zstd" => Compression::Zstd,
                    _ => return None,
                },
            };
            if !layer.blob.is_file() || !layer.tar.is_file() {
                return None;
            }
            layers.push(layer);
        }
        Some(Image {
            name: ImageName::parse(value["name"].as_str()?).ok()?,
            layout,
            layers,
            entries: value["entries"].as_u64()?,
            files: value["files"].as_u64()?,
            file_bytes: value["file_bytes"].as_u64()?,
        })
    }
}

/// What a layer is made of.
enum Source<'a> {
    Userland(&'a Path, &'a [FsEntry], Vec<usize>),
    Generated(Vec<Generated>),
}

/// Where the bench keeps everything: `target/bench`.
pub(crate) struct Workspace {
    /// `target/bench`.
    pub(crate) root: PathBuf,
}

impl Workspace {
    /// The image `name` (quick or full size), built unless a finished one of the same
    /// generator is in `target/bench/images/` and neither `rebuild` nor `base_rebuilt`.
    pub(crate) fn image(
        &self,
        name: ImageName,
        quick: bool,
        rebuild: bool,
        base: Option<&Path>,
    ) -> anyhow::Result<Image> {
        let dir = self
            .root
            .join("images")
            .join(format!("{name}{}", if quick { "-quick" } else { "" }));
        let manifest = dir.join("image.json");
        let layout = dir.join("layout");
        if !rebuild
            && let Ok(bytes) = fs::read(&manifest)
            && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && let Some(image) = Image::from_json(&value, layout.clone())
        {
            return Ok(image);
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        eprintln!(
            "xtask bench: building image {name}{}",
            if quick { " (quick)" } else { "" }
        );
        let image = build(name, quick, &dir, base)?;
        fs::write(&manifest, serde_json::to_vec_pretty(&image.to_json())?)
            .with_context(|| format!("writing {}", manifest.display()))?;
        Ok(image)
    }
}

fn build(name: ImageName, quick: bool, dir: &Path, base: Option<&Path>) -> anyhow::Result<Image> {
    let layout = dir.join("layout");
    let tars = dir.join("tars");
    for path in [layout.join("blobs/sha256"), tars.clone()] {
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let walked;
    let mut plan: Vec<(Source<'_>, Compression)> = Vec::new();
    if name.needs_base() {
        let root = base.context("the big images need the Debian userland")?;
        walked = walk(root)?;
        let count = if quick {
            let mut bytes = 0;
            walked
                .iter()
                .position(|entry| {
                    bytes += entry.metadata.len();
                    bytes > QUICK_BASE_BYTES
                })
                .unwrap_or(walked.len())
        } else {
            walked.len()
        };
        let (layers, compression) = match name {
            ImageName::Big5 => (5, Compression::Gzip),
            ImageName::BigZstd => (1, Compression::Zstd),
            _ => (1, Compression::Gzip),
        };
        for indices in split_layers(&walked, count, layers) {
            plan.push((Source::Userland(root, &walked, indices), compression));
        }
    } else if name == ImageName::ManyLayers {
        for layer in many_layers(32) {
            plan.push((Source::Generated(layer), Compression::Gzip));
        }
    } else {
        let count = if quick { 10_000 } else { 100_000 };
        plan.push((Source::Generated(many_files(count)), Compression::Gzip));
    }

    let (mut entries, mut files, mut file_bytes) = (0_u64, 0_u64, 0_u64);
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (index, (source, compression)) in plan.into_iter().enumerate() {
        let tar_path = tars.join(format!("layer-{index:02}.tar"));
        let (layer, diff_id) = write_layer(&layout, &tar_path, compression, |builder| {
            match &source {
                Source::Userland(root, walked, indices) => {
                    for &index in indices {
                        append_fs_entry(builder, root, walked, index)?;
                        let entry = &walked[index];
                        entries += 1;
                        if entry.metadata.is_file() && entry.link_to.is_none() {
                            files += 1;
                            file_bytes += entry.metadata.len();
                        }
                    }
                }
                Source::Generated(generated) => {
                    for entry in generated {
                        entry.append(builder).context("writing a generated layer")?;
                        entries += 1;
                        if let Some(bytes) = entry.file_bytes()
                            && bytes > 0
                        {
                            files += 1;
                            file_bytes += bytes;
                        }
                    }
                }
            }
            Ok(())
        })?;
        layers.push(layer);
        diff_ids.push(diff_id);
    }

    write_manifest(&layout, &layers, &diff_ids)?;
    Ok(Image {
        name,
        layout,
        layers,
        entries,
        files,
        file_bytes,
    })
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use sha2::{Digest as _, Sha256};

    use super::*;

    #[test]
    fn image_names_round_trip() {
        for image in ImageName::ALL {
            assert_eq!(ImageName::parse(image.as_str()).unwrap(), image);
        }
        assert!(ImageName::parse("big-2").is_err());
    }

    #[test]
    fn generated_text_is_deterministic_and_sized() {
        assert_eq!(text(1000, 5), text(1000, 5));
        assert_ne!(text(1000, 5), text(1000, 6));
        assert_eq!(text(1234, 1).len(), 1234);
    }

    /// The text generator now draws from testkit's `Xorshift`; the bench images must stay
    /// the bytes they were, so this pins it against the generator's former inline xorshift.
    #[test]
    fn generated_text_is_the_same_as_before_the_shared_generator() {
        let words: Vec<u64> = tank_testkit::Xorshift::new(7u64.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .take(100)
            .collect();
        let mut state = 7u64.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let former: Vec<u64> = (0..100)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect();
        assert_eq!(words, former);
    }

    #[test]
    fn a_built_image_is_a_valid_layout_with_matching_digests() {
        let dir = tempfile::tempdir().unwrap();
        let image = build(ImageName::ManyLayers, true, dir.path(), None).unwrap();
        assert_eq!(image.layers.len(), 32);
        let index: Value =
            serde_json::from_slice(&fs::read(image.layout.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
        let manifest: Value = serde_json::from_slice(
            &fs::read(
                image
                    .layout
                    .join("blobs/sha256")
                    .join(&manifest_digest[7..]),
            )
            .unwrap(),
        )
        .unwrap();
        for (layer, descriptor) in image
            .layers
            .iter()
            .zip(manifest["layers"].as_array().unwrap())
        {
            let blob = fs::read(&layer.blob).unwrap();
            assert_eq!(descriptor["digest"], layer.digest);
            assert_eq!(
                layer.digest,
                format!(
                    "sha256:{}",
                    Sha256::digest(&blob)
                        .iter()
                        .map(|byte| format!("{byte:02x}"))
                        .collect::<String>()
                )
            );
            let mut unpacked = Vec::new();
            io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut unpacked)
                .unwrap();
            assert_eq!(unpacked, fs::read(&layer.tar).unwrap());
        }
        // Layer 1 deletes a fifth of layer 0's files.
        let mut archive = tar::Archive::new(File::open(&image.layers[1].tar).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"data/l00/.wh.f005".to_owned()), "{names:?}");
    }
}
