//! [`Mirrors`]: a cache of bare mirrors, one per repository URL, and
//! [`Mirror`]: reading files and checking out commits from one.
//!
//! **Layout.** `<root>/<name>` is a bare repository whose `refs/heads/*` and
//! `refs/tags/*` follow the remote's (pruned on every fetch) and whose `HEAD`
//! follows the remote's default branch; `<name>` comes from
//! [`RemoteUrl::mirror_name`]. A first clone happens in a temporary
//! directory beside it and is renamed into place only when complete, so a
//! mirror directory is never half-made. Its configuration holds the URL
//! without credentials.
//!
//! **One fetch at a time.** Fetches of one repository are serialized by an
//! async mutex per mirror (within this process). A caller that passes the
//! commit it needs (`want`) and finds it already present once it holds the
//! lock does not fetch at all: the fetch it waited for did the work.
//! Commits needed but no longer on any branch or tag (force-pushed away) are
//! fetched by id where the server allows it and kept under
//! `refs/tako/commits/<id>`, so that garbage collection keeps them.
//!
//! **Reads** ([`Mirror::read_file`], [`Mirror::first_file`],
//! [`Mirror::resolve`]) take no lock: git's refs are updated atomically after
//! the objects they point to are written, so a concurrent fetch is safe.
//!
//! **Checkouts** ([`Mirror::checkout`]) are local clones of the mirror
//! (`git clone --local`: objects hard-linked when on the same file system,
//! copied otherwise; no alternates, so the checkout stays a complete,
//! independent repository whatever later happens to the mirror), with
//! `origin` set back to the repository's real URL and the commit checked out
//! on a detached `HEAD`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::command::is_object_id;
use crate::{Credentials, Git, GitError, RemoteUrl};

/// Files larger than this are not read into memory by [`Mirror::read_file`].
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The names a takofile may have, in lookup order.
pub const TAKOFILE_NAMES: &[&str] = &["takofile", "takofile.yml", "takofile.yaml"];

/// The revision that names the default branch's head in a mirror.
pub const DEFAULT_BRANCH: &str = "HEAD";

/// Configuration for fetches that must not leave detached processes
/// (automatic garbage collection runs inside our time limit instead).
const FETCH_CONFIG: &[&str] = &[
    "-c",
    "gc.autoDetach=false",
    "-c",
    "maintenance.autoDetach=false",
];

/// The cache of mirrors under one root directory. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Mirrors {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    git: Git,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What [`Mirrors::fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The repository was cloned for the first time.
    Cloned,
    /// An existing mirror was updated.
    Fetched,
    /// The wanted commit was already present; nothing was fetched.
    AlreadyPresent,
    /// The mirror was opened without fetching ([`Mirrors::open`]).
    Opened,
}

/// One repository's bare mirror.
#[derive(Debug, Clone)]
pub struct Mirror {
    path: PathBuf,
    url: RemoteUrl,
    git: Git,
    outcome: FetchOutcome,
}

impl Mirrors {
    /// Mirrors under `root` (created when first needed), run with [`Git::new`].
    pub fn new(root: impl Into<PathBuf>) -> Mirrors {
        Mirrors::with_git(root, Git::new())
    }

