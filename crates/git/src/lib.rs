//! The server's git operations: through the git binary for everything that
//! talks to a remote or writes a work tree, in-process (gitoxide) for reading
//! a mirror's objects and references.
//!
//! [`Mirrors`] keeps one cached bare mirror per repository URL and fetches
//! into it (a first clone, then incremental fetches; one at a time per
//! repository). A [`Mirror`] reads files at a commit or branch (the
//! takofile for routing from the default branch, the process from the pushed
//! commit) and checks a commit out into a deployment's working directory.
//! [`Git`] runs every git command hermetically (no system or user
//! configuration, no prompts, closed stdin, a time limit that kills the whole
//! process group) and is what the `git-checkout` and `git-tag` steps use for
//! their own commands, through [`WorkTree`] (clone, fetch, resolve, check
//! out, tag, push) and [`Git::ls_remote`]. [`Credentials`] hold an HTTPS token that reaches git
//! only through its environment: never a command line, a configuration file
//! or an error message. [`RemoteUrl`] is the validated form of a repository
//! URL (`https://`, `http://`, `file://`, absolute paths; no embedded
//! credentials).
//!
//! Requires git 2.32 or newer (environment-based configuration, geometric
//! repacking).

mod archive;
mod checkout;
mod command;
mod credentials;
mod error;
mod local_fetch;
mod mirror;
mod objects;
mod tree_tar;
mod url;
mod worktree;

pub use archive::Archive;
pub use command::{DEFAULT_LOCAL_TIMEOUT, DEFAULT_NETWORK_TIMEOUT, Git, GitOutput};
pub use credentials::{Credentials, DEFAULT_USERNAME};
pub use error::GitError;
pub use mirror::{
    DEFAULT_BRANCH, FetchOutcome, LogEntry, MAX_FILE_BYTES, Mirror, Mirrors, TAKOFILE_NAMES,
};
pub use url::{RemoteUrl, Scheme};
pub use worktree::{DEFAULT_TAGGER, RemoteRef, RemoteTag, WorkTree};
