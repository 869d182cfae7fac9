//! A commit's files as a tar archive built in-process from the object
//! database (no `git archive` process: spawning git cost an agent's job
//! 36–42 ms of its start). The archive holds what `git archive --format=tar`
//! extracts to: the same paths, directories, files with their executable
//! bit, symbolic links, and an empty directory per submodule.
//!
//! Whatever could make `git archive` write something else is left to git
//! itself ([`TreeTar::UseGit`]): a `.gitattributes` anywhere in the tree or
//! the mirror's `info/attributes` (`export-ignore`, `export-subst`, line-end
//! and filter conversions all come from attributes), a mirror configured
//! with `core.autocrlf`, or a tree larger than the in-memory limit (git
//! streams it).

use std::path::Path;

use gix::objs::tree::EntryKind;

use crate::GitError;

/// What building the archive in-process gave.
#[derive(Debug)]
pub(crate) enum TreeTar {
    /// The whole tar archive.
    Built(Vec<u8>),
    /// `git archive` must make this one; the reason, for the log.
    UseGit(&'static str),
}

/// Permissions as `git archive` writes them (its default `tar.umask` 002).
const FILE_MODE: u32 = 0o664;
const EXECUTABLE_MODE: u32 = 0o775;
const DIRECTORY_MODE: u32 = 0o775;
const LINK_MODE: u32 = 0o777;

/// The tar archive of `commit`'s tree in `repo`, if it can be made here
/// without differing from `git archive`'s and its files' contents stay
/// within `limit` bytes.
pub(crate) fn tree_tar(
    repo: &gix::Repository,
    commit: &str,
    limit: u64,
) -> Result<TreeTar, GitError> {
    let failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "archive".to_owned(),
        message: format!("reading commit {commit}: {error}"),
    };
    if has_content(&repo.git_dir().join("info").join("attributes")) {
        return Ok(TreeTar::UseGit("the mirror has info/attributes"));
    }
    if repo.config_snapshot().string("core.autocrlf").is_some() {
        return Ok(TreeTar::UseGit("the mirror sets core.autocrlf"));
    }
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| failed(&e))?;
    let commit_object = repo.find_commit(id).map_err(|e| failed(&e))?;
    let mtime = commit_object
        .time()
        .map(|t| u64::try_from(t.seconds).unwrap_or(0))
        .map_err(|e| failed(&e))?;
    let tree = commit_object.tree_id().map_err(|e| failed(&e))?.detach();
    let mut writer = Writer {
        repo,
        builder: tar::Builder::new(Vec::new()),
        mtime,
        total: 0,
        limit,
    };
    if let Some(reason) = writer.tree(tree, "").map_err(|e| failed(&e))? {
        return Ok(TreeTar::UseGit(reason));
    }
    let bytes = writer.builder.into_inner().map_err(|e| failed(&e))?;
    Ok(TreeTar::Built(bytes))
}

fn has_content(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

struct Writer<'r> {
    repo: &'r gix::Repository,
    builder: tar::Builder<Vec<u8>>,
    mtime: u64,
    total: u64,
    limit: u64,
}

type WriteResult = Result<Option<&'static str>, Box<dyn std::error::Error + Send + Sync>>;

impl Writer<'_> {
    /// Appends the entries of tree `id` under `prefix` (`""` or `dir/`),
    /// depth first, in the tree's order (as `git archive`); `Some(reason)`
    /// when git must make the archive instead.
    fn tree(&mut self, id: gix::ObjectId, prefix: &str) -> WriteResult {
        let tree = self.repo.find_tree(id)?;
        let mut entries: Vec<(EntryKind, String, gix::ObjectId)> = Vec::new();
        for entry in tree.decode()?.entries {
            let Ok(name) = std::str::from_utf8(entry.filename) else {
                return Ok(Some("a path is not UTF-8"));
            };
            entries.push((entry.mode.kind(), name.to_owned(), entry.oid.to_owned()));
        }
        for (kind, name, oid) in entries {
            if name == ".gitattributes" {
                return Ok(Some("the tree has a .gitattributes"));
            }
            let path = format!("{prefix}{name}");
            match kind {
                EntryKind::Tree => {
                    self.directory(&path)?;
                    if let Some(reason) = self.tree(oid, &format!("{path}/"))? {
                        return Ok(Some(reason));
                    }
                }
                // `git archive` writes a submodule as an empty directory.
                EntryKind::Commit => self.directory(&path)?,
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    let blob = self.repo.find_blob(oid)?;
                    self.total = self
                        .total
                        .saturating_add(u64::try_from(blob.data.len()).unwrap_or(u64::MAX));
                    if self.total > self.limit {
                        return Ok(Some("the tree is larger than the in-memory limit"));
                    }
                    let mode = if kind == EntryKind::BlobExecutable {
                        EXECUTABLE_MODE
                    } else {
                        FILE_MODE
                    };
                    let mut header = self.header(tar::EntryType::Regular, mode);
                    header.set_size(u64::try_from(blob.data.len()).unwrap_or(u64::MAX));
                    self.builder
                        .append_data(&mut header, &path, blob.data.as_slice())?;
                }
                EntryKind::Link => {
                    let blob = self.repo.find_blob(oid)?;
                    let Ok(target) = std::str::from_utf8(&blob.data) else {
                        return Ok(Some("a link's target is not UTF-8"));
                    };
                    let mut header = self.header(tar::EntryType::Symlink, LINK_MODE);
                    header.set_size(0);
                    self.builder.append_link(&mut header, &path, target)?;
                }
            }
        }
        Ok(None)
    }

    fn directory(&mut self, path: &str) -> Result<(), std::io::Error> {
        let mut header = self.header(tar::EntryType::Directory, DIRECTORY_MODE);
        header.set_size(0);
        self.builder
            .append_data(&mut header, format!("{path}/"), std::io::empty())
    }

    fn header(&self, kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header
    }
}
