//! A job's files: the release commit as a tar stream from the server
//! (`agents.md` §2, so the agent needs no git and no repository
//! credentials), cached per commit under `<data dir>/sources/<commit>`, and
//! copied afresh for each job (a step may change its checkout; the next
//! job must not see that).
//!
//! The download is extracted as it arrives (no file in between) into a
//! temporary directory renamed into place only when whole, so the cache
//! never holds a partial tree (a download cut short fails the extraction). Entries that would land outside the directory (absolute
//! paths, `..`) and kinds a commit cannot hold (hard links, devices) are
//! refused; the `tar` crate also refuses to write through a symbolic link
//! that leads out.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::client::{CallError, Client};

/// Release commits kept in the cache (the most recently used).
const KEEP_COMMITS: usize = 8;

/// Why a job's files cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The server did not send them.
    #[error("cannot download the release's files: {0}")]
    Download(#[from] CallError),
    /// A commit id that is not one.
    #[error("the job names commit {0:?}, which is not a commit id")]
    Commit(String),
    /// The archive is not a tar stream this agent accepts.
    #[error("the release's files are not a valid archive: {0}")]
    Archive(String),
    /// The disk.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SourceError {
    let context = context.into();
    move |source| SourceError::Io { context, source }
}

/// The cache of release commits' files.
#[derive(Debug, Clone)]
pub struct Sources {
    dir: PathBuf,
}

impl Sources {
    /// The cache in `dir`.
    pub fn new(dir: PathBuf) -> Sources {
        Sources { dir }
    }

    /// Makes `into` (which must not exist) a fresh copy of `commit`'s
    /// files, downloading them from the server's `path` unless cached.
    pub async fn checkout(
        &self,
        client: &Client,
        commit: &str,
        path: &str,
        into: &Path,
    ) -> Result<(), SourceError> {
        if !is_commit_id(commit) {
            return Err(SourceError::Commit(commit.to_owned()));
        }
        let cached = self.dir.join(commit.to_ascii_lowercase());
        if !cached.is_dir() {
            self.download(client, path, &cached).await?;
        }
        let into = into.to_owned();
        let from = cached.clone();
        let dir = self.dir.clone();
        // One trip to the blocking pool: copy, then prune.
        tokio::task::spawn_blocking(move || {
            // Marks the commit as recently used, for pruning.
            let _ = fs::File::open(&from)
                .and_then(|dir| dir.set_modified(std::time::SystemTime::now()));
            copy_tree(&from, &into)?;
            prune(&dir, KEEP_COMMITS);
            Ok(())
        })
        .await
        .map_err(|e| io("copying the release's files")(std::io::Error::other(e)))?
    }

    /// Downloads the tar stream and extracts it as it arrives (no file in
    /// between: the extraction runs on a blocking thread fed through a
    /// bounded channel), into a staging directory renamed into the cache
    /// only when whole. A download cut short is an error for the
    /// extraction too, so a partial tree is never cached.
    async fn download(
        &self,
        client: &Client,
        path: &str,
        cached: &Path,
    ) -> Result<(), SourceError> {
        fs::create_dir_all(&self.dir).map_err(io(format!("creating {}", self.dir.display())))?;
        let staging = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(&self.dir)
            .map_err(io(format!(
                "creating a directory in {}",
                self.dir.display()
            )))?;
        let mut response = client.source(path).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(DOWNLOAD_CHUNKS);
        let tree = staging.path().join("tree");
        let into = cached.to_owned();
        let extraction = tokio::task::spawn_blocking(move || {
            extract_from(ChannelReader::new(receiver), &tree)?;
            match fs::rename(&tree, &into) {
                Ok(()) => Ok(()),
                // Another job cached the same commit meanwhile.
                Err(_) if into.is_dir() => Ok(()),
                Err(e) => Err(io(format!("moving the files into {}", into.display()))(e)),
            }
        });
        let mut failed = None;
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    // The extraction stopped (a bad archive): its error says why.
                    if sender.send(Ok(bytes.to_vec())).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = sender.send(Err(())).await;
                    failed = Some(client.download_error(&error));
                    break;
                }
            }
        }
        drop(sender);
        let extracted = extraction
            .await
            .map_err(|e| io("extracting the release's files")(std::io::Error::other(e)))?;
        drop(staging);
        match failed {
            Some(error) => Err(error.into()),
            None => extracted,
        }
    }
}

