//! [`WorkTree`]: a non-bare repository with a work tree (a deployment's
//! checkout, or a clone made by the `git-checkout` step), and what steps do
//! with one: clone, fetch, resolve a branch, tag or commit, check it out,
//! tag a commit and push the tag. [`Git::ls_remote`] lists a remote's refs.
//!
//! Every command goes through [`Git`], so the credential rules hold: a token
//! reaches git only through its environment (scoped to the remote's origin),
//! never through a command line or a configuration file, and git's messages
//! are masked before they become an error. A clone's `origin` is the URL
//! without credentials.
//!
//! **Refs in a clone.** Branches of the remote are fetched to
//! `refs/remotes/origin/*`, tags to `refs/tags/*` (forced: the remote is the
//! truth). [`WorkTree::resolve`] looks a name up as a branch first, then a
//! tag, then a (possibly abbreviated) commit id.

use std::path::{Path, PathBuf};

use crate::command::is_object_id;
use crate::{Credentials, Git, GitError, RemoteUrl};

/// The tagger identity used when the repository's configuration has none.
pub const DEFAULT_TAGGER: (&str, &str) = ("Tako", "tako@localhost");

/// Configuration for fetches that must not leave detached processes.
const FETCH_CONFIG: &[&str] = &[
    "-c",
    "gc.autoDetach=false",
    "-c",
    "maintenance.autoDetach=false",
];

/// The refspecs of a full fetch into a clone.
const FETCH_REFSPECS: &[&str] = &[
    "+refs/heads/*:refs/remotes/origin/*",
    "+refs/tags/*:refs/tags/*",
];

/// One ref a remote advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// The full ref name (`refs/tags/v1`); peeled entries end in `^{}`.
    pub name: String,
    /// The object id it points at.
    pub id: String,
}

/// What a remote has under one tag name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTag {
    /// The tag ref's own object (the tag object when annotated).
    pub id: String,
    /// The commit it finally points at (peeled).
    pub commit: String,
}

/// A repository with a work tree.
#[derive(Debug, Clone)]
pub struct WorkTree {
    path: PathBuf,
    git: Git,
}

impl Git {
    /// The refs `url` advertises, optionally only those matching `patterns`
    /// (git's `ls-remote` patterns, matched from the end of the name). Runs
    /// in `dir` (any existing directory).
    pub async fn ls_remote(
        &self,
        dir: &Path,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
        patterns: &[&str],
    ) -> Result<Vec<RemoteRef>, GitError> {
        let mut args = vec!["ls-remote", "--", url.as_str()];
        args.extend_from_slice(patterns);
        let output = self.remote(dir, args, url, credentials).await?;
        Ok(parse_ls_remote(&String::from_utf8_lossy(&output.stdout)))
    }

    /// What `url` has under `refs/tags/<tag>`: `None` when it has no such
    /// tag.
    pub async fn remote_tag(
        &self,
        dir: &Path,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
        tag: &str,
    ) -> Result<Option<RemoteTag>, GitError> {
        check_tag_name(tag)?;
        let name = format!("refs/tags/{tag}");
        let peeled_name = format!("{name}^{{}}");
        // The peeled entry is listed only when asked for by name.
        let refs = self
            .ls_remote(
                dir,
                url,
                credentials,
                &[name.as_str(), peeled_name.as_str()],
            )
            .await?;
        let Some(own) = refs.iter().find(|r| r.name == name) else {
            return Ok(None);
        };
        let commit = refs
            .iter()
            .find(|r| r.name == peeled_name)
            .map_or_else(|| own.id.clone(), |r| r.id.clone());
        Ok(Some(RemoteTag {
            id: own.id.clone(),
            commit,
        }))
    }

