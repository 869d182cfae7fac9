//! [`Git`]: one way to run the git binary, hermetic and bounded.
//!
//! Every invocation:
//!
//! - starts from a **cleared environment**: only `PATH` and `HOME` are kept,
//!   `LC_ALL=C` (git's messages are classified by their English text),
//!   `GIT_TERMINAL_PROMPT=0` (never wait for a password), `GIT_CONFIG_NOSYSTEM=1`
//!   and `GIT_CONFIG_GLOBAL=/dev/null` (no system or user configuration, so no
//!   credential helper, `insteadOf` or proxy of the machine leaks in), and
//!   `GIT_ALLOW_PROTOCOL=file:http:https` (no `ext::` or other transports,
//!   also not through submodules or redirects);
//! - has **standard input closed** and both outputs captured;
//! - runs in its **own process group** with a **time limit**: on expiry (or
//!   when the future is dropped) the whole group gets SIGKILL, so git's
//!   helpers (`git-remote-https`, `index-pack`) do not outlive it;
//! - for remote operations, receives the [`Credentials`] through the
//!   environment only (see [`Credentials`]), and its standard error is
//!   masked before it becomes part of a [`GitError`].
//!
//! Later steps (`git-checkout`, `git-tag`) run their own git commands through
//! [`Git::remote`] and [`Git::local`] to get the same guarantees.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tako_core::mask::Masker;
use tokio::io::AsyncReadExt as _;

use crate::{Credentials, GitError, RemoteUrl};

/// Default limit for operations that talk to a remote (clone, fetch, push).
pub const DEFAULT_NETWORK_TIMEOUT: Duration = Duration::from_secs(600);
/// Default limit for purely local operations (reads, checkouts).
pub const DEFAULT_LOCAL_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest stretch of git's standard error kept in an error message.
const MAX_MESSAGE: usize = 2000;

/// How to run git: the program and the time limits.
#[derive(Debug, Clone)]
pub struct Git {
    program: PathBuf,
    network_timeout: Duration,
    local_timeout: Duration,
}

/// What a successful git invocation printed.
#[derive(Debug, Clone)]
pub struct GitOutput {
    /// Standard output, as bytes (file contents need not be text).
    pub stdout: Vec<u8>,
    /// Standard error, masked.
    pub stderr: String,
}

impl GitOutput {
    /// Standard output as text (lossy), without surrounding whitespace.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }
}

impl Default for Git {
    fn default() -> Self {
        Git::new()
    }
}

impl Git {
    /// `git` from `PATH`, with [`DEFAULT_NETWORK_TIMEOUT`] and
    /// [`DEFAULT_LOCAL_TIMEOUT`].
    pub fn new() -> Git {
        Git {
            program: PathBuf::from("git"),
            network_timeout: DEFAULT_NETWORK_TIMEOUT,
            local_timeout: DEFAULT_LOCAL_TIMEOUT,
        }
    }