/// Chunks of the download in flight to the extraction.
const DOWNLOAD_CHUNKS: usize = 16;

/// The download as a [`std::io::Read`] for the extraction's thread: the
/// chunks the async side receives, end of file when it is done, an error
/// when the download failed midway.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, ()>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, ()>>) -> ChannelReader {
        ChannelReader {
            receiver,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Some(Err(())) => {
                    return Err(std::io::Error::other("the download was cut short"));
                }
                None => return Ok(0),
            }
        }
        let n = buffer.len().min(self.chunk.len() - self.at);
        buffer[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// 40 (SHA-1) or 64 (SHA-256) hex digits.
fn is_commit_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Extracts the tar file `tar` into `dir` (created), refusing entries that
/// would land outside it and kinds a commit cannot hold.
pub fn extract(tar: &Path, dir: &Path) -> Result<(), SourceError> {
    let file = fs::File::open(tar).map_err(io(format!("opening {}", tar.display())))?;
    extract_from(std::io::BufReader::new(file), dir)
}

/// Extracts the tar stream `reader` into `dir` (created), as [`extract`].
pub fn extract_from(reader: impl std::io::Read, dir: &Path) -> Result<(), SourceError> {
    fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_mtime(false);
    let bad = |message: String| SourceError::Archive(message);
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if !path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad(format!(
                "entry {} would land outside the job's directory",
                path.display()
            )));
        }
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            return Err(bad(format!(
                "entry {} is a {kind:?}, which a commit cannot hold",
                path.display()
            )));
        }
        let unpacked = entry
            .unpack_in(dir)
            .map_err(|e| bad(format!("entry {}: {e}", path.display())))?;
        if !unpacked {
            return Err(bad(format!(
                "entry {} would land outside the job's directory",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Copies the tree `from` into `to` (created), keeping symbolic links as
/// links and files' permissions.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), SourceError> {
    fs::create_dir_all(to).map_err(io(format!("creating {}", to.display())))?;
    for entry in walkdir::WalkDir::new(from).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| io(format!("reading {}", from.display()))(e.into()))?;
        let relative = entry
            .path()
            .strip_prefix(from)
            .map_err(|e| io("copying the release's files")(std::io::Error::other(e)))?;
        let target = to.join(relative);
        let kind = entry.file_type();
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(io(format!("creating {}", target.display())))?;
        } else if kind.is_symlink() {
            let link = fs::read_link(entry.path())
                .map_err(io(format!("reading {}", entry.path().display())))?;
            symlink(&link, &target, entry.path())
                .map_err(io(format!("creating {}", target.display())))?;
        } else {
            fs::copy(entry.path(), &target)
                .map_err(io(format!("creating {}", target.display())))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(link: &Path, target: &Path, _original: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(link, target)
}

#[cfg(windows)]
fn symlink(link: &Path, target: &Path, original: &Path) -> std::io::Result<()> {
    if fs::metadata(original).is_ok_and(|m| m.is_dir()) {
        std::os::windows::fs::symlink_dir(link, target)
    } else {
        std::os::windows::fs::symlink_file(link, target)
    }
}

#[cfg(not(any(unix, windows)))]
fn symlink(_link: &Path, target: &Path, _original: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(format!(
        "{}: symbolic links are not supported here",
        target.display()
    )))
}

/// Keeps the `keep` most recently used commits in `dir` (and removes what
/// an interrupted download left).
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut commits = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_commit_id(name) {
            let used = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
            commits.push((used, entry.path()));
        }
    }
    commits.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
    for (_, path) in commits.into_iter().skip(keep) {
        let _ = fs::remove_dir_all(path);
    }
}