    /// Clones `url` into `dir` (absent or empty; parents are created)
    /// without checking anything out: every branch under
    /// `refs/remotes/origin/*`, every tag. `origin` is `url` (no
    /// credentials are written anywhere).
    pub async fn clone_into(
        &self,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
        dir: &Path,
    ) -> Result<WorkTree, GitError> {
        let parent = dir.parent().unwrap_or(Path::new("/"));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| GitError::Io {
                context: format!("creating {}", parent.display()),
                source,
            })?;
        let mut args: Vec<&std::ffi::OsStr> = FETCH_CONFIG
            .iter()
            .chain(&[
                "clone",
                "--no-checkout",
                "--quiet",
                "--template=",
                "--origin",
                "origin",
                "--",
            ])
            .map(std::ffi::OsStr::new)
            .collect();
        args.push(url.as_str().as_ref());
        args.push(dir.as_os_str());
        self.remote(parent, args, url, credentials).await?;
        Ok(WorkTree {
            path: dir.to_path_buf(),
            git: self.clone(),
        })
    }

    /// The repository whose top is `dir` (it has a `.git`), or `None`.
    /// A directory inside some other repository's work tree is not one.
    pub fn open_work_tree(&self, dir: &Path) -> Option<WorkTree> {
        dir.join(".git").exists().then(|| WorkTree {
            path: dir.to_path_buf(),
            git: self.clone(),
        })
    }
}

impl WorkTree {
    /// The work tree's top directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The URL of `origin`, if set.
    pub async fn origin_url(&self) -> Result<Option<String>, GitError> {
        let raw = self
            .git
            .run_raw(
                &self.path,
                ["config", "--get", "remote.origin.url"],
                &[],
                None,
            )
            .await?;
        Ok(raw.status.success().then(|| raw.output.text()))
    }

    /// Fetches every branch (to `refs/remotes/origin/*`) and tag of `url`.
    pub async fn fetch(
        &self,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
    ) -> Result<(), GitError> {
        let mut args: Vec<&str> = FETCH_CONFIG.to_vec();
        args.extend([
            "fetch",
            "--quiet",
            "--prune",
            "--no-write-fetch-head",
            "--",
            url.as_str(),
        ]);
        args.extend_from_slice(FETCH_REFSPECS);
        self.git.remote(&self.path, args, url, credentials).await?;
        Ok(())
    }

    /// Fetches one commit by its full id (for commits on no branch or tag;
    /// the server must allow it) and keeps it under `refs/tako/commits/`.
    pub async fn fetch_commit(
        &self,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
        id: &str,
    ) -> Result<(), GitError> {
        let refspec = format!("+{id}:refs/tako/commits/{id}");
        let mut args: Vec<&str> = FETCH_CONFIG.to_vec();
        args.extend([
            "fetch",
            "--quiet",
            "--no-write-fetch-head",
            "--",
            url.as_str(),
            refspec.as_str(),
        ]);
        self.git.remote(&self.path, args, url, credentials).await?;
        Ok(())
    }

    /// Fetches what is needed for `rev` from `url` and returns its commit:
    /// a full fetch, then, when `rev` is a full commit id still missing, a
    /// fetch of that commit. [`GitError::UnknownRevision`] when the remote
    /// has no such branch, tag or commit.
    pub async fn fetch_ref(
        &self,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
        rev: &str,
    ) -> Result<String, GitError> {
        check_rev(rev)?;
        self.fetch(url, credentials).await?;
        if let Some(commit) = self.resolve(rev).await? {
            return Ok(commit);
        }
        if is_object_id(rev) {
            match self.fetch_commit(url, credentials, rev).await {
                Ok(()) => {}
                // The server has no such commit (or does not serve commits
                // by id): reported as an unknown revision below.
                Err(GitError::Failed { .. } | GitError::Unreachable { .. }) => {}
                Err(other) => return Err(other),
            }
            if let Some(commit) = self.resolve(rev).await? {
                return Ok(commit);
            }
        }
        Err(GitError::UnknownRevision {
            url: url.to_string(),
            rev: rev.to_owned(),
        })
    }