    /// Uses another git program.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Git {
        self.program = program.into();
        self
    }

    /// Sets the limit for operations that talk to a remote.
    pub fn with_network_timeout(mut self, limit: Duration) -> Git {
        self.network_timeout = limit;
        self
    }

    /// The limit for operations that talk to a remote.
    pub(crate) fn network_timeout(&self) -> Duration {
        self.network_timeout
    }

    /// Sets the limit for local operations.
    pub fn with_local_timeout(mut self, limit: Duration) -> Git {
        self.local_timeout = limit;
        self
    }

    /// Runs a local git command (`args[0]` is the subcommand) in `dir`.
    /// A non-zero exit is [`GitError::Failed`].
    pub async fn local<I, S>(&self, dir: &Path, args: I) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(dir, args, &[], None).await
    }

    /// Runs a git command that talks to `url` (clone, fetch, ls-remote,
    /// push) in `dir`, with the network time limit and `credentials` for
    /// `url`'s origin. A non-zero exit is classified:
    /// [`GitError::AuthenticationFailed`], [`GitError::Unreachable`] or
    /// [`GitError::Failed`].
    pub async fn remote<I, S>(
        &self,
        dir: &Path,
        args: I,
        url: &RemoteUrl,
        credentials: Option<&Credentials>,
    ) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let env = match (credentials, url.origin()) {
            (Some(credentials), Some(origin)) => credentials.config_env(&origin),
            _ => Vec::new(),
        };
        let masker = credentials.map(Credentials::masker);
        self.run(dir, args, &env, Some((url, masker.as_ref())))
            .await
    }

    /// Runs a local command with extra environment variables.
    pub(crate) async fn local_with_env<I, S>(
        &self,
        dir: &Path,
        args: I,
        env: &[(String, String)],
    ) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(dir, args, env, None).await
    }

    async fn run<I, S>(
        &self,
        dir: &Path,
        args: I,
        env: &[(String, String)],
        remote: Option<(&RemoteUrl, Option<&Masker>)>,
    ) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let raw = self.run_raw(dir, args, env, remote).await?;
        if raw.status.success() {
            return Ok(raw.output);
        }
        let mut message = summarize(&raw.output.stderr);
        if message.is_empty() {
            message = format!("exited with {}", raw.status);
        }
        Err(match remote {
            Some((url, _)) => classify(&raw.command, url, message),
            None => GitError::Failed {
                command: raw.command,
                message,
            },
        })
    }

    /// The full commit id `rev` names in the repository at `dir` (a branch,
    /// tag, commit id or `HEAD`), `None` when there is no such commit; an
    /// error only when git itself complains about something else.
    pub(crate) async fn peel_commit(
        &self,
        dir: &Path,
        rev: &str,
    ) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let raw = self
            .run_raw(
                dir,
                [
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "--end-of-options",
                    &spec,
                ],
                &[],
                None,
            )
            .await?;
        let id = raw.output.text();
        if raw.status.success() && is_object_id(&id) {
            Ok(Some(id))
        } else if raw.output.stderr.trim().is_empty() {
            Ok(None)
        } else {
            Err(GitError::Failed {
                command: raw.command,
                message: raw.output.stderr.trim().to_owned(),
            })
        }
    }

    /// The hermetic command for `args` in `dir` (see the module's docs):
    /// cleared environment, closed stdin, both outputs piped, its own
    /// process group, killed when dropped.
    pub(crate) fn command(
        &self,
        dir: &Path,
        args: &[std::ffi::OsString],
        env: &[(String, String)],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ALLOW_PROTOCOL", "file:http:https")
            .env("GIT_CONFIG_COUNT", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so that what git starts (ssh, remote
        // helpers) is killed with it.
        #[cfg(unix)]
        command.process_group(0);
        if let Some(home) = std::env::var_os("HOME") {
            command.env("HOME", home);
        }
        command
    }

    /// Starts `args` in `dir` and hands over the running child, with a
    /// guard that kills its process group when dropped.
    pub(crate) fn spawn(
        &self,
        dir: &Path,
        args: &[std::ffi::OsString],
    ) -> Result<(tokio::process::Child, GroupGuard), GitError> {
        let command_name = subcommand(args);
        let child = self.command(dir, args, &[]).spawn().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound
                || source.kind() == io::ErrorKind::PermissionDenied
            {
                GitError::NotInstalled {
                    program: self.program.clone(),
                    source,
                }
            } else {
                GitError::Io {
                    context: format!("starting git {command_name}"),
                    source,
                }
            }
        })?;
        let group = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
        Ok((child, group))
    }

    /// Runs git and reports how it exited; only a failure to run it at all
    /// (not installed, timeout, I/O) is an error.
    pub(crate) async fn run_raw<I, S>(
        &self,
        dir: &Path,
        args: I,
        env: &[(String, String)],
        remote: Option<(&RemoteUrl, Option<&Masker>)>,
    ) -> Result<RawOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let command_name = subcommand(&args);
        let limit = if remote.is_some() {
            self.network_timeout
        } else {
            self.local_timeout
        };
        let masker = remote.and_then(|(_, masker)| masker);
        let mut command = self.command(dir, &args, env);
        let mut child = command.spawn().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound
                || source.kind() == io::ErrorKind::PermissionDenied
            {
                GitError::NotInstalled {
                    program: self.program.clone(),
                    source,
                }
            } else {
                GitError::Io {
                    context: format!("starting git {command_name}"),
                    source,
                }
            }
        })?;
        let mut group = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let finished = {
            let work = async {
                let mut out = Vec::new();
                let mut err = Vec::new();
                let (out_read, err_read, status) = tokio::join!(
                    read_all(stdout.as_mut(), &mut out),
                    read_all(stderr.as_mut(), &mut err),
                    child.wait()
                );
                (out_read.and(err_read), status, out, err)
            };
            tokio::time::timeout(limit, work).await
        };
        let (reads, status, out, err) = match finished {
            Ok(done) => {
                group.disarm();
                done
            }
            Err(_elapsed) => {
                group.kill();
                // Reap the killed process; SIGKILL makes this quick.
                let _ = child.kill().await;
                return Err(GitError::Timeout {
                    command: command_name,
                    after: limit,
                });
            }
        };
        let io_context = || format!("running git {command_name}");
        let status = status.map_err(|source| GitError::Io {
            context: io_context(),
            source,
        })?;
        reads.map_err(|source| GitError::Io {
            context: io_context(),
            source,
        })?;
        let stderr_text = String::from_utf8_lossy(&err);
        let stderr_text = match masker {
            Some(masker) => masker.mask(&stderr_text).into_owned(),
            None => stderr_text.into_owned(),
        };
        Ok(RawOutput {
            command: command_name,
            status,
            output: GitOutput {
                stdout: out,
                stderr: stderr_text,
            },
        })
    }
}

