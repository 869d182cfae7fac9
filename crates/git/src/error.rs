//! [`GitError`]: everything that can go wrong talking to git.
//!
//! Messages quote git's own standard error (trimmed, masked: a token never
//! appears in an error) so that an operator sees *why* a fetch failed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A git operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The git program could not be started.
    #[error("git is not installed or cannot be run ({program}): {source}")]
    NotInstalled {
        /// The program we tried to start.
        program: PathBuf,
        /// Why starting it failed.
        source: io::Error,
    },
    /// The repository URL is not one we accept.
    #[error("invalid repository url {url}: {reason}")]
    InvalidUrl {
        /// The URL, with any embedded credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The repository could not be reached (network, DNS, missing repository).
    #[error("repository {url} is unreachable: {message}")]
    Unreachable {
        /// The repository's URL.
        url: String,
        /// Git's message.
        message: String,
    },
    /// The server refused our credentials (or wanted some and got none).
    #[error("authentication to {url} was refused: {message}")]
    AuthenticationFailed {
        /// The repository's URL.
        url: String,
        /// Git's message.
        message: String,
    },
    /// A branch, tag or commit that the repository does not have.
    #[error("unknown revision {rev} in {url}")]
    UnknownRevision {
        /// The repository's URL.
        url: String,
        /// The revision asked for.
        rev: String,
    },
    /// A branch, tag or commit name that is not acceptable.
    #[error("invalid revision {rev:?}: {reason}")]
    InvalidRevision {
        /// The revision given.
        rev: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Git ran longer than allowed and was killed (with everything it started).
    #[error("git {command} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// The git subcommand.
        command: String,
        /// The time limit that passed.
        after: Duration,
    },
    /// Git failed for another reason.
    #[error("git {command} failed: {message}")]
    Failed {
        /// The git subcommand.
        command: String,
        /// Git's message (or its exit status when it printed nothing).
        message: String,
    },
    /// A path inside the repository that is not acceptable.
    #[error("invalid path {path:?} in repository: {reason}")]
    InvalidPath {
        /// The path asked for.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file read from the repository is not UTF-8 text.
    #[error("{path} at {rev} is not utf-8 text")]
    NotText {
        /// The file's path.
        path: String,
        /// The revision it was read at.
        rev: String,
    },
    /// A file read from the repository is larger than allowed.
    #[error("{path} at {rev} has {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file's path.
        path: String,
        /// The revision it was read at.
        rev: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A local file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}
