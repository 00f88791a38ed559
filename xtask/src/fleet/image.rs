//! The fleet's image: one deterministic OCI layout (a base layer of small files, large
//! random files, many medium ones) generated without internet, and its push with tank's copy.

use super::*;

/// What the image holds.
pub(super) struct Image {
    /// Config plus layers: the blobs a cold pull fetches.
    pub(super) blobs: usize,
    pub(super) layers: usize,
    pub(super) layer_bytes: u64,
    /// Config and layer sizes by digest.
    pub(super) sizes: BTreeMap<String, u64>,
    pub(super) files: usize,
    pub(super) manifest_digest: String,
}

/// A deterministic pseudo-random stream (splitmix64): incompressible bytes without a seed
/// file or internet.
pub(super) struct Random(u64);

impl Random {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    pub(super) fn bytes(&mut self, length: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(length + 8);
        while out.len() < length {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(length);
        out
    }

    /// Text-like bytes (words from a small vocabulary): gzip shrinks them, as real
    /// configuration and script files.
    pub(super) fn text(&mut self, length: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "tank",
            "layer",
            "mirror",
            "registry",
            "blob",
            "digest",
            "manifest",
            "config",
            "=",
            "true",
            "false",
            "/usr/lib",
            "\n",
            "# comment",
            "0.1.0",
            "value",
        ];
        let mut out = Vec::with_capacity(length + 16);
        while out.len() < length {
            let index = usize::try_from(self.below(16)).expect("below 16 fits usize");
            out.extend_from_slice(WORDS[index].as_bytes());
            out.push(b' ');
        }
        out.truncate(length);
        out
    }
}

pub(super) const MIB: usize = 1024 * 1024;

/// Writes the bench image as an OCI layout into `dir`: a "base" layer of 2000 small
/// files (half text, half random), one 20 MiB random file, four 4 MiB random files and
/// 300 files of 16-64 KiB.
pub(super) fn write_image(dir: &Path) -> anyhow::Result<Image> {
    let mut random = Random(0x7461_6e6b_666c_6565);
    let mut files = 0;
    let mut base = TarBuilder::new();
    for group in 0..40 {
        base = base.dir(format!("usr/share/fleet/{group:02}"), 0o755);
    }
    for index in 0..2000 {
        let length = usize::try_from(200 + random.below(6000)).expect("small length");
        let content = if index % 2 == 0 {
            random.text(length)
        } else {
            random.bytes(length)
        };
        base = base.file(
            format!("usr/share/fleet/{:02}/file-{index:04}", index % 40),
            content,
            0o644,
        );
        files += 1;
    }
    let big = TarBuilder::new().dir("opt/data", 0o755).file(
        "opt/data/big.bin",
        random.bytes(20 * MIB),
        0o644,
    );
    files += 1;
    let mut medium = TarBuilder::new().dir("opt/medium", 0o755);
    for index in 0..4 {
        medium = medium.file(
            format!("opt/medium/part-{index}.bin"),
            random.bytes(4 * MIB),
            0o644,
        );
        files += 1;
    }
    let mut app = TarBuilder::new().dir("opt/app", 0o755);
    for index in 0..300 {
        let length = usize::try_from(16 * 1024 + random.below(48 * 1024)).expect("small length");
        app = app.file(
            format!("opt/app/lib-{index:03}.so"),
            random.bytes(length),
            0o755,
        );
        files += 1;
    }
    let architecture = match env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let image = ImageBuilder::new(Platform::new("linux", architecture))
        .layer(&base)
        .layer(&big)
        .layer(&medium)
        .layer(&app)
        .cmd(&["/bin/true"])
        .created("2025-01-01T00:00:00Z");
    let summary = OciLayoutBuilder::new()
        .image("latest", image)
        .write(dir)
        .with_context(|| format!("writing the bench image into {}", dir.display()))?;
    let built = summary
        .get("latest")
        .and_then(|built| built.as_image())
        .context("the layout holds the image just built")?;
    Ok(Image {
        blobs: built.layers().len() + 1,
        layers: built.layers().len(),
        layer_bytes: built.layers().iter().map(|layer| layer.size()).sum(),
        sizes: built
            .layers()
            .iter()
            .chain([built.config()])
            .map(|blob| (blob.digest().to_owned(), blob.size()))
            .collect(),
        files,
        manifest_digest: built.manifest().digest().to_owned(),
    })
}

/// Pushes the layout's `latest` to `reference` with tank's own copy.
pub(super) fn push(layout: &Path, reference: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    let client = tank_registry::Client::new(tank_registry::ClientConfig::default())?;
    crate::registry::push_layout(&runtime, &client, layout, "latest", reference)?;
    eprintln!("xtask bench-fleet: pushed {reference} with tank");
    Ok(())
}
