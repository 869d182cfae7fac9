//! Path confinement: the one place where a path from the takofile or a
//! `With:` parameter becomes a file path.
//!
//! A path is relative to the deployment's checkout (the *root*). It is
//! refused when it is absolute or has a `..` component (lexically), and when
//! its real location leaves the root: the deepest part of it that exists is
//! resolved ([`std::fs::canonicalize`], so every symbolic link in it is
//! followed) and must lie inside the canonical root; the missing rest is
//! appended. The path returned is that real path, the one to use (and the
//! one that was checked).
//!
//! Every caller (`Script:`, `Uses:` templates, `WorkingDirectory`,
//! `Manifest`, `write-file`, `git-checkout`, `publish-psmodule`) goes through
//! [`confine`] or [`confine_in`]; callers name the parameter in their
//! message (`Path "link/x" leads outside ...`).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused or could not be confined. The texts name neither
/// the path nor the parameter: callers prefix both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// The path is absolute.
    #[error("must be relative to the working directory, not absolute")]
    Absolute,
    /// The path has a `..` component.
    #[error("must stay inside the working directory (no ..)")]
    ParentDir,
    /// The path's real location (through a symbolic link) is outside the root.
    #[error(
        "leads outside the working directory through a symbolic link; give a path whose real location is inside the checkout"
    )]
    Escapes,
    /// The root itself could not be resolved.
    #[error("cannot be resolved: the working directory {root} cannot be read: {message}")]
    Root {
        /// The root as given.
        root: String,
        /// The system's reason.
        message: String,
    },
    /// The existing part of the path could not be resolved (a dangling
    /// symbolic link, a permission problem).
    #[error("cannot be resolved: {message}")]
    Resolve {
        /// The system's reason.
        message: String,
    },
}

/// Refuses absolute paths and `..` components, without touching the disk.
pub fn check_relative(relative: &Path) -> Result<(), ConfineError> {
    if relative.is_absolute() || relative.has_root() {
        return Err(ConfineError::Absolute);
    }
    if relative
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(ConfineError::ParentDir);
    }
    Ok(())
}

/// The canonical form of `root` (every symbolic link resolved).
pub fn real_root(root: &Path) -> Result<PathBuf, ConfineError> {
    std::fs::canonicalize(root).map_err(|e| ConfineError::Root {
        root: root.display().to_string(),
        message: e.to_string(),
    })
}

/// The real location of `path` (absolute), which must be inside `real_root`
/// (already canonical): the deepest existing ancestor is resolved, the
/// missing rest appended.
pub fn resolve_inside(real_root: &Path, path: &Path) -> Result<PathBuf, ConfineError> {
    let path: PathBuf = path.components().collect();
    let mut existing = path.as_path();
    let mut missing: Vec<OsString> = Vec::new();
    while std::fs::symlink_metadata(existing).is_err() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut real = std::fs::canonicalize(existing).map_err(|e| ConfineError::Resolve {
        message: e.to_string(),
    })?;
    if !real.starts_with(real_root) {
        return Err(ConfineError::Escapes);
    }
    real.extend(missing.iter().rev());
    Ok(real)
}

/// `relative` inside `root`: refused when absolute, with `..`, or when its
/// real location leaves the root; otherwise its real path.
pub fn confine(root: &Path, relative: &str) -> Result<PathBuf, ConfineError> {
    let relative = Path::new(relative);
    check_relative(relative)?;
    let real_root = real_root(root)?;
    resolve_inside(&real_root, &real_root.join(relative))
}

