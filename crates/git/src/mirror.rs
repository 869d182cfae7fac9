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
//! [`Mirror::resolve`], [`Mirror::default_branch`]) are made in-process
//! with gitoxide (`crate::objects`), no git process started, and take no
//! lock: git's refs are updated atomically after the objects they point to
//! are written, so a concurrent fetch is safe.
//!
//! **Checkouts** ([`Mirror::checkout`]) are what a local clone of the mirror
//! would be (objects hard-linked when on the same file system, copied
//! otherwise; no alternates, so the checkout stays a complete, independent
//! repository whatever later happens to the mirror), with `origin` the
//! repository's real URL and the commit checked out on a detached `HEAD`.
//! Made in-process (`crate::checkout`): no `git clone`, no `git checkout`.
//!
//! **Maintenance.** Fetches keep what they receive as packs and never start
//! git's automatic maintenance themselves (it would run inside a push's
//! routing). After a fetch, in the background: past a few packs, a
//! geometric repack merges the smallest ones (each pack costs every later
//! fetch and checkout a little); at `gc --auto`'s own thresholds, `git
//! maintenance run --auto`. Both hold the mirror's fetch lock and, for
//! writing, its object lock, which checkouts take for reading: a repack
//! never deletes a pack a checkout is linking.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::command::is_object_id;
use crate::{
    Credentials, Git, GitError, RemoteRef, RemoteUrl, Scheme, checkout, local_fetch, objects,
};

/// Files larger than this are not read into memory by [`Mirror::read_file`].
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The names a takofile may have, in lookup order.
pub const TAKOFILE_NAMES: &[&str] = &["takofile", "takofile.yml", "takofile.yaml"];

/// The revision that names the default branch's head in a mirror.
pub const DEFAULT_BRANCH: &str = "HEAD";

/// The most file content an archive is built from in memory (a larger
/// tree is streamed by `git archive`).
pub(crate) const ARCHIVE_IN_MEMORY: u64 = 64 * 1024 * 1024;

/// Configuration for fetches: what is fetched stays packed (a checkout
/// links a few packs rather than thousands of loose objects), and no
/// maintenance is started by the fetch itself (see the module's
/// documentation); maintenance that does run stays in our time limit
/// instead of detaching.
const FETCH_CONFIG: &[&str] = &[
    "-c",
    "fetch.unpackLimit=1",
    "-c",
    "maintenance.auto=false",
    "-c",
    "gc.autoDetach=false",
    "-c",
    "maintenance.autoDetach=false",
];

/// git's `gc.autoPackLimit`: more packs than this start maintenance.
const MAINTENANCE_PACKS: usize = 50;
/// More packs than this are merged geometrically (`git repack
/// --geometric=2`, which rewrites only the smallest packs): every fetch adds
/// one, and each costs every later fetch and checkout a little (measured:
/// a local fetch went from 10.5 to 15 ms over 50 packs).
const GEOMETRIC_REPACK_PACKS: usize = 8;
/// git's `gc.auto` (6,700 loose objects), as git estimates it: more than
/// this many in the sample directory `objects/17`.
const MAINTENANCE_LOOSE_IN_SAMPLE: usize = 6_700_usize.div_ceil(256);

/// The cache of mirrors under one root directory. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Mirrors {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    git: Git,
    mirrors: Mutex<HashMap<String, Arc<Shared>>>,
}

/// What a push tells a fetch beyond the commit it wants.
#[derive(Debug, Default, Clone, Copy)]
struct PushHints<'a> {
    /// The branch the push moved.
    branch: Option<&'a str>,
    /// The repository's default branch.
    default_branch: Option<&'a str>,
}

