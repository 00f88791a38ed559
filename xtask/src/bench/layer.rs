//! The bench's own layer and layout writer: a streaming tar that goes at once to the kept
//! uncompressed tar file and through gzip or zstd into the layout's blob, hashing both
//! (diff_id and digest); the config, manifest and `index.json`; and the gzip twin of an
//! image made from the kept tars.
//!
//! Why not tank-image's `layer_from_dir`/`LayerBuilder`: the bench needs (1) layers cut from
//! one debootstrap tree by a list of paths (a split into N layers of about equal size, with
//! hard-link groups kept in one layer), not whole directories; (2) the uncompressed tar of
//! every layer kept on disk, streamed, for the limit runs (`limit.rs`) and the gzip twin,
//! which tank-image's builder does not hand out; and (3) the images to stay byte for byte
//! what earlier benchmarks pulled (GNU headers with the userland's own metadata), so medians
//! before and after a change compare the same images. It is also the oracle-like baseline:
//! a bench of tank should not pull layers written by tank.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::images::Image;

/// How a layer is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    /// gzip, level 6 (Docker's).
    Gzip,
    /// zstd, level 3 (the zstd default).
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// One layer as built.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    /// `sha256:<hex>` of the compressed blob.
    pub(crate) digest: String,
    /// The compressed size.
    pub(crate) size: u64,
    /// The blob in the layout.
    pub(crate) blob: PathBuf,
    /// The uncompressed tar.
    pub(crate) tar: PathBuf,
    /// The uncompressed tar's size.
    pub(crate) tar_size: u64,
    /// The compression.
    pub(crate) compression: Compression,
}

/// `sha256:<hex>` of what went through, and how many bytes.
pub(super) struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let hex: String = self
            .hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        (self.inner, format!("sha256:{hex}"), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(super) enum Encoder<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(compression: Compression, inner: W) -> io::Result<Encoder<W>> {
        Ok(match compression {
            Compression::Gzip => Encoder::Gzip(GzEncoder::new(inner, flate2::Compression::new(6))),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(inner, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(bytes),
            Encoder::Zstd(encoder) => encoder.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// Writes every byte to both the uncompressed tar file and the encoder.
pub(super) struct Tee<A, B> {
    tar: A,
    encoder: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tar.write_all(bytes)?;
        self.encoder.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tar.flush()?;
        self.encoder.flush()
    }
}

pub(super) type LayerWriter = Hashing<Tee<BufWriter<File>, Encoder<Hashing<BufWriter<File>>>>>;

/// Streams one layer: `fill` appends the entries; the uncompressed tar goes to `tar_path`,
/// the compressed blob into the layout's blobs. Returns the layer and its diff_id.
pub(super) fn write_layer(
    layout: &Path,
    tar_path: &Path,
    compression: Compression,
    fill: impl FnOnce(&mut tar::Builder<LayerWriter>) -> anyhow::Result<()>,
) -> anyhow::Result<(Layer, String)> {
    let blobs = layout.join("blobs/sha256");
    let partial = blobs.join("layer.partial");
    let create = |path: &Path| -> anyhow::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let encoder = Encoder::new(compression, Hashing::new(create(&partial)?))?;
    let tee = Tee {
        tar: create(tar_path)?,
        encoder,
    };
    let mut builder = tar::Builder::new(Hashing::new(tee));
    builder.follow_symlinks(false);
    fill(&mut builder)?;
    builder.finish().context("finishing a layer tar")?;
    let (tee, diff_id, tar_size) = builder
        .into_inner()
        .context("finishing a layer tar")?
        .finish();
    let mut tar = tee.tar;
    tar.flush()
        .with_context(|| format!("writing {}", tar_path.display()))?;
    let (mut blob, digest, size) = tee
        .encoder
        .finish()
        .context("compressing a layer")?
        .finish();
    blob.flush()
        .with_context(|| format!("writing {}", partial.display()))?;
    let blob_path = blobs.join(&digest["sha256:".len()..]);
    fs::rename(&partial, &blob_path)
        .with_context(|| format!("renaming {} to {}", partial.display(), blob_path.display()))?;
    Ok((
        Layer {
            digest,
            size,
            blob: blob_path,
            tar: tar_path.to_path_buf(),
            tar_size,
            compression,
        },
        diff_id,
    ))
}

/// Writes `bytes` as a blob of `layout`; returns its descriptor.
pub(super) fn write_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> anyhow::Result<Value> {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let path = layout.join("blobs/sha256").join(&hex);
    fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()}))
}

/// Writes the config, the manifest (tagged `latest`), `index.json` and `oci-layout` of an
/// image made of `layers` into `layout`.
pub(super) fn write_manifest(
    layout: &Path,
    layers: &[Layer],
    diff_ids: &[String],
) -> anyhow::Result<()> {
    let layout = layout.to_path_buf();
    let architecture = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => other,
    };
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = write_blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config)?,
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers.iter().map(|layer| json!({
            "mediaType": layer.compression.media_type(),
            "digest": layer.digest,
            "size": layer.size,
        })).collect::<Vec<_>>(),
    });
    let mut manifest = write_blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest)?,
    )?;
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)
        .context("writing index.json")?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .context("writing oci-layout")?;
    Ok(())
}

/// A copy of `image` with every layer gzip-compressed (from the kept uncompressed tars), as
/// an OCI layout in `dir`, tagged `latest`: umoci 0.4.7 cannot unpack zstd layers, so the
/// rootfs check of a zstd image unpacks this twin (same tars, so same diff_ids and rootfs).
pub(crate) fn gzip_twin(image: &Image, dir: &Path) -> anyhow::Result<PathBuf> {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &image.layers {
        let partial = blobs.join("layer.partial");
        let blob = BufWriter::with_capacity(
            1 << 20,
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?,
        );
        let mut writer = Hashing::new(GzEncoder::new(
            Hashing::new(blob),
            flate2::Compression::new(6),
        ));
        let mut tar =
            File::open(&layer.tar).with_context(|| format!("opening {}", layer.tar.display()))?;
        io::copy(&mut tar, &mut writer)
            .with_context(|| format!("compressing {}", layer.tar.display()))?;
        let (encoder, diff_id, tar_size) = writer.finish();
        let (mut blob, digest, size) = encoder.finish().context("compressing a layer")?.finish();
        blob.flush()
            .with_context(|| format!("writing {}", partial.display()))?;
        let blob_path = blobs.join(&digest["sha256:".len()..]);
        fs::rename(&partial, &blob_path)
            .with_context(|| format!("renaming {}", partial.display()))?;
        layers.push(Layer {
            digest,
            size,
            blob: blob_path,
            tar: layer.tar.clone(),
            tar_size,
            compression: Compression::Gzip,
        });
        diff_ids.push(diff_id);
    }
    write_manifest(&layout, &layers, &diff_ids)?;
    Ok(layout)
}