/// Removes what interrupted downloads left in the cache `dir`.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(".download-"))
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_entry_type(tar::EntryType::Regular);
            // Written raw so that bad paths reach the extractor as they are.
            let name = header.as_old_mut().name.as_mut_slice();
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn write_tar(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("x.tar");
        let mut file = fs::File::create(&path).unwrap();
        file.write_all(bytes).unwrap();
        path
    }

    /// What the extraction reads when the download sends `chunks`, then
    /// (with `cut`) fails midway.
    fn streamed(chunks: &[&[u8]], cut: bool) -> ChannelReader {
        let (sender, receiver) = tokio::sync::mpsc::channel(chunks.len() + 1);
        for chunk in chunks {
            sender.try_send(Ok(chunk.to_vec())).unwrap();
        }
        if cut {
            sender.try_send(Err(())).unwrap();
        }
        ChannelReader::new(receiver)
    }

    #[test]
    fn a_streamed_archive_is_extracted_and_one_cut_short_is_refused() {
        let whole = tar_with(&[("one.txt", b"1"), ("two.txt", b"2")]);
        let dir = tempfile::tempdir().unwrap();
        // Whole, in uneven pieces.
        let (a, b) = whole.split_at(700);
        extract_from(streamed(&[a, b], false), &dir.path().join("whole")).unwrap();
        assert_eq!(fs::read(dir.path().join("whole/two.txt")).unwrap(), b"2");
        // Cut right after the first entry (a boundary a tar reader would
        // take for the end): the failure still reaches the extraction.
        let first_entry = &whole[..1024];
        let error = extract_from(streamed(&[first_entry], true), &dir.path().join("cut"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cut short"), "{error}");
    }

    #[test]
    fn a_commits_files_are_extracted_and_copied_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let tar = write_tar(
            dir.path(),
            &tar_with(&[("run.sh", b"echo hi\n"), ("sub/a.txt", b"a\n")]),
        );
        let tree = dir.path().join("tree");
        extract(&tar, &tree).unwrap();
        assert_eq!(fs::read_to_string(tree.join("sub/a.txt")).unwrap(), "a\n");
        #[cfg(unix)]
        std::os::unix::fs::symlink("sub/a.txt", tree.join("link")).unwrap();
        let copy = dir.path().join("copy");
        copy_tree(&tree, &copy).unwrap();
        assert_eq!(
            fs::read_to_string(copy.join("run.sh")).unwrap(),
            "echo hi\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(copy.join("run.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111, "executable bits kept");
            assert_eq!(
                fs::read_link(copy.join("link")).unwrap(),
                Path::new("sub/a.txt")
            );
        }
    }

    #[test]
    fn entries_that_escape_the_directory_are_refused() {
        for bad in ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt"] {
            let dir = tempfile::tempdir().unwrap();
            let tar = write_tar(dir.path(), &tar_with(&[(bad, b"x")]));
            let tree = dir.path().join("inner").join("tree");
            let error = extract(&tar, &tree).unwrap_err().to_string();
            assert!(
                error.contains("outside the job's directory"),
                "{bad}: {error}"
            );
            assert!(!dir.path().join("inner/escape.txt").exists());
            assert!(!dir.path().join("escape.txt").exists());
        }
    }

    #[test]
    fn commit_ids_are_checked_and_the_cache_is_pruned() {
        assert!(is_commit_id(&"a".repeat(40)) && is_commit_id(&"0".repeat(64)));
        assert!(!is_commit_id("../../etc") && !is_commit_id(&"g".repeat(40)));
        let dir = tempfile::tempdir().unwrap();
        for n in 0..5 {
            fs::create_dir(dir.path().join(format!("{n}").repeat(40))).unwrap();
        }
        fs::create_dir(dir.path().join(".download-x")).unwrap();
        prune(dir.path(), 3);
        remove_leftovers(dir.path());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
