//! `git-checkout`: checks out another repository, or another ref of the
//! project's, inside the deployment's checkout.
//!
//! Parameters:
//!
//! - `Repository`: an `https://`, `http://` or `file://` URL or an absolute
//!   path (default: the project's repository, `Tako.Git.Repository`);
//! - `Ref`: a branch (`develop`, `refs/heads/develop`), a tag (`v1.2.0`) or a
//!   commit id, full or abbreviated (default: the release's commit). The
//!   seed's "branch per environment" is `Ref: "#{GitBranch}"` with
//!   `GitBranch` scoped per environment;
//! - `Path`: where, relative to the step's working directory and confined to
//!   the deployment's checkout (absolute paths, `..` and symbolic links that
//!   lead outside are refused). Default `.`;
//! - `Token`: an HTTPS token (sent as `x-access-token:<token>`, the way
//!   GitHub expects it), typically a sensitive variable.
//!
//! **What `Path` may be.** A missing or empty directory: `Repository` is
//! cloned there. Or the top of an existing clone *of the same repository*
//! (its `origin` is `Repository`): its branches and tags are fetched there.
//! Anything else is refused rather than overwritten. So the default, `Path:
//! .` with the project's repository, switches the deployment's own checkout
//! (a clone whose `origin` is the project's URL) to `Ref`; when `Ref` is a
//! full commit id already present (the default: the release's commit), no
//! fetch happens at all. Checking out over local changes that would be lost
//! fails with git's message. The commit is checked out on a detached `HEAD`;
//! output `Commit` is its full id.
//!
//! **The token** reaches git only through its environment (an
//! `http.<origin>.extraHeader` entry of git's environment-based
//! configuration, see [`tako_git::Credentials`]): never a command line (the
//! process list), never `.git/config`, never the log: every message of this
//! step is masked with the token (and the deployment's masker) first.
//!
//! **Errors** say which of the usual things happened: an unknown ref, an
//! unreachable repository (bounded by git's network time limit), a refused
//! token. Cancelling the deployment kills the running git process group.

use std::future::Future;
use std::path::{Path, PathBuf};

use tako_core::log::LogLevel;
use tako_core::mask::Masker;
use tako_core::system::short_commit;
use tako_git::{Credentials, Git, GitError, RemoteUrl};
use tokio_util::sync::CancellationToken;

use super::{StepContext, StepError, StepResult};
use crate::confine::confine_in;

/// Runs the step.
pub async fn step(context: &StepContext<'_, '_>) -> StepResult {
    let secrets = Secrets::new(context)?;
    run(context, &secrets)
        .await
        .map_err(|error| error.masked(|text| secrets.mask(text)))
}

async fn run(context: &StepContext<'_, '_>, secrets: &Secrets<'_>) -> StepResult {
    let repository = repository(context, "Repository")?;
    let url = RemoteUrl::parse(&repository).map_err(|e| e.to_string())?;
    let rev = match context.text("Ref")?.map(str::trim) {
        Some(rev) if !rev.is_empty() => rev.to_owned(),
        _ if context.facts.git_commit.is_empty() => {
            return Err(StepError::Parameter(
                "parameter Ref is required: the release has no commit".to_owned(),
            ));
        }
        _ => context.facts.git_commit.clone(),
    };
    let path_text = context
        .text("Path")?
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(".");
    let target = confined_dir(context.root, context.working_dir, path_text)?;
    let credentials = secrets.credentials.as_ref();
    let git = Git::new();
    let checkout = async {
        let (tree, fresh) = match git.open_work_tree(&target) {
            Some(tree) => {
                let origin = tree.origin_url().await.map_err(|e| e.to_string())?;
                if !origin.as_deref().is_some_and(|o| same_repository(o, &url)) {
                    return Err(format!(
                        "Path {path_text:?} is a clone of {}, not of {url}; give an empty or missing directory as Path",
                        origin.as_deref().unwrap_or("an unknown repository")
                    ));
                }
                (tree, false)
            }
            None => {
                if !is_empty_or_missing(&target)? {
                    return Err(format!(
                        "Path {path_text:?} is neither an empty directory nor a clone of {url}; refusing to overwrite it"
                    ));
                }
                context.log.tako(
                    LogLevel::Info,
                    &secrets.mask(&format!("Cloning {url} into {path_text}")),
                );
                let tree = git
                    .clone_into(&url, credentials, &target)
                    .await
                    .map_err(|e| explain(&e, &url, &rev, credentials.is_some()))?;
                (tree, true)
            }
        };
        // A full commit id already here cannot have moved: no fetch needed.
        let present = if is_full_id(&rev) {
            tree.resolve(&rev).await.map_err(|e| e.to_string())?
        } else {
            None
        };
        let commit = match present {
            Some(commit) => commit,
            None => {
                if !fresh {
                    context.log.tako(
                        LogLevel::Info,
                        &secrets.mask(&format!("Fetching {url} into {path_text}")),
                    );
                }
                tree.fetch_ref(&url, credentials, &rev)
                    .await
                    .map_err(|e| explain(&e, &url, &rev, credentials.is_some()))?
            }
        };
        tree.checkout_detached(&commit)
            .await
            .map_err(|e| format!("cannot check out {rev} in {path_text:?}: {e}"))?;
        Ok(commit)
    };
    let commit = cancellable(context.cancel, checkout).await?;
    context.log.tako(
        LogLevel::Info,
        &secrets.mask(&format!(
            "Checked out {rev} ({}) from {url} into {path_text}",
            short_commit(&commit)
        )),
    );
    Ok(vec![("Commit".to_owned(), commit)])
}