/// What every handle on one mirror shares.
#[derive(Debug, Default)]
struct Shared {
    /// Held by a fetch (one at a time) and by maintenance.
    fetching: tokio::sync::Mutex<()>,
    /// Read by checkouts, written by maintenance (which deletes packs).
    objects: tokio::sync::RwLock<()>,
    /// The repository opened for in-process reads, once opened.
    repo: Mutex<Option<Arc<gix::ThreadSafeRepository>>>,
    /// Maintenance has been started and has not ended.
    maintaining: std::sync::atomic::AtomicBool,
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
    shared: Arc<Shared>,
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
                mirrors: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The directory holding the mirrors.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Removes what a previous process left half-done under the root (a
    /// first clone's temporary directory, a fetch's scratch repository)
    /// when it was killed; returns how many. Call it at start-up, before
    /// any fetch.
    pub fn remove_leftovers(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.inner.root) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(".clone-") || name.starts_with(".fetch-"))
            })
            .filter(|entry| std::fs::remove_dir_all(entry.path()).is_ok())
            .count()
    }

    /// The mirror of `url` as it is, without fetching; `None` when it was
    /// never fetched.
    pub fn open(&self, url: &str) -> Result<Option<Mirror>, GitError> {
        let url = RemoteUrl::parse(url)?;
        let name = url.mirror_name();
        let path = self.inner.root.join(&name);
        Ok(path.join("HEAD").is_file().then(|| Mirror {
            path,
            url,
            git: self.inner.git.clone(),
            outcome: FetchOutcome::Opened,
            shared: self.shared(&name),
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
        self.fetch_with(url, credentials, want, PushHints::default())
            .await
    }

    /// [`Mirrors::fetch`] for a push, which names the commit it brings, the
    /// branch it moved (`None` for a tag) and the repository's default
    /// branch: the mirror's `HEAD` is set from `default_branch` instead of
    /// asking the remote (one connection fewer on the way from a push to its
    /// deployment), unless the mirror has no such branch; and a local
    /// repository is told only of those two branches' tips when the fetch
    /// negotiates what to send (`crate::local_fetch`).
    pub async fn fetch_push(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
        commit: &str,
        branch: Option<&str>,
        default_branch: &str,
    ) -> Result<Mirror, GitError> {
        let hints = PushHints {
            branch,
            default_branch: Some(default_branch),
        };
        self.fetch_with(url, credentials, Some(commit), hints).await
    }

    async fn fetch_with(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
        want: Option<&str>,
        hints: PushHints<'_>,
    ) -> Result<Mirror, GitError> {
        let url = RemoteUrl::parse(url)?;
        let name = url.mirror_name();
        let path = self.inner.root.join(&name);
        let shared = self.shared(&name);
        let _held = shared.fetching.lock().await;
        let mut mirror = Mirror {
            path,
            url,
            git: self.inner.git.clone(),
            outcome: FetchOutcome::Fetched,
            shared: Arc::clone(&shared),
        };
        let exact_want = want.filter(|w| is_object_id(w));
        if mirror.path.join("HEAD").is_file() {
            if let Some(want) = exact_want
                && mirror.resolve(want).await?.is_some()
            {
                mirror.outcome = FetchOutcome::AlreadyPresent;
                return Ok(mirror);
            }
            mirror.fetch_existing(credentials, hints).await?;
            mirror.maintain_if_needed();
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

    /// What the remote of `url` has now (`HEAD`, branches, tags: git's
    /// `ls-remote`), asked of the remote with `credentials` as a fetch is,
    /// without fetching anything; the missed-push sweep compares its
    /// branch heads with the pushes Tako saw.
    pub async fn ls_remote(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Vec<RemoteRef>, GitError> {
        let url = RemoteUrl::parse(url)?;
        let root = &self.inner.root;
        tokio::fs::create_dir_all(root)
            .await
            .map_err(|source| GitError::Io {
                context: format!("creating the mirrors directory {}", root.display()),
                source,
            })?;
        self.inner.git.ls_remote(root, &url, credentials, &[]).await
    }

    fn shared(&self, name: &str) -> Arc<Shared> {
        let mut mirrors = self
            .inner
            .mirrors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(mirrors.entry(name.to_owned()).or_default())
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

/// One commit of [`Mirror::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The full commit id.
    pub id: String,
    /// The author's name.
    pub author: String,
    /// The whole message.
    pub message: String,
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
        let rev = rev.to_owned();
        self.read(move |repo| objects::resolve(repo, &rev)).await
    }

    /// The default branch's name (`main`), from the mirror's `HEAD`.
    pub async fn default_branch(&self) -> Result<Option<String>, GitError> {
        self.read(objects::head_branch).await
    }

    /// Runs `read` on the repository, opened once per mirror, on a thread
    /// that may block.
    async fn read<T, F>(&self, read: F) -> Result<T, GitError>
    where
        T: Send + 'static,
        F: FnOnce(&gix::Repository) -> Result<T, GitError> + Send + 'static,
    {
        let repo = self.repository()?;
        tokio::task::spawn_blocking(move || read(&repo.to_thread_local()))
            .await
            .map_err(|error| GitError::Failed {
                command: "read".to_owned(),
                message: format!("the reading thread failed: {error}"),
            })?
    }

    fn repository(&self) -> Result<Arc<gix::ThreadSafeRepository>, GitError> {
        let mut repo = self
            .shared
            .repo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(repo) = repo.as_ref() {
            return Ok(Arc::clone(repo));
        }
        let opened = Arc::new(objects::open(&self.path)?);
        *repo = Some(Arc::clone(&opened));
        Ok(opened)
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

    /// The commits `to` brings that `from` does not have (`from..to`, or
    /// `to` alone without `from`), oldest first: at most `max` of them (the
    /// newest), with how many there are in all. For release notes when a
    /// forge's push payload lists only some of the pushed commits.
    ///
    /// # Errors
    ///
    /// [`GitError::UnknownRevision`] when either names no commit in the
    /// mirror; [`GitError::Failed`] when git fails.
    pub async fn log(
        &self,
        from: Option<&str>,
        to: &str,
        max: usize,
    ) -> Result<(Vec<LogEntry>, usize), GitError> {
        let to = self.require(to).await?;
        let range = match from {
            Some(from) => format!("{}..{to}", self.require(from).await?),
            None => to,
        };
        let count = self
            .git
            .local(&self.path, ["rev-list", "--count", range.as_str()])
            .await?
            .text()
            .parse::<usize>()
            .map_err(|_| GitError::Failed {
                command: "rev-list".to_owned(),
                message: "git rev-list --count printed no number".to_owned(),
            })?;
        let max_count = format!("--max-count={max}");
        let listed = self
            .git
            .local(
                &self.path,
                [
                    "log",
                    "-z",
                    "--reverse",
                    max_count.as_str(),
                    "--format=%H%x1f%an%x1f%B",
                    range.as_str(),
                    "--",
                ],
            )
            .await?;
        let text = String::from_utf8_lossy(&listed.stdout);
        let entries = text
            .split('\0')
            .filter(|record| !record.trim().is_empty())
            .filter_map(|record| {
                let mut fields = record.splitn(3, '\u{1f}');
                Some(LogEntry {
                    id: fields.next()?.trim().to_owned(),
                    author: fields.next()?.to_owned(),
                    message: fields.next().unwrap_or_default().to_owned(),
                })
            })
            .collect();
        Ok((entries, count))
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
        let owned_rev = rev.to_owned();
        let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        let found = self
            .read(move |repo| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                objects::first_file(repo, &commit, &owned_rev, &names, MAX_FILE_BYTES)
            })
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let text = String::from_utf8(found.data).map_err(|_| GitError::NotText {
            path: found.path.clone(),
            rev: rev.to_owned(),
        })?;
        Ok(Some((found.path, text)))
    }

    /// Makes `dir` (absent or empty; parents are created) a git repository
    /// with `rev`'s commit checked out on a detached `HEAD`, cloned from the
    /// mirror, with `origin` pointing at the repository's URL. Returns the
    /// commit id.
    pub async fn checkout(&self, rev: &str, dir: &Path) -> Result<String, GitError> {
        let commit = self.require(rev).await?;
        let (refs, head) = self
            .read(|repo| {
                Ok((
                    objects::branches_and_tags(repo)?.direct,
                    objects::head_branch(repo)?,
                ))
            })
            .await?;
        {
            // No maintenance deletes packs while they are being linked.
            let _objects = self.shared.objects.read().await;
            let mirror = self.path.clone();
            let target = dir.to_owned();
            let url = self.url.as_str().to_owned();
            let commit = commit.clone();
            tokio::task::spawn_blocking(move || {
                checkout::make_repository(&checkout::Layout {
                    mirror: &mirror,
                    dir: &target,
                    url: &url,
                    commit: &commit,
                    refs: &refs,
                    head: head.as_deref(),
                })?;
                checkout::write_work_tree(&target, &commit)
            })
            .await
            .map_err(|error| GitError::Failed {
                command: "checkout".to_owned(),
                message: format!("the checkout thread failed: {error}"),
            })??;
        }
        Ok(commit)
    }

    /// The files of `rev`'s commit as a tar stream: built in-process from
    /// the object database when that gives what `git archive` would (and
    /// the files fit in [`ARCHIVE_IN_MEMORY`]), else `git archive` read as
    /// git writes it. [`GitError::UnknownRevision`] when the mirror lacks
    /// the commit.
    pub async fn archive(&self, rev: &str) -> Result<crate::Archive, GitError> {
        let commit = self.require(rev).await?;
        let built = {
            let commit = commit.clone();
            self.read(move |repo| crate::tree_tar::tree_tar(repo, &commit, ARCHIVE_IN_MEMORY))
                .await?
        };
        match built {
            crate::tree_tar::TreeTar::Built(bytes) => return Ok(crate::Archive::built(bytes)),
            crate::tree_tar::TreeTar::UseGit(reason) => {
                tracing::debug!(%commit, reason, "archiving with git archive");
            }
        }
        self.git_archive(&commit)
    }

    /// The files of `commit` as `git archive --format=tar` writes them.
    pub async fn archive_with_git(&self, rev: &str) -> Result<crate::Archive, GitError> {
        let commit = self.require(rev).await?;
        self.git_archive(&commit)
    }

    fn git_archive(&self, commit: &str) -> Result<crate::Archive, GitError> {
        let args: Vec<std::ffi::OsString> = ["archive", "--format=tar", commit]
            .iter()
            .map(std::ffi::OsString::from)
            .collect();
        let (child, group) = self.git.spawn(&self.path, &args)?;
        crate::Archive::new(child, group)
    }

    /// Starts `git maintenance run --auto` in the background when the
    /// mirror has reached git's thresholds and none is running.
    fn maintain_if_needed(&self) {
        use std::sync::atomic::Ordering;
        let Some(task) = maintenance_needed(&self.path.join("objects")) else {
            return;
        };
        if self.shared.maintaining.swap(true, Ordering::AcqRel) {
            return;
        }
        let mirror = self.clone();
        tokio::spawn(async move {
            let _fetching = mirror.shared.fetching.lock().await;
            let _objects = mirror.shared.objects.write().await;
            let mut args: Vec<&str> = FETCH_CONFIG.to_vec();
            args.extend(match task {
                Maintenance::Geometric => &["repack", "-d", "-l", "-q", "--geometric=2"][..],
                Maintenance::Auto => &["maintenance", "run", "--auto", "--quiet"],
            });
            match mirror.git.local(&mirror.path, args).await {
                Ok(_) => {
                    tracing::debug!(mirror = %mirror.path.display(), ?task, "mirror maintained");
                }
                Err(error) => {
                    tracing::warn!(mirror = %mirror.path.display(), %error, "mirror maintenance failed");
                }
            }
            mirror.shared.maintaining.store(false, Ordering::Release);
        });
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
    async fn fetch_existing(
        &self,
        credentials: Option<&Credentials>,
        hints: PushHints<'_>,
    ) -> Result<(), GitError> {
        if self.url.scheme() == Scheme::File {
            let mut tips = Vec::new();
            for branch in [hints.branch, hints.default_branch].into_iter().flatten() {
                if is_branch_name(branch)
                    && let Some(tip) = self.resolve(&format!("refs/heads/{branch}")).await?
                {
                    tips.push(tip);
                }
            }
            self.fetch_local(tips).await?;
        } else {
            self.fetch_remote(credentials).await?;
        }
        // A push's word for the default branch is taken when the mirror has
        // that branch (old payloads without one say `master`).
        if let Some(branch) = hints.default_branch.filter(|b| is_branch_name(b)) {
            let target = format!("refs/heads/{branch}");
            if self.resolve(&target).await?.is_some() {
                return self.point_head_at(&target).await;
            }
        }
        self.follow_remote_head(credentials).await
    }

    /// [`local_fetch`]: a repository on this machine, fetched in-process.
    async fn fetch_local(&self, tips: Vec<String>) -> Result<(), GitError> {
        let tips = tips
            .iter()
            .filter_map(|tip| gix::ObjectId::from_hex(tip.as_bytes()).ok())
            .collect::<Vec<_>>();
        let repo = self.repository()?;
        let url = self.url.clone();
        let interrupt = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&interrupt);
        let fetch = tokio::task::spawn_blocking(move || {
            local_fetch::fetch(&repo.to_thread_local(), &url, &tips, &flag)
        });
        let limit = self.git.network_timeout();
        match tokio::time::timeout(limit, fetch).await {
            Ok(joined) => joined.map_err(|error| GitError::Failed {
                command: "fetch".to_owned(),
                message: format!("the fetching thread failed: {error}"),
            })?,
            Err(_) => {
                interrupt.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(GitError::Timeout {
                    command: "fetch".to_owned(),
                    after: limit,
                })
            }
        }
    }

    /// `git fetch --prune` of branches and tags from a remote repository.
    async fn fetch_remote(&self, credentials: Option<&Credentials>) -> Result<(), GitError> {
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
        Ok(())
    }

    /// Points `HEAD` at the remote's default branch, as `ls-remote` says.
    async fn follow_remote_head(&self, credentials: Option<&Credentials>) -> Result<(), GitError> {
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
            self.point_head_at(&target).await?;
        }
        Ok(())
    }

    /// Makes `HEAD` the symbolic reference `target` (`refs/heads/main`)
    /// unless it already is.
    async fn point_head_at(&self, target: &str) -> Result<(), GitError> {
        let current = self.default_branch().await?;
        if current.as_deref() != target.strip_prefix("refs/heads/") {
            self.git
                .local(&self.path, ["symbolic-ref", "HEAD", target])
                .await?;
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

/// What a mirror's maintenance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maintenance {
    /// Merge the smallest packs (`git repack -d -l --geometric=2`).
    Geometric,
    /// git's own (`git maintenance run --auto`: `gc --auto`).
    Auto,
}

/// The maintenance the `objects` directory needs: git's own when its packs
/// or loose objects have reached `gc --auto`'s thresholds, else a
/// geometric repack when there are more than a few packs.
fn maintenance_needed(objects: &Path) -> Option<Maintenance> {
    let count = |dir: PathBuf, keep: fn(&str) -> bool| {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(keep))
                .count()
        })
    };
    let packs = count(objects.join("pack"), |name| name.ends_with(".pack"));
    let loose = count(objects.join("17"), |name| !name.starts_with("tmp_"));
    if packs > MAINTENANCE_PACKS || loose > MAINTENANCE_LOOSE_IN_SAMPLE {
        Some(Maintenance::Auto)
    } else if packs > GEOMETRIC_REPACK_PACKS {
        Some(Maintenance::Geometric)
    } else {
        None
    }
}

/// A branch name git accepts (checked before it reaches a command line).
fn is_branch_name(name: &str) -> bool {
    gix::refs::FullName::try_from(format!("refs/heads/{name}")).is_ok() && !name.starts_with('-')
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
    fn maintenance_follows_the_pack_and_loose_object_counts() {
        let objects = tempfile::tempdir().unwrap();
        let pack = objects.path().join("pack");
        let sample = objects.path().join("17");
        std::fs::create_dir_all(&pack).unwrap();
        std::fs::create_dir_all(&sample).unwrap();
        let add_packs = |n: usize| {
            for i in 0..n {
                std::fs::write(pack.join(format!("pack-{i:040}.pack")), "").unwrap();
                std::fs::write(pack.join(format!("pack-{i:040}.idx")), "").unwrap();
            }
        };
        assert_eq!(maintenance_needed(objects.path()), None);
        add_packs(GEOMETRIC_REPACK_PACKS);
        assert_eq!(maintenance_needed(objects.path()), None);
        add_packs(GEOMETRIC_REPACK_PACKS + 1);
        assert_eq!(
            maintenance_needed(objects.path()),
            Some(Maintenance::Geometric)
        );
        add_packs(MAINTENANCE_PACKS + 1);
        assert_eq!(maintenance_needed(objects.path()), Some(Maintenance::Auto));

        std::fs::remove_dir_all(&pack).unwrap();
        for i in 0..=MAINTENANCE_LOOSE_IN_SAMPLE {
            std::fs::write(sample.join(format!("{i:038}")), "").unwrap();
        }
        std::fs::write(sample.join("tmp_obj_x"), "").unwrap();
        assert_eq!(maintenance_needed(objects.path()), Some(Maintenance::Auto));
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
