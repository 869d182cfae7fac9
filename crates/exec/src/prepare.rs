//! What preparing a deployment needs wherever it runs (the server's
//! scheduler and `tako run` alike): the takofile's `Manifest` read from the
//! checkout, confined to it.

use std::path::Path;

use tako_core::system::ManifestFacts;

use crate::confine::{ConfineError, confine};

/// Why the `Manifest` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The path leaves the checkout.
    #[error("Manifest {path:?} {source}")]
    Confined {
        /// The path as the takofile gave it.
        path: String,
        /// Why it is refused.
        #[source]
        source: ConfineError,
    },
    /// The file cannot be read.
    #[error("cannot read the manifest {path}: {source}")]
    Read {
        /// The path as the takofile gave it.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid module manifest.
    #[error("manifest {path} is invalid: {message}")]
    Invalid {
        /// The path as the takofile gave it.
        path: String,
        /// What the parser said.
        message: String,
    },
}

/// The facts of the module manifest at `path` in the checkout `root`.
pub fn read_manifest(root: &Path, path: &str) -> Result<ManifestFacts, ManifestError> {
    let file = confine(root, path).map_err(|source| ManifestError::Confined {
        path: path.to_owned(),
        source,
    })?;
    let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    ManifestFacts::from_manifest(path, &text).map_err(|e| ManifestError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_read_inside_the_checkout_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Demo.psd1"),
            "@{ ModuleVersion = '1.2.3'; Author = 'me'; Description = 'demo' }",
        )
        .unwrap();
        let facts = read_manifest(dir.path(), "Demo.psd1").unwrap();
        assert_eq!(facts.version, "1.2.3");
        assert_eq!(facts.name, "Demo");
        let outside = read_manifest(dir.path(), "../Demo.psd1").unwrap_err();
        assert!(
            matches!(outside, ManifestError::Confined { .. }),
            "{outside}"
        );
        let missing = read_manifest(dir.path(), "Nope.psd1").unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot read the manifest Nope.psd1"),
            "{missing}"
        );
    }
}
