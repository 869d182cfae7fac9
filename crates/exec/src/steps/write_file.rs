//! `write-file`: writes a file (typically credentials built from sensitive
//! variables) inside the working directory.
//!
//! `Path` is confined to the working directory: absolute paths, `..` and
//! symbolic links that lead outside are refused, and the file itself is never
//! written through a symbolic link. `Mode` defaults to `0600`. The content
//! never reaches the log.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use tako_takofile::WithValue;

use super::{StepError, required, text};
use crate::confine;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The path as given (relative to the step's directory).
    pub path: String,
    /// How many bytes.
    pub bytes: usize,
}

/// The step: writes the file and says so in the log (without the content).
pub fn step(context: &super::StepContext<'_, '_>) -> super::StepResult {
    let written = run(context.root, context.working_dir, context.parameters)?;
    context.log.tako(
        tako_core::log::LogLevel::Info,
        &format!(
            "Wrote {} bytes to {} (content not shown)",
            written.bytes, written.path
        ),
    );
    Ok(Vec::new())
}

/// Writes the file: `root` is the deployment's checkout, `base` the step's
/// working directory inside it.
pub fn run(
    root: &Path,
    base: &Path,
    parameters: &[(String, WithValue)],
) -> Result<Written, StepError> {
    let path_text = required(parameters, "Path")?;
    let content = text(parameters, "Content")?.unwrap_or_default();
    let mode = match text(parameters, "Mode")? {
        None => 0o600,
        Some(mode) => u32::from_str_radix(mode.trim().trim_start_matches("0o"), 8)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .ok_or_else(|| {
                StepError::Parameter(format!("Mode {mode:?} is not an octal file mode like 0600"))
            })?,
    };
    let relative = Path::new(path_text);
    confine::check_relative(relative).map_err(|e| StepError::path("Path", path_text, e))?;
    let file_name = relative
        .file_name()
        .ok_or_else(|| StepError::Parameter(format!("Path {path_text:?} does not name a file")))?;
    let parent_text = relative
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The directory's real location is checked before anything is created,
    // so no directory appears outside the checkout either.
    let real_parent = confine::confine_in(root, base, &parent_text)
        .map_err(|e| StepError::path("Path", path_text, e))?;
    fs::create_dir_all(&real_parent)
        .map_err(|e| format!("cannot create the directory for {path_text:?}: {e}"))?;
    let final_path = real_parent.join(file_name);
    if fs::symlink_metadata(&final_path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
    {
        return Err(StepError::Failed(format!(
            "Path {path_text:?} is a symbolic link; refusing to write through it"
        )));
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode).custom_flags(nix::libc::O_NOFOLLOW);
    }
    let mut file = options
        .open(&final_path)
        .map_err(|e| format!("cannot write {path_text:?}: {e}"))?;
    file.write_all(content.as_bytes())
        .map_err(|e| format!("cannot write {path_text:?}: {e}"))?;
    // An existing file keeps its old mode on open: set it explicitly.
    #[cfg(unix)]
    fs::set_permissions(
        &final_path,
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )
    .map_err(|e| format!("cannot set the mode of {path_text:?}: {e}"))?;
    // Windows: no mode bits (`Mode` is checked, not applied), and no
    // O_NOFOLLOW: the check above is what refuses a link.
    #[cfg(not(unix))]
    let _ = mode;
    Ok(Written {
        path: path_text.to_owned(),
        bytes: content.len(),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, WithValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), WithValue::Text(v.to_string())))
            .collect()
    }

    #[test]
    fn writes_with_default_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let written = run(
            dir.path(),
            dir.path(),
            &params(&[("Path", "sub/.creds"), ("Content", "{}")]),
        )
        .unwrap();
        assert_eq!(written.bytes, 2);
        let meta = fs::metadata(dir.path().join("sub/.creds")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    }

    #[test]
    fn escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), dir.path().join("filelink")).unwrap();
        for path in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "link/x",
            "link/new/x",
            "filelink",
        ] {
            let error = run(
                dir.path(),
                dir.path(),
                &params(&[("Path", path), ("Content", "x")]),
            )
            .unwrap_err();
            assert!(error.to_string().contains("Path"), "{path}: {error}");
            if path != "filelink" {
                assert!(
                    matches!(error, StepError::Confine { .. }),
                    "{path}: {error:?}"
                );
            }
        }
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn mode_is_octal() {
        let dir = tempfile::tempdir().unwrap();
        run(
            dir.path(),
            dir.path(),
            &params(&[("Path", "run.sh"), ("Mode", "0755")]),
        )
        .unwrap();
        let meta = fs::metadata(dir.path().join("run.sh")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert!(matches!(
            run(
                dir.path(),
                dir.path(),
                &params(&[("Path", "x"), ("Mode", "rw")])
            ),
            Err(StepError::Parameter(_))
        ));
    }
}
