//! [`Endpoint`]: one end of a copy, a registry reference or `oci:DIR[:TAG]`, parsed and
//! displayed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tank_reference::Reference;

use crate::Error;
use crate::assemble::check_tag;
use crate::copy::DEFAULT_LAYOUT_TAG;

/// One end of a [`copy`](fn@crate::copy): a registry reference, or a tag of an OCI image
/// layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// An image in a registry. As a source, its tag or digest names what to copy; as a
    /// destination, its tag (else its digest, else `latest`) is what the manifest is put as.
    Registry(Reference),
    /// The entry tagged `tag` of the OCI image layout in `dir` (created when a destination).
    Layout {
        /// The layout's directory.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: String,
    },
}

impl Endpoint {
    /// An OCI layout endpoint from `DIR[:TAG]`: the tag is what follows the last `:` when
    /// that holds no `/` (so a directory may contain `:`), else [`DEFAULT_LAYOUT_TAG`].
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use tank_image::Endpoint;
    ///
    /// let parse = |text| Endpoint::layout(text).unwrap();
    /// assert_eq!(parse("out:v1"), Endpoint::Layout { dir: "out".into(), tag: "v1".into() });
    /// assert_eq!(parse("out"), Endpoint::Layout { dir: "out".into(), tag: "latest".into() });
    /// assert_eq!(
    ///     parse("/tmp/a:b/out"),
    ///     Endpoint::Layout { dir: PathBuf::from("/tmp/a:b/out"), tag: "latest".into() }
    /// );
    /// # Ok::<(), tank_image::Error>(())
    /// ```
    pub fn layout(text: &str) -> Result<Endpoint, Error> {
        Endpoint::parse_layout(text, text)
    }

    /// [`Endpoint::layout`] of `text`, which is part of `whole` (named in errors).
    fn parse_layout(text: &str, whole: &str) -> Result<Endpoint, Error> {
        let invalid = |reason: &'static str| Error::InvalidEndpoint {
            input: whole.to_owned(),
            reason,
        };
        let (dir, tag) = match text.rsplit_once(':') {
            Some((dir, tag)) if !tag.contains('/') => (dir, tag),
            _ => (text, DEFAULT_LAYOUT_TAG),
        };
        if dir.is_empty() {
            return Err(invalid("no layout directory before the tag"));
        }
        if tag.is_empty() {
            return Err(invalid("an empty tag after ':'"));
        }
        check_tag(tag)?;
        Ok(Endpoint::Layout {
            dir: PathBuf::from(dir),
            tag: tag.to_owned(),
        })
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// `oci:DIR[:TAG]` (see [`Endpoint::layout`]), else a registry reference, with or without
    /// a `docker://` prefix.
    fn from_str(text: &str) -> Result<Endpoint, Error> {
        if let Some(layout) = text.strip_prefix("oci:") {
            return Endpoint::parse_layout(layout, text);
        }
        let reference = text.strip_prefix("docker://").unwrap_or(text);
        reference
            .parse()
            .map(Endpoint::Registry)
            .map_err(|source| Error::InvalidReference {
                input: text.to_owned(),
                source,
            })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Registry(reference) => write!(f, "{reference}"),
            Endpoint::Layout { dir, tag } => write!(f, "oci:{}:{tag}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &str, tag: &str) -> Endpoint {
        Endpoint::Layout {
            dir: PathBuf::from(dir),
            tag: tag.to_owned(),
        }
    }

    #[test]
    fn endpoints_parse_layouts_and_references() {
        let check = |text: &str, expected: Endpoint| {
            assert_eq!(text.parse::<Endpoint>().unwrap(), expected, "{text}");
        };
        check("oci:out", layout("out", "latest"));
        check("oci:out:v1", layout("out", "v1"));
        check("oci:/tmp/x:y/out", layout("/tmp/x:y/out", "latest"));
        check("oci:/tmp/x:y/out:v2", layout("/tmp/x:y/out", "v2"));
        check("oci:./a:b:c", layout("./a:b", "c"));
        check(
            "127.0.0.1:5000/team/app:1",
            Endpoint::Registry("127.0.0.1:5000/team/app:1".parse().unwrap()),
        );
        check(
            "docker://127.0.0.1:5000/team/app:1",
            Endpoint::Registry("127.0.0.1:5000/team/app:1".parse().unwrap()),
        );
        check(
            "alpine",
            Endpoint::Registry("docker.io/library/alpine".parse().unwrap()),
        );
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        for (text, needle) in [
            ("oci:", "no layout directory"),
            ("oci::v1", "\"oci::v1\""),
            ("oci::v1", "no layout directory"),
            ("oci:out:", "empty tag"),
            ("oci:out:bad tag", "bad tag"),
            ("Not A Reference", "Not A Reference"),
            ("docker://team/App", "docker://team/App"),
        ] {
            let error = text.parse::<Endpoint>().unwrap_err();
            assert!(error.to_string().contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn endpoints_display_as_they_parse() {
        for text in [
            "oci:out:v1",
            "oci:/tmp/x:y/out:latest",
            "127.0.0.1:5000/team/app:1",
        ] {
            let endpoint: Endpoint = text.parse().unwrap();
            assert_eq!(endpoint.to_string(), text);
            assert_eq!(endpoint.to_string().parse::<Endpoint>().unwrap(), endpoint);
        }
    }
}