/// `relative`, given relative to `base` (a directory inside `root`, as a
/// step's working directory is), confined to `root` like [`confine`].
pub fn confine_in(root: &Path, base: &Path, relative: &str) -> Result<PathBuf, ConfineError> {
    let relative = Path::new(relative);
    check_relative(relative)?;
    let real_root = real_root(root)?;
    let base = match base.strip_prefix(root) {
        Ok(inside) => real_root.join(inside),
        Err(_) => base.to_path_buf(),
    };
    let real_base = resolve_inside(&real_root, &base)?;
    resolve_inside(&real_root, &real_base.join(relative))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn plain_paths_resolve_to_their_real_location() {
        let dir = temp();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap_or_else(|e| panic!("{e}"));
        let real = real_root(root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(confine(root, "."), Ok(real.clone()));
        assert_eq!(confine(root, ""), Ok(real.clone()));
        assert_eq!(confine(root, "a/b"), Ok(real.join("a/b")));
        assert_eq!(confine(root, "./a/missing/x"), Ok(real.join("a/missing/x")));
    }

    #[test]
    fn absolute_and_parent_paths_are_refused_without_looking() {
        let root = Path::new("/nonexistent-root-for-a-test");
        assert_eq!(confine(root, "/etc/passwd"), Err(ConfineError::Absolute));
        assert_eq!(confine(root, "../x"), Err(ConfineError::ParentDir));
        assert_eq!(confine(root, "a/../../x"), Err(ConfineError::ParentDir));
        assert_eq!(confine(root, "a/.."), Err(ConfineError::ParentDir));
    }

    #[test]
    fn symbolic_links_that_leave_the_root_are_refused() {
        let dir = temp();
        let outside = temp();
        let root = dir.path();
        symlink(outside.path(), root.join("link")).unwrap_or_else(|e| panic!("{e}"));
        symlink(outside.path().join("f"), root.join("dangling")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(confine(root, "link"), Err(ConfineError::Escapes));
        assert_eq!(confine(root, "link/new/deeper"), Err(ConfineError::Escapes));
        assert!(matches!(
            confine(root, "dangling"),
            Err(ConfineError::Resolve { .. })
        ));
        let message = ConfineError::Escapes.to_string();
        assert!(message.contains("symbolic link"), "{message}");
        assert!(message.contains("inside the checkout"), "{message}");
    }

    #[test]
    fn symbolic_links_inside_the_root_are_followed() {
        let dir = temp();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/dir")).unwrap_or_else(|e| panic!("{e}"));
        symlink(root.join("real"), root.join("alias")).unwrap_or_else(|e| panic!("{e}"));
        let real = real_root(root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(confine(root, "alias/dir"), Ok(real.join("real/dir")));
    }

    #[test]
    fn a_linked_root_is_compared_by_its_real_location() {
        let dir = temp();
        std::fs::create_dir_all(dir.path().join("checkout/sub")).unwrap_or_else(|e| panic!("{e}"));
        let linked = dir.path().join("linked");
        symlink(dir.path().join("checkout"), &linked).unwrap_or_else(|e| panic!("{e}"));
        let real = real_root(&linked).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(confine(&linked, "sub"), Ok(real.join("sub")));
        assert_eq!(
            confine_in(&linked, &linked.join("sub"), "file"),
            Ok(real.join("sub/file"))
        );
    }

    #[test]
    fn paths_relative_to_a_base_stay_inside_the_root() {
        let dir = temp();
        let outside = temp();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        symlink(outside.path(), root.join("sub/link")).unwrap_or_else(|e| panic!("{e}"));
        let real = real_root(root).unwrap_or_else(|e| panic!("{e}"));
        let base = root.join("sub");
        assert_eq!(confine_in(root, &base, "x"), Ok(real.join("sub/x")));
        assert_eq!(confine_in(root, &base, "."), Ok(real.join("sub")));
        assert_eq!(
            confine_in(root, &base, "../x"),
            Err(ConfineError::ParentDir)
        );
        assert_eq!(
            confine_in(root, &base, "link/x"),
            Err(ConfineError::Escapes)
        );
        assert_eq!(
            confine_in(root, outside.path(), "x"),
            Err(ConfineError::Escapes)
        );
    }
}