    /// Mirrors under `root`, run with `git`.
    pub fn with_git(root: impl Into<PathBuf>, git: Git) -> Mirrors {
        Mirrors {
            inner: Arc::new(Inner {
                root: root.into(),
                git,
                locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The directory holding the mirrors.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The mirror of `url` as it is, without fetching; `None` when it was
    /// never fetched.
    pub fn open(&self, url: &str) -> Result<Option<Mirror>, GitError> {
        let url = RemoteUrl::parse(url)?;
        let path = self.inner.root.join(url.mirror_name());
        Ok(path.join("HEAD").is_file().then(|| Mirror {
            path,
            url,
            git: self.inner.git.clone(),
            outcome: FetchOutcome::Opened,
        }))
    }

    /// Brings the mirror of `url` up to date: a bare clone the first time, an
    /// incremental fetch of branches and tags afterwards. With `want` (a full
    /// commit id), the fetch is skipped when that commit is already present,
    /// and [`GitError::UnknownRevision`] is returned when it is still absent
    /// afterwards.
    pub async fn fetch(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
        want: Option<&str>,
    ) -> Result<Mirror, GitError> {
        let url = RemoteUrl::parse(url)?;
        let name = url.mirror_name();
        let path = self.inner.root.join(&name);
        let lock = self.lock_for(&name);
        let _held = lock.lock().await;
        let mut mirror = Mirror {
            path,
            url,
            git: self.inner.git.clone(),
            outcome: FetchOutcome::Fetched,
        };
        let exact_want = want.filter(|w| is_object_id(w));
        if mirror.path.join("HEAD").is_file() {
            if let Some(want) = exact_want
                && mirror.resolve(want).await?.is_some()
            {
                mirror.outcome = FetchOutcome::AlreadyPresent;
                return Ok(mirror);
            }
            mirror.fetch_existing(credentials).await?;
        } else {
            self.clone_into(&mirror.path, &mirror.url, credentials)
                .await?;
            mirror.outcome = FetchOutcome::Cloned;
        }
        if let Some(want) = want
            && mirror.resolve(want).await?.is_none()
        {
            if let Some(id) = exact_want {
                mirror.fetch_commit(id, credentials).await?;
            }
            if mirror.resolve(want).await?.is_none() {
                return Err(GitError::UnknownRevision {
                    url: mirror.url.to_string(),
                    rev: want.to_owned(),
                });
            }
        }
        Ok(mirror)
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(name.to_owned()).or_default())
    }

    /// First clone: into a temporary directory, renamed into place when done.
    async fn clone_into(
        &self,
        path: &Path,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
    ) -> Result<(), GitError> {
        let root = &self.inner.root;
        tokio::fs::create_dir_all(root)
            .await
            .map_err(|source| GitError::Io {
                context: format!("creating the mirrors directory {}", root.display()),
                source,
            })?;
        let temporary = tempfile::Builder::new()
            .prefix(".clone-")
            .tempdir_in(root)
            .map_err(|source| GitError::Io {
                context: format!("creating a temporary directory in {}", root.display()),
                source,
            })?;
        let mut args: Vec<&std::ffi::OsStr> = FETCH_CONFIG
            .iter()
            .chain(&["clone", "--bare", "--quiet", "--template=", "--"])
            .map(std::ffi::OsStr::new)
            .collect();
        args.push(url.as_str().as_ref());
        args.push(temporary.path().as_os_str());
        self.inner.git.remote(root, args, url, credentials).await?;
        let staged = temporary.path();
        for refspec_args in [
            &[
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/heads/*",
            ][..],
            &[
                "config",
                "--add",
                "remote.origin.fetch",
                "+refs/tags/*:refs/tags/*",
            ],
        ] {
            self.inner.git.local(staged, refspec_args).await?;
        }
        let staged = temporary.keep();
        if let Err(source) = tokio::fs::rename(&staged, path).await {
            let _ = tokio::fs::remove_dir_all(&staged).await;
            return Err(GitError::Io {
                context: format!("moving the new mirror into {}", path.display()),
                source,
            });
        }
        Ok(())
    }
}

impl Mirror {
    /// The mirror's directory (a bare repository).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository's URL.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// What the fetch that produced this value did.
    pub fn outcome(&self) -> FetchOutcome {
        self.outcome
    }

    /// The full commit id `rev` (a branch, tag, commit id or `HEAD`) names,
    /// or `None` when the mirror has no such commit.
    pub async fn resolve(&self, rev: &str) -> Result<Option<String>, GitError> {
        self.git.peel_commit(&self.path, rev).await
    }

    /// The default branch's name (`main`), from the mirror's `HEAD`.
    pub async fn default_branch(&self) -> Result<Option<String>, GitError> {
        let raw = self
            .git
            .run_raw(&self.path, ["symbolic-ref", "--quiet", "HEAD"], &[], None)
            .await?;
        Ok(raw
            .status
            .success()
            .then(|| raw.output.text())
            .and_then(|r| r.strip_prefix("refs/heads/").map(str::to_owned)))
    }

    /// Whether `commit` is in the history of `rev` (`rev`'s own commit
    /// included), as `git merge-base --is-ancestor` says; `false` when
    /// either names no commit in the mirror.
    pub async fn contains(&self, rev: &str, commit: &str) -> Result<bool, GitError> {
        let (Some(tip), Some(commit)) = (self.resolve(rev).await?, self.resolve(commit).await?)
        else {
            return Ok(false);
        };
        let raw = self
            .git
            .run_raw(
                &self.path,
                ["merge-base", "--is-ancestor", commit.as_str(), tip.as_str()],
                &[],
                None,
            )
            .await?;
        match raw.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(GitError::Failed {
                command: raw.command,
                message: raw.output.stderr.trim().to_owned(),
            }),
        }
    }

    /// The text of `path` (relative to the repository's root) at `rev`;
    /// `None` when there is no regular file there. Symbolic links are not
    /// followed (`None`); binary content is [`GitError::NotText`].
    pub async fn read_file(&self, rev: &str, path: &str) -> Result<Option<String>, GitError> {
        Ok(self.first_file(rev, &[path]).await?.map(|(_, text)| text))
    }

    /// The first of `names` that is a regular file at `rev`, with its text;
    /// e.g. [`TAKOFILE_NAMES`] for the takofile.
    pub async fn first_file(
        &self,
        rev: &str,
        names: &[&str],
    ) -> Result<Option<(String, String)>, GitError> {
        for name in names {
            check_path(name)?;
        }
        let commit = self.require(rev).await?;
        let mut args = vec!["ls-tree", "-l", "-z", "--full-tree", commit.as_str(), "--"];
        args.extend(names.iter().copied());
        let env = [("GIT_LITERAL_PATHSPECS".to_owned(), "1".to_owned())];
        let listing = self.git.local_with_env(&self.path, args, &env).await?;
        let entries = parse_ls_tree(&listing.stdout);
        let Some(entry) = names
            .iter()
            .find_map(|name| entries.iter().find(|e| e.path == *name))
        else {
            return Ok(None);
        };
        if entry.size > MAX_FILE_BYTES {
            return Err(GitError::TooLarge {
                path: entry.path.clone(),
                rev: rev.to_owned(),
                size: entry.size,
                limit: MAX_FILE_BYTES,
            });
        }
        let blob = self
            .git
            .local(&self.path, ["cat-file", "blob", entry.id.as_str()])
            .await?;
        let text = String::from_utf8(blob.stdout).map_err(|_| GitError::NotText {
            path: entry.path.clone(),
            rev: rev.to_owned(),
        })?;
        Ok(Some((entry.path.clone(), text)))
    }

    /// Makes `dir` (absent or empty; parents are created) a git repository
    /// with `rev`'s commit checked out on a detached `HEAD`, cloned from the
    /// mirror, with `origin` pointing at the repository's URL. Returns the
    /// commit id.
    pub async fn checkout(&self, rev: &str, dir: &Path) -> Result<String, GitError> {
        let commit = self.require(rev).await?;
        if let Some(parent) = dir.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| GitError::Io {
                    context: format!("creating {}", parent.display()),
                    source,
                })?;
        }
        let clone_args: Vec<&std::ffi::OsStr> = vec![
            "clone".as_ref(),
            "--local".as_ref(),
            "--no-checkout".as_ref(),
            "--quiet".as_ref(),
            "--template=".as_ref(),
            "--".as_ref(),
            self.path.as_os_str(),
            dir.as_os_str(),
        ];
        self.git.local(&self.path, clone_args).await?;
        self.git
            .local(dir, ["remote", "set-url", "origin", self.url.as_str()])
            .await?;
        self.git
            .local(
                dir,
                [
                    "-c",
                    "advice.detachedHead=false",
                    "checkout",
                    "--quiet",
                    "--detach",
                    commit.as_str(),
                ],
            )
            .await?;
        Ok(commit)
    }

    /// The commit `rev` names, or [`GitError::UnknownRevision`].
    async fn require(&self, rev: &str) -> Result<String, GitError> {
        self.resolve(rev)
            .await?
            .ok_or_else(|| GitError::UnknownRevision {
                url: self.url.to_string(),
                rev: rev.to_owned(),
            })
    }

    /// Incremental fetch of branches and tags, then `HEAD` follows the
    /// remote's default branch.
    async fn fetch_existing(&self, credentials: Option<&Credentials>) -> Result<(), GitError> {
        let mut args: Vec<&str> = FETCH_CONFIG.to_vec();
        args.extend([
            "fetch",
            "--quiet",
            "--prune",
            "--update-head-ok",
            "--no-write-fetch-head",
            "--",
            self.url.as_str(),
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ]);
        self.git
            .remote(&self.path, args, &self.url, credentials)
            .await?;
        let listing = self
            .git
            .remote(
                &self.path,
                ["ls-remote", "--symref", "--", self.url.as_str(), "HEAD"],
                &self.url,
                credentials,
            )
            .await?;
        let head = listing.text();
        let target = head.lines().find_map(|line| {
            let (target, name) = line.strip_prefix("ref: ")?.split_once('\t')?;
            (name == "HEAD" && target.starts_with("refs/heads/")).then(|| target.to_owned())
        });
        if let Some(target) = target {
            let current = self.default_branch().await?;
            if current.as_deref() != target.strip_prefix("refs/heads/") {
                self.git
                    .local(&self.path, ["symbolic-ref", "HEAD", target.as_str()])
                    .await?;
            }
        }
        Ok(())
    }

    /// Best effort: fetches one commit by id (for commits no longer on a
    /// branch) and keeps it under `refs/tako/commits/`.
    async fn fetch_commit(
        &self,
        id: &str,
        credentials: Option<&Credentials>,
    ) -> Result<(), GitError> {
        let refspec = format!("+{id}:refs/tako/commits/{id}");
        let mut args: Vec<&str> = FETCH_CONFIG.to_vec();
        args.extend([
            "fetch",
            "--quiet",
            "--no-write-fetch-head",
            "--",
            self.url.as_str(),
            refspec.as_str(),
        ]);
        match self
            .git
            .remote(&self.path, args, &self.url, credentials)
            .await
        {
            Ok(_) => Ok(()),
            // The server has no such commit (or does not serve commits by
            // id): reported by the caller as an unknown revision.
            Err(GitError::Failed { .. } | GitError::Unreachable { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

/// One line of `git ls-tree -l -z`.
struct TreeEntry {
    id: String,
    size: u64,
    path: String,
}

/// Regular files (not links, trees or submodules) from `ls-tree -l -z`.
fn parse_ls_tree(output: &[u8]) -> Vec<TreeEntry> {
    output
        .split(|b| *b == 0)
        .filter_map(|record| {
            let record = std::str::from_utf8(record).ok()?;
            let (meta, path) = record.split_once('\t')?;
            let mut fields = meta.split_whitespace();
            let mode = fields.next()?;
            let kind = fields.next()?;
            let id = fields.next()?;
            let size = fields.next()?.parse().ok()?;
            (kind == "blob" && (mode == "100644" || mode == "100755")).then(|| TreeEntry {
                id: id.to_owned(),
                size,
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A repository-relative path: not empty, not absolute, no `.`/`..`
/// components, no control characters.
fn check_path(path: &str) -> Result<(), GitError> {
    let invalid = |reason| GitError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("it is empty"));
    }
    if path.starts_with('/') {
        return Err(invalid("it is absolute"));
    }
    if path.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid("it has an empty, . or .. component"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tree_keeps_regular_files_only() {
        let id = "a".repeat(40);
        let output = format!(
            "100644 blob {id}     12\ttakofile\x00120000 blob {id}      5\tlink\x00040000 tree {id}       -\tdir\x00100755 blob {id}    7\tbin/run.sh\x00"
        );
        let entries = parse_ls_tree(output.as_bytes());
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["takofile", "bin/run.sh"]);
        assert_eq!(entries[0].size, 12);
    }

    #[test]
    fn paths_must_stay_inside() {
        assert!(check_path("takofile").is_ok());
        assert!(check_path("deploy/takofile.yml").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\nb"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_ids() {
        assert!(is_object_id(&"0123456789abcdef".repeat(4)[..40]));
        assert!(!is_object_id("main"));
        assert!(!is_object_id("abc123"));
    }
}
