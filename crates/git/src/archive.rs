//! A commit's files as a tar stream: built in-process from the object
//! database (`tree_tar.rs`), or, when only git can make it the same (or it
//! is large), `git archive --format=tar` read while git writes it, so a
//! large tree is never held in memory. What an agent downloads as a job's
//! source (`../shared/spec/agents.md` §2).

use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, ChildStdout};
use tokio::task::JoinHandle;

use crate::GitError;
use crate::command::GroupGuard;

/// The most of git's standard error kept for a failure's message.
const MAX_STDERR: usize = 4096;

/// A tar stream of a commit's files: read it with [`Archive::read`] until
/// it answers 0. Dropping a running `git archive` early kills git (and its
/// process group).
pub struct Archive {
    inner: Inner,
}

enum Inner {
    /// Built in-process; `at` bytes read so far.
    Built { bytes: Vec<u8>, at: usize },
    /// A running `git archive`.
    Git(Box<GitArchive>),
}

struct GitArchive {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<Vec<u8>>>,
    group: GroupGuard,
    ended: bool,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Built { bytes, at } => f
                .debug_struct("Archive")
                .field("built", &bytes.len())
                .field("at", at)
                .finish(),
            Inner::Git(git) => f
                .debug_struct("Archive")
                .field("git_ended", &git.ended)
                .finish_non_exhaustive(),
        }
    }
}

impl Archive {
    /// An archive built in-process.
    pub(crate) fn built(bytes: Vec<u8>) -> Archive {
        Archive {
            inner: Inner::Built { bytes, at: 0 },
        }
    }

    /// Whether it was built in-process (not by `git archive`).
    pub fn is_built_in_process(&self) -> bool {
        matches!(self.inner, Inner::Built { .. })
    }

    /// Reads the next bytes of the tar stream into `buffer`; 0 at its end.
    /// A failure of git is an error here, so a stream cut short is never
    /// taken for a whole one.
    pub async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, GitError> {
        match &mut self.inner {
            Inner::Built { bytes, at } => {
                let rest = bytes.get(*at..).unwrap_or_default();
                let n = rest.len().min(buffer.len());
                buffer[..n].copy_from_slice(&rest[..n]);
                *at += n;
                Ok(n)
            }
            Inner::Git(git) => git.read(buffer).await,
        }
    }

    pub(crate) fn new(child: Child, group: GroupGuard) -> Result<Archive, GitError> {
        Ok(Archive {
            inner: Inner::Git(Box::new(GitArchive::new(child, group)?)),
        })
    }
}

impl GitArchive {
    fn new(mut child: Child, group: GroupGuard) -> Result<GitArchive, GitError> {
        let missing = || GitError::Failed {
            command: "archive".to_owned(),
            message: "its output could not be read".to_owned(),
        };
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().map(|mut pipe| {
            tokio::spawn(async move {
                let mut kept = Vec::new();
                let mut buffer = [0u8; 1024];
                while let Ok(read) = pipe.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    let room = MAX_STDERR.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..read.min(room)]);
                }
                kept
            })
        });
        Ok(GitArchive {
            child,
            stdout,
            stderr,
            group,
            ended: false,
        })
    }

    /// The next bytes of git's output; 0 at its end, once git has exited
    /// well.
    async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, GitError> {
        if self.ended {
            return Ok(0);
        }
        let read = self
            .stdout
            .read(buffer)
            .await
            .map_err(|source| GitError::Io {
                context: "reading git archive's output".to_owned(),
                source,
            })?;
        if read > 0 {
            return Ok(read);
        }
        let status = self.child.wait().await.map_err(|source| GitError::Io {
            context: "waiting for git archive".to_owned(),
            source,
        })?;
        self.group.disarm();
        self.ended = true;
        if status.success() {
            return Ok(0);
        }
        let stderr = match self.stderr.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let message = String::from_utf8_lossy(&stderr).trim().replace('\n', "; ");
        Err(GitError::Failed {
            command: "archive".to_owned(),
            message: if message.is_empty() {
                format!("exited with {status}")
            } else {
                message
            },
        })
    }
}
