//! Platforms (`os/arch[/variant]`) and the choice of one manifest from an image index.
//!
//! The matching rules follow containerd's `platforms` package in spirit: the OS and the
//! architecture must be equal; a variant asked for must be served exactly, except that
//! `arm64` and `arm64/v8` are the same thing; when no variant is asked for, the best
//! variant for the architecture is taken (`v8` for arm64, the highest of `v7`, `v6`, `v5`
//! for arm, the entry without a variant otherwise).

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::Error;

/// A target platform: operating system, CPU architecture and optional CPU variant, in the
/// spelling of Go's `GOOS`/`GOARCH` that image indexes use (`linux/amd64`, `linux/arm64/v8`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// A platform from its parts; an empty variant means none.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// The platform of the running process, normalised to index spelling: `x86_64` is
    /// `amd64`, `aarch64` is `arm64` (variant `v8`), `arm` is `arm` (variant `v7`).
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        Platform::new(os, architecture, variant)
    }

    /// The platform an index entry declares, if it declares one.
    pub fn of_descriptor(descriptor: &Descriptor) -> Option<Platform> {
        descriptor.platform().as_ref().map(|platform| {
            Platform::new(
                &platform.os().to_string(),
                &platform.architecture().to_string(),
                platform.variant().as_deref(),
            )
        })
    }

    /// The operating system, e.g. `linux`.
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The CPU architecture, e.g. `amd64`.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The CPU variant, e.g. `v8`, if any.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The variant with the architecture's implied default filled in (`arm64` means `v8`).
    fn normalised_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, variant) => variant,
        }
    }

    /// How well an entry of `offered` serves `self`, or `None` if it cannot. Higher is better.
    fn score(&self, offered: &Platform) -> Option<u32> {
        if self.os != offered.os || self.architecture != offered.architecture {
            return None;
        }
        let wanted = self.normalised_variant();
        let got = offered.normalised_variant();
        if wanted == got {
            return Some(100);
        }
        if self.architecture == "arm" {
            // An armv7 machine runs v6 and v5 code; prefer the newest it can run.
            let rank = |v: Option<&str>| match v {
                Some("v8") => Some(8),
                Some("v7") => Some(7),
                Some("v6") => Some(6),
                Some("v5") => Some(5),
                None => Some(0),
                Some(_) => None,
            };
            let wanted_rank = match self.variant.as_deref() {
                None => 7,
                variant => rank(variant)?,
            };
            let got_rank = rank(got)?;
            if got_rank <= wanted_rank {
                return Some(10 + got_rank);
            }
            return None;
        }
        // No variant asked for: an entry without one is as good as it gets, one with a
        // variant is still usable (the architecture has no variants that matter to us).
        if self.variant.is_none() {
            return Some(if got.is_none() { 90 } else { 50 });
        }
        None
    }

    /// Picks the entry of `index` that best serves this platform.
    ///
    /// # Errors
    ///
    /// [`Error::NoMatchingPlatform`] listing what the index offers when no entry fits.
    pub fn select<'a>(&self, index: &'a ImageIndex) -> Result<&'a Descriptor, Error> {
        let mut best: Option<(u32, &Descriptor)> = None;
        for descriptor in index.manifests() {
            let Some(offered) = Platform::of_descriptor(descriptor) else {
                continue;
            };
            if let Some(score) = self.score(&offered)
                && best.is_none_or(|(best_score, _)| score > best_score)
            {
                best = Some((score, descriptor));
            }
        }
        best.map(|(_, descriptor)| descriptor)
            .ok_or_else(|| Error::NoMatchingPlatform {
                wanted: self.clone(),
                available: index
                    .manifests()
                    .iter()
                    .filter_map(Platform::of_descriptor)
                    .collect(),
            })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `os/arch` or `os/arch/variant`; each part non-empty, lower-case
    /// letters, digits and `_`.
    fn from_str(input: &str) -> Result<Platform, Error> {
        let invalid = |reason: &'static str| Error::InvalidPlatform {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(invalid("expected OS/ARCH or OS/ARCH/VARIANT"));
        }
        for part in &parts {
            if part.is_empty() {
                return Err(invalid("empty component"));
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(invalid(
                    "components may hold only lower-case letters, digits and '_'",
                ));
            }
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[&str]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let parts: Vec<&str> = p.split('/').collect();
                let mut platform = serde_json::json!({"os": parts[0], "architecture": parts[1]});
                if let Some(variant) = parts.get(2) {
                    platform["variant"] = serde_json::json!(variant);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{:064x}", i),
                    "size": 100 + i,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap()
    }

    fn chosen(want: &str, offered: &[&str]) -> Option<String> {
        let want: Platform = want.parse().unwrap();
        let index = index(offered);
        want.select(&index)
            .ok()
            .map(|d| Platform::of_descriptor(d).unwrap().to_string())
    }

    #[test]
    fn matching_table() {
        let all = [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/arm/v6",
        ];
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("linux/amd64", &all, Some("linux/amd64")),
            ("linux/arm64", &all, Some("linux/arm64/v8")),
            ("linux/arm64/v8", &all, Some("linux/arm64/v8")),
            ("linux/arm64/v8", &["linux/arm64"], Some("linux/arm64")),
            ("linux/arm", &all, Some("linux/arm/v7")),
            ("linux/arm/v7", &all, Some("linux/arm/v7")),
            ("linux/arm/v6", &all, Some("linux/arm/v6")),
            (
                "linux/arm/v7",
                &["linux/arm/v6", "linux/arm/v5"],
                Some("linux/arm/v6"),
            ),
            ("linux/arm/v6", &["linux/arm/v7"], None),
            ("linux/arm64/v9", &["linux/arm64/v8"], None),
            ("linux/s390x", &all, None),
            ("windows/amd64", &all, None),
            (
                "linux/amd64",
                &["linux/amd64/v3", "linux/amd64"],
                Some("linux/amd64"),
            ),
            ("linux/amd64/v2", &["linux/amd64"], None),
        ];
        for (want, offered, expected) in cases {
            assert_eq!(
                chosen(want, offered).as_deref(),
                *expected,
                "want {want} from {offered:?}"
            );
        }
    }

    #[test]
    fn no_match_lists_what_is_offered() {
        let want: Platform = "linux/s390x".parse().unwrap();
        let err = want
            .select(&index(&["linux/amd64", "linux/arm64/v8"]))
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("linux/s390x"), "{message}");
        assert!(message.contains("linux/amd64, linux/arm64/v8"), "{message}");
    }

    #[test]
    fn parse_and_display() {
        for good in [
            "linux/amd64",
            "linux/arm64/v8",
            "windows/amd64",
            "linux/ppc64le",
        ] {
            assert_eq!(good.parse::<Platform>().unwrap().to_string(), good);
        }
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "Linux/amd64",
            "linux/am d64",
            "",
        ] {
            assert!(
                matches!(bad.parse::<Platform>(), Err(Error::InvalidPlatform { .. })),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn host_is_a_valid_platform() {
        let host = Platform::host();
        assert_eq!(host.to_string().parse::<Platform>().unwrap(), host);
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(host.to_string(), "linux/amd64");
        }
    }
}