/// How a git invocation ended.
pub(crate) struct RawOutput {
    /// The subcommand, for messages.
    pub(crate) command: String,
    /// Its exit status.
    pub(crate) status: std::process::ExitStatus,
    /// What it printed.
    pub(crate) output: GitOutput,
}

/// The subcommand among `args`: the first argument that is neither an
/// option nor the value of `-c`/`-C`.
fn subcommand(args: &[std::ffi::OsString]) -> String {
    let mut skip_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        if skip_next {
            skip_next = false;
        } else if arg == "-c" || arg == "-C" {
            skip_next = true;
        } else if !arg.starts_with('-') {
            return arg.into_owned();
        }
    }
    String::new()
}

async fn read_all(
    pipe: Option<&mut (impl tokio::io::AsyncRead + Unpin)>,
    into: &mut Vec<u8>,
) -> io::Result<()> {
    match pipe {
        Some(pipe) => pipe.read_to_end(into).await.map(|_| ()),
        None => Ok(()),
    }
}

/// Kills the process group of a git invocation that did not finish: on
/// timeout, and when the future running it is dropped. Armed only while the
/// group leader is not yet reaped, so the group id cannot have been reused.
pub(crate) struct GroupGuard(Option<i32>);

impl GroupGuard {
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }

    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            kill_tree(pid);
        }
    }
}

/// Kills the process group led by `pid`.
#[cfg(unix)]
fn kill_tree(pid: i32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Kills `pid` and the processes it started (`taskkill /T /F`: Windows has
/// no process groups to signal; Job Objects would need `unsafe`, which the
/// workspace forbids). Untested here: no Windows machine.
#[cfg(windows)]
fn kill_tree(pid: i32) {
    let _ = std::process::Command::new("taskkill")
        .args(["/T", "/F", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(not(any(unix, windows)))]
fn kill_tree(_pid: i32) {}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Git's standard error as one line: non-empty lines joined, bounded.
fn summarize(stderr: &str) -> String {
    let joined = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.len() <= MAX_MESSAGE {
        return joined;
    }
    let mut end = MAX_MESSAGE;
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &joined[..end])
}

/// Sorts a failed remote operation by git's message.
fn classify(command: &str, url: &RemoteUrl, message: String) -> GitError {
    const AUTH: &[&str] = &[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "requested url returned error: 401",
        "requested url returned error: 403",
        "invalid username or password",
    ];
    const UNREACHABLE: &[&str] = &[
        "could not resolve",
        "failed to connect",
        "couldn't connect",
        "connection refused",
        "connection reset",
        "connection timed out",
        "operation timed out",
        "unable to access",
        "not found",
        "does not exist",
        "does not appear to be a git repository",
        "could not read from remote repository",
        "empty reply from server",
        "ssl",
        "returned error: 5",
    ];
    let lower = message.to_ascii_lowercase();
    let url = url.to_string();
    if AUTH.iter().any(|needle| lower.contains(needle)) {
        GitError::AuthenticationFailed { url, message }
    } else if UNREACHABLE.iter().any(|needle| lower.contains(needle)) {
        GitError::Unreachable { url, message }
    } else {
        GitError::Failed {
            command: command.to_owned(),
            message,
        }
    }
}

/// A full SHA-1 or SHA-256 object id.
pub(crate) fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarize_joins_lines_and_bounds_length() {
        assert_eq!(summarize("fatal: a\n\n  b \n"), "fatal: a; b");
        let long = "é".repeat(MAX_MESSAGE);
        assert!(summarize(&long).len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn classification_by_message() {
        let url = RemoteUrl::parse("https://example.com/r.git");
        let Ok(url) = url else {
            panic!("valid url");
        };
        let auth = classify(
            "fetch",
            &url,
            "fatal: could not read Username for 'https://example.com': terminal prompts disabled"
                .to_owned(),
        );
        assert!(matches!(auth, GitError::AuthenticationFailed { .. }));
        let unreachable = classify(
            "fetch",
            &url,
            "fatal: unable to access 'https://example.com/r.git/': Could not resolve host"
                .to_owned(),
        );
        assert!(matches!(unreachable, GitError::Unreachable { .. }));
        let other = classify(
            "push",
            &url,
            "! [rejected] v1 -> v1 (already exists)".to_owned(),
        );
        assert!(matches!(other, GitError::Failed { .. }));
    }
}