    /// The commit `rev` names: a branch of `origin` (`main`,
    /// `refs/heads/main`, `origin/main`), a tag (`v1`, `refs/tags/v1`), or a
    /// commit id (full or abbreviated, at least 4 hex digits). `None` when
    /// there is no such commit here.
    pub async fn resolve(&self, rev: &str) -> Result<Option<String>, GitError> {
        check_rev(rev)?;
        let mut candidates = Vec::new();
        if let Some(branch) = rev.strip_prefix("refs/heads/") {
            candidates.push(format!("refs/remotes/origin/{branch}"));
        } else if rev.starts_with("refs/") {
            candidates.push(rev.to_owned());
        } else {
            candidates.push(format!("refs/remotes/origin/{rev}"));
            candidates.push(format!("refs/tags/{rev}"));
            if let Some(branch) = rev.strip_prefix("origin/") {
                candidates.push(format!("refs/remotes/origin/{branch}"));
            }
            if rev.len() >= 4 && rev.len() <= 64 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
                candidates.push(rev.to_owned());
            }
        }
        for candidate in candidates {
            if let Some(commit) = self.peel(&candidate).await? {
                return Ok(Some(commit));
            }
        }
        Ok(None)
    }

    /// The commit a local name (ref or id) points at, if any.
    async fn peel(&self, name: &str) -> Result<Option<String>, GitError> {
        self.git.peel_commit(&self.path, name).await
    }

    /// Checks `commit` out on a detached `HEAD`. Local changes that the
    /// checkout would overwrite make it fail (git's message says which).
    pub async fn checkout_detached(&self, commit: &str) -> Result<(), GitError> {
        self.git
            .local(
                &self.path,
                [
                    "-c",
                    "advice.detachedHead=false",
                    "checkout",
                    "--quiet",
                    "--detach",
                    commit,
                    "--",
                ],
            )
            .await?;
        Ok(())
    }

    /// The commit `HEAD` is at.
    pub async fn head(&self) -> Result<String, GitError> {
        Ok(self
            .git
            .local(&self.path, ["rev-parse", "--verify", "HEAD^{commit}"])
            .await?
            .text())
    }

    /// The commit the local tag `tag` points at, if it exists.
    pub async fn local_tag(&self, tag: &str) -> Result<Option<String>, GitError> {
        check_tag_name(tag)?;
        self.peel(&format!("refs/tags/{tag}")).await
    }

    /// Creates (or, with `force`, moves) the local tag `tag` at `commit`:
    /// annotated when `message` is given, lightweight otherwise. The tagger
    /// is the repository's configured `user.name`/`user.email`, or
    /// [`DEFAULT_TAGGER`].
    pub async fn tag(
        &self,
        tag: &str,
        commit: &str,
        message: Option<&str>,
        force: bool,
    ) -> Result<(), GitError> {
        check_tag_name(tag)?;
        let mut env = Vec::new();
        for (key, variable, default) in [
            ("user.name", "GIT_COMMITTER_NAME", DEFAULT_TAGGER.0),
            ("user.email", "GIT_COMMITTER_EMAIL", DEFAULT_TAGGER.1),
        ] {
            let raw = self
                .git
                .run_raw(&self.path, ["config", "--get", key], &[], None)
                .await?;
            if !raw.status.success() || raw.output.text().is_empty() {
                env.push((variable.to_owned(), default.to_owned()));
            }
        }
        // The message goes through a file: it may be long or start with `-`.
        let message_file = match message {
            Some(message) => {
                let file = tempfile::NamedTempFile::new().map_err(|source| GitError::Io {
                    context: "creating a temporary file for the tag message".to_owned(),
                    source,
                })?;
                std::fs::write(file.path(), message).map_err(|source| GitError::Io {
                    context: "writing the tag message".to_owned(),
                    source,
                })?;
                Some(file)
            }
            None => None,
        };
        let mut args: Vec<std::ffi::OsString> = vec!["tag".into()];
        if force {
            args.push("--force".into());
        }
        if let Some(file) = &message_file {
            args.push("--annotate".into());
            args.push("--cleanup=verbatim".into());
            args.push("--file".into());
            args.push(file.path().into());
        }
        args.push("--end-of-options".into());
        args.push(tag.into());
        args.push(commit.into());
        self.git.local_with_env(&self.path, args, &env).await?;
        Ok(())
    }

    /// Pushes the local tag `tag` to `url` (`refs/tags/<tag>`); with `force`,
    /// replaces what the remote has under that name.
    pub async fn push_tag(
        &self,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
        tag: &str,
        force: bool,
    ) -> Result<(), GitError> {
        check_tag_name(tag)?;
        let refspec = format!(
            "{}refs/tags/{tag}:refs/tags/{tag}",
            if force { "+" } else { "" }
        );
        self.git
            .remote(
                &self.path,
                [
                    "push",
                    "--quiet",
                    "--no-verify",
                    "--",
                    url.as_str(),
                    refspec.as_str(),
                ],
                url,
                credentials,
            )
            .await?;
        Ok(())
    }
}

