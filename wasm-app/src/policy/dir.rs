//! A directory grant: a host folder the guest sees at a path of its own.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// A directory the module may see.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Path on the host.
    pub host: PathBuf,
    /// Path the guest sees; defaults to the host path as written.
    pub guest: Option<String>,
    /// Whether the guest may create, write and delete in it.
    #[serde(default)]
    pub writable: bool,
}

impl DirGrant {
    /// Parses the CLI form `HOST[::GUEST]`, as the `wasmtime` CLI writes it.
    pub fn parse(spec: &str, writable: bool) -> Result<Self> {
        let (host, guest) = match spec.split_once("::") {
            Some((h, g)) => (h, Some(g.to_string())),
            None => (spec, None),
        };
        if host.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "directory grant '{spec}' has an empty host path"
            )));
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest,
            writable,
        })
    }

    /// The path the guest sees.
    pub fn guest_path(&self) -> String {
        self.guest
            .clone()
            .unwrap_or_else(|| self.host.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_grants_parse_like_wasmtime() {
        let d = DirGrant::parse("/tmp/x::/data", true).unwrap();
        assert_eq!(d.guest_path(), "/data");
        assert!(d.writable);
        assert_eq!(DirGrant::parse("in", false).unwrap().guest_path(), "in");
        assert!(DirGrant::parse("::/x", false).is_err());
    }
}
