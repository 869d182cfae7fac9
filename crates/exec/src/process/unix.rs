//! The Unix side of running a script: its own process group (signalled
//! as a whole: SIGTERM, then SIGKILL), its pipes read with `poll` so the
//! reader notices the stop flag, the group's members found in `/proc`, and
//! the groups a dead process left behind.

use std::fs::File;
use std::io;
use std::io::Read as _;
use std::os::fd::AsFd as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tako_core::log::LogStream;
use tokio::sync::mpsc;

use super::{
    COALESCE, COALESCE_BELOW, Chunk, ExecError, PROCESS_GROUP_FILE, READ_CHUNK, ScriptEnd,
};

/// How often (ms) a reader waiting for output checks its stop flag.
const STOP_CHECK_MS: u16 = 100;
/// The pipe buffer size asked for (Linux's default is 64 KiB).
const PIPE_SIZE: i32 = 1024 * 1024;

/// Makes the child the leader of a new process group.
pub(super) fn own_group(command: &mut tokio::process::Command) {
    command.process_group(0);
}

/// The child's standard output as a file to read from a thread.
pub(super) fn stdout_file(pipe: tokio::process::ChildStdout) -> io::Result<File> {
    pipe.into_owned_fd().map(File::from)
}

/// The child's standard error as a file to read from a thread.
pub(super) fn stderr_file(pipe: tokio::process::ChildStderr) -> io::Result<File> {
    pipe.into_owned_fd().map(File::from)
}

/// A script's process group: its id is the main process's pid.
pub(super) struct Group {
    pgid: Pid,
}

impl Group {
    pub(super) fn new(pid: u32) -> Group {
        Group {
            pgid: Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
        }
    }

    fn signal(&self, signal: Signal) {
        // ESRCH (nobody left) is the expected way for this to fail.
        let _ = killpg(self.pgid, signal);
    }

    /// SIGTERM to every member.
    pub(super) fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// SIGKILL to every member.
    pub(super) fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// Whether a process of the group is alive (zombies do not count).
    pub(super) fn has_live_members(&self) -> bool {
        match killpg(self.pgid, None) {
            Err(Errno::ESRCH) => false,
            _ => live_members(self.pgid.as_raw()).unwrap_or(true),
        }
    }
}

/// How the main process's exit status reads.
pub(super) fn exit_end(status: ExitStatus) -> ScriptEnd {
    match (status.code(), status.signal()) {
        (Some(code), _) => ScriptEnd::Exited(code),
        (None, Some(signal)) => ScriptEnd::Signalled(signal),
        (None, None) => ScriptEnd::Exited(-1),
    }
}

/// Reads a pipe (blocking) until end of file, an error, the stop flag or
/// the receiver's end, sending what it reads.
///
/// A plain thread rather than the async reactor: while it sleeps, a writer
/// wakes nobody, so a script printing many small lines is not slowed down
/// by a wake-up per line. After a small read it waits [`COALESCE`] so that
/// output gathers in the pipe (1 MiB when the kernel allows) and is read in
/// large chunks.
pub(super) fn read_pipe(
    stream: LogStream,
    mut file: File,
    sender: &mpsc::Sender<Chunk>,
    stop: &AtomicBool,
) {
    // Room for a fast writer while this thread sleeps; a refusal (over the
    // user's pipe quota) only costs speed.
    let _ = fcntl(&file, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    let mut buffer = vec![0; READ_CHUNK];
    let send = |data| sender.blocking_send(Chunk { stream, data }).is_ok();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, STOP_CHECK_MS) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(errno) => {
                send(Err(io::Error::from(errno)));
                return;
            }
        }
        match file.read(&mut buffer) {
            Ok(0) => {
                send(Ok(Vec::new()));
                return;
            }
            Ok(n) => {
                if !send(Ok(buffer[..n].to_vec())) {
                    return;
                }
                if n < COALESCE_BELOW {
                    std::thread::sleep(COALESCE);
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(error) => {
                send(Err(error));
                return;
            }
        }
    }
}

/// Whether `/proc` lists a process of group `pgid` that is not a zombie;
/// `None` when `/proc` cannot be read.
fn live_members(pgid: i32) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold anything, so parse
        // after its last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        if group == Some(pgid) && state != Some("Z") && state != Some("X") {
            return Some(true);
        }
    }
    Some(false)
}

/// Kills the process groups of scripts that were running under `root` (a
/// deployment's directory) when the process running them died, as found by
/// their [`PROCESS_GROUP_FILE`]s. A group is killed only when one of its
/// live members still works inside `root` (its current directory), so a
/// recycled process group id never hits an unrelated program. Returns how
/// many groups were killed.
pub fn kill_leftover_groups(root: &Path) -> usize {
    let mut killed = 0;
    let mut pending = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < 4 {
                pending.push((path, depth + 1));
            } else if kind.is_file() && entry.file_name() == PROCESS_GROUP_FILE {
                let pgid = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok());
                if let Some(pgid) = pgid.filter(|p| *p > 1)
                    && group_works_under(pgid, root)
                {
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                    killed += 1;
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    killed
}

/// Whether a live process of group `pgid` has its current directory under
/// `root`.
fn group_works_under(pgid: i32, root: &Path) -> bool {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(pgid)
            && state != Some("Z")
            && std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&root))
    })
}

/// Creates the scratch directory with mode 0700 when it is missing.
pub(super) fn create_scratch_dir(path: &Path) -> Result<(), ExecError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| ExecError::ScratchDir {
            path: path.to_path_buf(),
            source,
        })
}

/// `candidate` if it is an executable file.
pub(super) fn executable(candidate: &Path) -> Option<PathBuf> {
    std::fs::metadata(candidate)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .then(|| candidate.to_path_buf())
}