/// `ls-remote` output: `<id>\t<name>` per line.
fn parse_ls_remote(text: &str) -> Vec<RemoteRef> {
    text.lines()
        .filter_map(|line| {
            let (id, name) = line.split_once('\t')?;
            is_object_id(id.trim()).then(|| RemoteRef {
                name: name.trim().to_owned(),
                id: id.trim().to_owned(),
            })
        })
        .collect()
}

/// A revision we are willing to pass to git: not empty, no leading `-`, no
/// whitespace or control characters, no `..` ranges.
fn check_rev(rev: &str) -> Result<(), GitError> {
    let invalid = |reason| GitError::InvalidRevision {
        rev: rev.to_owned(),
        reason,
    };
    if rev.is_empty() {
        return Err(invalid("it is empty"));
    }
    if rev.starts_with('-') {
        return Err(invalid("it starts with -"));
    }
    if rev.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("it contains whitespace or control characters"));
    }
    if rev.contains("..") || rev.contains("@{") || rev.contains(['~', '^', ':', '?', '*', '[']) {
        return Err(invalid(
            "it is not a branch, tag or commit id (revision expressions are not accepted)",
        ));
    }
    Ok(())
}

/// A tag name git accepts (the rules of `git check-ref-format`).
fn check_tag_name(tag: &str) -> Result<(), GitError> {
    check_rev(tag)?;
    let invalid = |reason| GitError::InvalidRevision {
        rev: tag.to_owned(),
        reason,
    };
    if tag.starts_with("refs/") {
        return Err(invalid("give the tag's name without refs/tags/"));
    }
    if tag.contains('\\')
        || tag.ends_with('.')
        || tag.ends_with('/')
        || tag.starts_with('/')
        || tag.contains("//")
        || tag == "@"
        || tag
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err(invalid("it is not a valid tag name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_remote_lines() {
        let id = "a".repeat(40);
        let peeled = "b".repeat(40);
        let refs = parse_ls_remote(&format!(
            "{id}\trefs/tags/v1\n{peeled}\trefs/tags/v1^{{}}\nwarning: x\n"
        ));
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].name, "refs/tags/v1^{}");
        assert_eq!(refs[1].id, peeled);
    }

    #[test]
    fn revisions_and_tag_names() {
        for good in ["main", "feature/x", "v1.2.3", "refs/heads/main", "0123abcd"] {
            assert!(check_rev(good).is_ok(), "{good}");
        }
        for bad in [
            "", "-x", "a b", "a..b", "main~1", "HEAD^", "a:b", "x@{1}", "a\nb",
        ] {
            assert!(check_rev(bad).is_err(), "{bad}");
        }
        for good in ["v1.2.3", "release/1.0", "v1.4.0-ci.7"] {
            assert!(check_tag_name(good).is_ok(), "{good}");
        }
        for bad in [
            "refs/tags/v1",
            "v1.",
            ".hidden",
            "a/.b",
            "x.lock",
            "a//b",
            "@",
            "a\\b",
        ] {
            assert!(check_tag_name(bad).is_err(), "{bad}");
        }
    }
}
