//! An image platform: OS, architecture and optional variant; parsed and printed as `os/arch[/variant]`.

use super::*;

/// An image platform: OS, architecture and optional variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub(super) os: String,
    pub(super) architecture: String,
    pub(super) variant: Option<String>,
}

impl Platform {
    /// A platform without variant, e.g. `Platform::new("linux", "amd64")`.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The same platform with a variant, e.g. `v8`.
    pub fn with_variant(mut self, variant: impl Into<String>) -> Platform {
        self.variant = Some(variant.into());
        self
    }

    /// The OS.
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The architecture.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The variant, if any.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The `platform` object of an index entry.
    pub fn to_json(&self) -> Value {
        let mut platform = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(input: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = input.split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(Error::InvalidPlatform {
                input: input.to_owned(),
            });
        }
        match parts.as_slice() {
            [os, architecture] => Ok(Platform::new(*os, *architecture)),
            [os, architecture, variant] => {
                Ok(Platform::new(*os, *architecture).with_variant(*variant))
            }
            _ => Err(Error::InvalidPlatform {
                input: input.to_owned(),
            }),
        }
    }
}
