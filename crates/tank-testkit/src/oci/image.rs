//! Building one image: layers, its config (diff_ids, history) and the manifest that ties them.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
struct LayerSource {
    tar: Vec<u8>,
    compression: Compression,
}

/// Builds one image: layers, a config and the manifest that ties them.
///
/// The config's `rootfs.diff_ids` come from the uncompressed layers and its `history` has one
/// entry per layer unless [`ImageBuilder::history`] is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageBuilder {
    platform: Platform,
    media_types: MediaTypes,
    layers: Vec<LayerSource>,
    env: Vec<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    labels: BTreeMap<String, String>,
    history: Vec<HistoryEntry>,
    created: Option<String>,
    annotations: BTreeMap<String, String>,
    raw_config: Option<Value>,
}

impl ImageBuilder {
    /// An image for `platform`, OCI media types, no layers yet.
    pub fn new(platform: Platform) -> ImageBuilder {
        ImageBuilder {
            platform,
            media_types: MediaTypes::Oci,
            layers: Vec::new(),
            env: Vec::new(),
            entrypoint: None,
            cmd: None,
            user: None,
            working_dir: None,
            labels: BTreeMap::new(),
            history: Vec::new(),
            created: None,
            annotations: BTreeMap::new(),
            raw_config: None,
        }
    }

    /// Uses Docker or OCI media types for the manifest, config and layers.
    pub fn media_types(mut self, media_types: MediaTypes) -> ImageBuilder {
        self.media_types = media_types;
        self
    }

    /// Adds a gzip layer built from `tar`.
    pub fn layer(self, tar: &TarBuilder) -> ImageBuilder {
        self.layer_tar(tar.build(), Compression::Gzip)
    }

    /// Adds a layer from raw tar bytes, compressed with `compression`.
    pub fn layer_tar(mut self, tar: Vec<u8>, compression: Compression) -> ImageBuilder {
        self.layers.push(LayerSource { tar, compression });
        self
    }

    /// Adds an `Env` entry (`KEY=value`).
    pub fn env(mut self, entry: impl Into<String>) -> ImageBuilder {
        self.env.push(entry.into());
        self
    }

    /// Sets `Entrypoint`.
    pub fn entrypoint(mut self, arguments: &[&str]) -> ImageBuilder {
        self.entrypoint = Some(
            arguments
                .iter()
                .map(|&argument| argument.to_owned())
                .collect(),
        );
        self
    }

    /// Sets `Cmd`.
    pub fn cmd(mut self, arguments: &[&str]) -> ImageBuilder {
        self.cmd = Some(
            arguments
                .iter()
                .map(|&argument| argument.to_owned())
                .collect(),
        );
        self
    }

    /// Sets `User`.
    pub fn user(mut self, user: impl Into<String>) -> ImageBuilder {
        self.user = Some(user.into());
        self
    }

    /// Sets `WorkingDir`.
    pub fn working_dir(mut self, dir: impl Into<String>) -> ImageBuilder {
        self.working_dir = Some(dir.into());
        self
    }

    /// Adds a config label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> ImageBuilder {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a `history` entry; once any is added, no per-layer entries are generated.
    pub fn history(mut self, created_by: impl Into<String>, empty_layer: bool) -> ImageBuilder {
        self.history.push(HistoryEntry {
            created_by: created_by.into(),
            empty_layer,
        });
        self
    }

    /// Sets the config's `created` timestamp (RFC 3339); none by default.
    pub fn created(mut self, created: impl Into<String>) -> ImageBuilder {
        self.created = Some(created.into());
        self
    }

    /// Adds a manifest annotation (OCI media types only; Docker manifests have none).
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> ImageBuilder {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Replaces the generated config document with `config`, as is (for configs that lie).
    pub fn raw_config(mut self, config: Value) -> ImageBuilder {
        self.raw_config = Some(config);
        self
    }

    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Computes the layers, config and manifest.
    pub fn build(&self) -> BuiltImage {
        let layers: Vec<Blob> = self
            .layers
            .iter()
            .map(|layer| {
                Blob::new(
                    self.media_types.layer(layer.compression),
                    layer.compression.apply(&layer.tar),
                )
            })
            .collect();
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|layer| sha256_digest(&layer.tar))
            .collect();
        let config_document = match &self.raw_config {
            Some(config) => config.clone(),
            None => self.config_document(&diff_ids),
        };
        let config = Blob::new(self.media_types.config(), canonical_json(&config_document));

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": self.media_types.manifest(),
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        if self.media_types == MediaTypes::Oci && !self.annotations.is_empty() {
            manifest["annotations"] = json!(self.annotations);
        }
        let manifest = Blob::new(self.media_types.manifest(), canonical_json(&manifest));
        BuiltImage {
            platform: self.platform.clone(),
            manifest,
            config,
            layers,
            diff_ids,
        }
    }

    fn config_document(&self, diff_ids: &[String]) -> Value {
        let mut run = Map::new();
        if !self.env.is_empty() {
            run.insert("Env".to_owned(), json!(self.env));
        }
        if let Some(entrypoint) = &self.entrypoint {
            run.insert("Entrypoint".to_owned(), json!(entrypoint));
        }
        if let Some(cmd) = &self.cmd {
            run.insert("Cmd".to_owned(), json!(cmd));
        }
        if let Some(user) = &self.user {
            run.insert("User".to_owned(), json!(user));
        }
        if let Some(working_dir) = &self.working_dir {
            run.insert("WorkingDir".to_owned(), json!(working_dir));
        }
        if !self.labels.is_empty() {
            run.insert("Labels".to_owned(), json!(self.labels));
        }

        let history: Vec<Value> = if self.history.is_empty() {
            (1..=diff_ids.len())
                .map(|layer_number| json!({"created_by": format!("tank-testkit layer {layer_number}")}))
                .collect()
        } else {
            self.history
                .iter()
                .map(|entry| {
                    let mut item = json!({"created_by": entry.created_by});
                    if entry.empty_layer {
                        item["empty_layer"] = json!(true);
                    }
                    item
                })
                .collect()
        };

        let mut config = json!({
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": run,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(variant) = &self.platform.variant {
            config["variant"] = json!(variant);
        }
        if let Some(created) = &self.created {
            config["created"] = json!(created);
        }
        config
    }
}

/// A built image: its manifest, config and layer blobs, and the layers' diff_ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    platform: Platform,
    manifest: Blob,
    config: Blob,
    layers: Vec<Blob>,
    diff_ids: Vec<String>,
}

impl BuiltImage {
    /// The platform it was built for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The manifest blob.
    pub fn manifest(&self) -> &Blob {
        &self.manifest
    }

    /// The config blob.
    pub fn config(&self) -> &Blob {
        &self.config
    }

    /// The layer blobs (compressed as in the manifest), in order.
    pub fn layers(&self) -> &[Blob] {
        &self.layers
    }

    /// `sha256:<hex>` of each uncompressed layer, in order.
    pub fn diff_ids(&self) -> &[String] {
        &self.diff_ids
    }

    /// The index entry for this image: the manifest descriptor with its platform.
    pub fn index_entry(&self) -> Value {
        let mut entry = self.manifest.descriptor();
        entry["platform"] = self.platform.to_json();
        entry
    }

    /// Every blob: config, layers, then the manifest.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut blobs = vec![&self.config];
        blobs.extend(self.layers.iter());
        blobs.push(&self.manifest);
        blobs
    }
}