/// The token of a step (`Token`), and masking with it.
pub(crate) struct Secrets<'m> {
    /// The credentials built from `Token`, if one was given.
    pub(crate) credentials: Option<Credentials>,
    token_masker: Option<Masker>,
    log_masker: &'m Masker,
}

impl<'m> Secrets<'m> {
    /// Reads `Token` (empty means none).
    pub(crate) fn new(context: &'m StepContext<'_, '_>) -> Result<Secrets<'m>, StepError> {
        let credentials = context
            .text("Token")?
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Credentials::token);
        Ok(Secrets {
            token_masker: credentials.as_ref().map(Credentials::masker),
            credentials,
            log_masker: context.log.masker(),
        })
    }

    /// `text` without the token (in any form) or another known secret.
    pub(crate) fn mask(&self, text: &str) -> String {
        let text = match &self.token_masker {
            Some(masker) => masker.mask(text).into_owned(),
            None => text.to_owned(),
        };
        self.log_masker.mask(&text).into_owned()
    }
}

/// A repository parameter, defaulting to the project's.
pub(crate) fn repository(context: &StepContext<'_, '_>, name: &str) -> Result<String, StepError> {
    match context.text(name)?.map(str::trim) {
        Some(url) if !url.is_empty() => Ok(url.to_owned()),
        _ if context.facts.git_repository.trim().is_empty() => Err(StepError::Parameter(format!(
            "parameter {name} is required: the project has no repository url"
        ))),
        _ => Ok(context.facts.git_repository.trim().to_owned()),
    }
}

/// Runs `work` unless the deployment is cancelled first; dropping `work`
/// kills the git process group it was running.
pub(crate) async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, StepError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(StepError::Cancelled),
        result = work => result.map_err(StepError::Failed),
    }
}

/// A failed remote operation, in words that say what to do.
pub(crate) fn explain(error: &GitError, url: &RemoteUrl, rev: &str, with_token: bool) -> String {
    match error {
        GitError::AuthenticationFailed { .. } if with_token => {
            format!("{error} (the Token was refused)")
        }
        GitError::AuthenticationFailed { .. } => {
            format!("{error} (the repository needs a Token)")
        }
        GitError::UnknownRevision { .. } => {
            format!("{url} has no branch, tag or commit {rev:?} (unknown ref)")
        }
        _ => error.to_string(),
    }
}

/// Whether two repository URLs name the same repository (ignoring a
/// trailing `/` or `.git`).
pub(crate) fn same_repository(a: &str, b: &RemoteUrl) -> bool {
    let normal = |url: &str| {
        let url = url.trim().trim_end_matches('/');
        url.strip_suffix(".git").unwrap_or(url).to_owned()
    };
    let a = RemoteUrl::parse(a).map_or_else(|_| normal(a), |u| normal(u.as_str()));
    a == normal(b.as_str())
}

/// A full SHA-1 or SHA-256 commit id.
fn is_full_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `dir` is missing or an empty directory (a file is neither).
fn is_empty_or_missing(dir: &Path) -> Result<bool, String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}

/// `path_text` (relative to the step's directory `base`) inside `root`,
/// with the symbolic links of its existing part resolved: absolute paths,
/// `..` and links leading outside `root` are refused.
fn confined_dir(root: &Path, base: &Path, path_text: &str) -> Result<PathBuf, StepError> {
    confine_in(root, base, path_text).map_err(|e| StepError::path("Path", path_text, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_checkout() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        let link = root.join("link");
        if let Err(e) = std::os::unix::fs::symlink(outside.path(), &link) {
            panic!("{e}");
        }
        let real_root = std::fs::canonicalize(root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(confined_dir(root, root, ".").ok(), Some(real_root.clone()));
        assert_eq!(
            confined_dir(root, root, "a/b").ok(),
            Some(real_root.join("a/b"))
        );
        for bad in ["/tmp", "../x", "a/../../x", "link", "link/new"] {
            assert!(confined_dir(root, root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_repository_ignores_git_suffix_and_slash() {
        let url = RemoteUrl::parse("https://github.com/o/r.git").unwrap_or_else(|e| panic!("{e}"));
        assert!(same_repository("https://github.com/o/r", &url));
        assert!(same_repository("https://github.com/o/r.git/", &url));
        assert!(!same_repository("https://github.com/o/other", &url));
    }
}
