//! [`Target`]: where a request goes (registry, repository, endpoint, token scope, retries),
//! and the pull targets in order (eligible mirrors, then the primary location), less the
//! mirrors that served wrong bytes for a blob (the distrusted set).

use std::sync::PoisonError;

use tank_reference::{Digest, Reference};
use tracing::warn;
use url::Url;

use crate::{Client, Error, endpoint};

/// One repository of one registry, as the requests for it need it.
pub(crate) struct Target {
    pub(crate) registry: String,
    pub(crate) repository: String,
    pub(crate) endpoint: Url,
    /// The token scope the requests need, and the key of the cached authorization:
    /// `repository:<name>:pull` for pulling, `repository:<name>:pull,push` for pushing (and
    /// ` repository:<other>:pull` more for a cross-repository mount).
    pub(crate) scope: String,
    /// How often a failed request is retried here (fewer for a mirror: there is a fallback).
    pub(crate) retries: u32,
}

/// The most retries a request gets at a mirror before falling back to the next source.
const MIRROR_RETRIES: u32 = 1;

impl Target {
    /// `<endpoint>/v2/<repository>/<kind>/<name>`.
    pub(crate) fn url(&self, kind: &str, name: &str) -> Result<Url, Error> {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::InvalidRegistry {
                    registry: self.registry.clone(),
                })?;
            segments.pop_if_empty().push("v2");
            segments.extend(self.repository.split('/'));
            segments.push(kind).push(name);
        }
        Ok(url)
    }
}

impl Client {
    pub(crate) fn target(&self, reference: &Reference) -> Result<Target, Error> {
        self.target_with_scope(
            reference,
            format!("repository:{}:pull", reference.repository()),
        )
    }

    /// The target of `reference`'s repository, authorized for `scope`.
    pub(crate) fn target_with_scope(
        &self,
        reference: &Reference,
        scope: String,
    ) -> Result<Target, Error> {
        let registry = reference.registry().to_owned();
        let repository = reference.repository().to_owned();
        Ok(Target {
            endpoint: self.endpoint(&registry)?,
            scope,
            registry,
            repository,
            retries: self.inner.config.max_retries,
        })
    }

    /// How many times so far a mirror served wrong bytes for a blob (and was then left out
    /// for that blob). A caller that saw a digest or size mismatch may fetch the blob again
    /// when this grew meanwhile: the next attempt goes to the next source.
    pub fn distrusted_mirrors(&self) -> usize {
        self.inner
            .distrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Where a pull request for `reference` goes, in order: the eligible mirrors (less those
    /// that served wrong bytes for `blob`), then the primary location, always last.
    pub(super) fn pull_targets(
        &self,
        reference: &Reference,
        by_digest: bool,
        blob: Option<&Digest>,
    ) -> Result<Vec<Target>, Error> {
        let config = &self.inner.config;
        let sources = config.registries.sources(reference, by_digest)?;
        let distrusted = self
            .inner
            .distrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut targets = Vec::with_capacity(sources.len());
        for source in sources {
            if source.mirror
                && blob.is_some_and(|digest| {
                    distrusted.contains(&(source.registry.clone(), digest.to_string()))
                })
            {
                continue;
            }
            let endpoint = if source.insecure {
                endpoint::endpoint(&source.registry, std::slice::from_ref(&source.registry))
            } else {
                self.endpoint(&source.registry)
            };
            let endpoint = match endpoint {
                Ok(endpoint) => endpoint,
                Err(error) if source.mirror => {
                    warn!("skipping mirror {source}: {error}");
                    continue;
                }
                Err(error) => return Err(error),
            };
            targets.push(Target {
                endpoint,
                scope: format!("repository:{}:pull", source.repository),
                retries: if source.mirror {
                    config.max_retries.min(MIRROR_RETRIES)
                } else {
                    config.max_retries
                },
                registry: source.registry,
                repository: source.repository,
            });
        }
        Ok(targets)
    }

    /// Leaves `mirrors` out of the sources of `digest` from now on: they wrote bytes of it
    /// that failed the digest or size check.
    pub(super) fn distrust(&self, mirrors: &[&Target], digest: &Digest) {
        let mut distrusted = self
            .inner
            .distrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for mirror in mirrors {
            warn!(
                "mirror {}/{} served wrong bytes for blob {digest}; it will not be asked for it again",
                mirror.registry, mirror.repository
            );
            distrusted.insert((mirror.registry.clone(), digest.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_keep_repository_segments_and_digests() {
        let target = Target {
            registry: "127.0.0.1:5000".to_owned(),
            repository: "team/app".to_owned(),
            endpoint: Url::parse("http://127.0.0.1:5000/").unwrap(),
            scope: "repository:team/app:pull".to_owned(),
            retries: 0,
        };
        let hex = "a".repeat(64);
        assert_eq!(
            target
                .url("blobs", &format!("sha256:{hex}"))
                .unwrap()
                .as_str(),
            format!("http://127.0.0.1:5000/v2/team/app/blobs/sha256:{hex}")
        );
        assert_eq!(
            target.url("manifests", "v1.0").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/team/app/manifests/v1.0"
        );
    }
}
